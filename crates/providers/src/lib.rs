//! Clients of outside services, each behind a small type: Google OAuth and
//! Gmail; system email through Sidemail, SMTP or the log. The LLM lands with auto-draft.

pub mod google;
pub mod mail;
