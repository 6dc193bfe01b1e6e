//! Mailwright's types and rules, with no I/O.
//!
//! Values from outside (HTTP, configuration, the database) are parsed into
//! these types at the edge; past the edge, code works with types that cannot
//! hold a bad value.

pub mod drafting;
pub mod email;
pub mod explain;
pub mod ids;
pub mod mail;
pub mod mail_server;
pub mod pubsub;
pub mod retry;
pub mod return_to;
pub mod runs;
pub mod scopes;
pub mod webhooks;
pub mod workflows;

pub use email::EmailAddress;
pub use ids::{IntegrationId, JobId, UserId, WorkspaceId};
