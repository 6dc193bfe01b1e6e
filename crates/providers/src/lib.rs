//! Clients of outside services, each behind a small type: Google OAuth and
//! Gmail; the Microsoft identity platform and Graph; IMAP and SMTP
//! mailboxes; system email through Sidemail, SMTP or the log; an
//! OpenAI-compatible language model for auto-draft.

pub mod clerk;
pub mod google;
pub mod imap;
pub mod llm;
pub mod mail;
pub mod microsoft;
pub mod oauth2;
pub mod outbound;
