//! Google: the OAuth 2.0 endpoints and the Gmail API, spoken directly over
//! HTTP (form-encoded token requests, JSON answers). Errors are classified
//! into what the caller must do: retry later, reconnect, or give up; Google's
//! bodies are logged by the caller, never shown to users.

pub mod gmail;
pub mod message;
pub mod oauth;
