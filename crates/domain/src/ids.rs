//! Typed identifiers. Each wraps a UUID (v7, so ids sort by creation time) and
//! can only be made fresh or parsed, so a `WorkspaceId` is never confused with
//! a `UserId` at compile time.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The text given as an id is not one of ours.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a valid id")]
pub struct InvalidId(String);

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
            /// A new, never-used id.
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }

            /// Parse an id from its text form (as found in URLs and JSON).
            pub fn parse(text: &str) -> Result<Self, InvalidId> {
                // Cap the echo: ids come from URLs and may be arbitrarily long.
                let shown = || text.chars().take(64).collect::<String>();
                Uuid::try_parse(text).map(Self).map_err(|_| InvalidId(shown()))
            }

            /// Wrap a UUID read back from the database.
            pub fn from_uuid(uuid: Uuid) -> Self {
                Self(uuid)
            }

            pub fn as_uuid(&self) -> Uuid {
                self.0
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0.hyphenated(), f)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "({})"), self.0.hyphenated())
            }
        }

        impl FromStr for $name {
            type Err = InvalidId;
            fn from_str(text: &str) -> Result<Self, Self::Err> {
                Self::parse(text)
            }
        }
    };
}

uuid_id!(
    /// A workspace: the unit of tenancy. Every tenant row carries one.
    WorkspaceId
);
uuid_id!(
    /// A person (local account, or a JWT `sub` seen for the first time).
    UserId
);
uuid_id!(
    /// A job in the durable queue.
    JobId
);
uuid_id!(
    /// A connected account (a Gmail or Calendar connection).
    IntegrationId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_through_text() {
        let id = WorkspaceId::new();
        assert_eq!(WorkspaceId::parse(&id.to_string()), Ok(id));
    }

    #[test]
    fn garbage_is_not_an_id_and_the_error_is_bounded() {
        let long = "x".repeat(10_000);
        let err = UserId::parse(&long).unwrap_err();
        assert!(err.to_string().len() < 100, "{err}");
        assert!(JobId::parse("").is_err());
    }

    #[test]
    fn new_ids_sort_by_creation() {
        let first = JobId::new();
        let second = JobId::new();
        assert!(first < second);
    }
}
