//! Clients of outside services, each behind a small type: Google OAuth and
//! Gmail; system email through Sidemail, SMTP or the log; an OpenAI-compatible
//! language model for auto-draft.

pub mod clerk;
pub mod google;
pub mod imap;
pub mod llm;
pub mod mail;
pub mod outbound;
