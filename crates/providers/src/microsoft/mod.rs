//! Microsoft 365: the Microsoft identity platform (OAuth 2.0 v2 endpoints)
//! and Microsoft Graph, spoken directly over HTTP. As with Google, errors are
//! sorted into what the caller must do; Microsoft's bodies go to logs only.

pub mod graph;
pub mod identity;
