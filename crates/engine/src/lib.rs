//! Mailwright's services behind the API and its background work: the token
//! vault (encrypted tokens, refresh, Gmail call bookkeeping) and connecting
//! Google accounts. Workflows and auto-draft land here next.

pub mod autodraft;
pub mod connections;
pub mod contacts;
pub mod error;
pub mod housekeeping;
pub mod keyring;
pub mod keys;
pub mod notify;
pub mod secrets;
pub mod supervisor;
pub mod vault;
pub mod worker;
pub mod workflows;
