//! Mailwright's services and its background work. Each feature has a typed
//! service the API and the pages call (`workflows::Workflows`,
//! `autodraft::AutoDraft`, `connections::Connections`, `notify::Notifier`)
//! and answers with [`error::ServiceError`]; the token vault (encrypted
//! tokens, refresh, Gmail call bookkeeping) sits under them, and the worker,
//! supervisor and scheduler run the jobs.

pub mod autodraft;
pub mod connections;
pub mod contacts;
pub mod error;
pub mod health;
pub mod housekeeping;
pub mod keyring;
pub mod keys;
pub mod mail_servers;
pub mod mailbox;
pub mod notify;
pub mod secrets;
pub mod supervisor;
pub mod vault;
pub mod webhooks;
pub mod worker;
pub mod workflows;
