//! The daily connection health check: every usable connection's token is
//! refreshed at least once a day (a day after it was connected or last
//! checked, so the checks spread over the day as connections did), once
//! across replicas. A revoked grant or a lost scope is found then and
//! follows the vault's usual path (status change, one notice to the owner),
//! instead of surfacing when a weekly workflow next needs the connection.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use store::{Store, StoreError};
use tokio::sync::watch;

use crate::vault::{Vault, VaultError};

/// How often each connection is checked.
pub const CHECK_EVERY: chrono::Duration = chrono::Duration::hours(24);
/// How often each process looks for due checks.
pub const TICK: Duration = Duration::from_secs(60);
/// Checks one tick takes on at most.
const BATCH: i64 = 100;

pub struct ConnectionHealth {
    store: Store,
    vault: Arc<Vault>,
}

impl ConnectionHealth {
    pub fn new(store: Store, vault: Arc<Vault>) -> ConnectionHealth {
        ConnectionHealth { store, vault }
    }

    /// Check every connection that is due; how many this process checked.
    pub async fn tick(&self, now: DateTime<Utc>) -> Result<usize, StoreError> {
        let mut checked = 0;
        for due in self
            .store
            .due_connection_checks(now - CHECK_EVERY, BATCH)
            .await?
        {
            if !self.store.claim_connection_check(&due, now).await? {
                continue;
            }
            checked += 1;
            match self.vault.check(due.workspace, due.integration).await {
                Ok(()) => {
                    tracing::debug!(integration = %due.integration, "connection checked: healthy")
                }
                // Broken at Google: the vault recorded the status and told
                // the owner.
                Err(
                    error @ (VaultError::NeedsReauth
                    | VaultError::MissingScopes(_)
                    | VaultError::Disconnected
                    | VaultError::NotFound),
                ) => {
                    tracing::info!(integration = %due.integration, error = %error, "connection check found it broken")
                }
                // Google or the database did not answer: the next day's
                // check (or any use before it) tries again.
                Err(error) => {
                    tracing::warn!(integration = %due.integration, error = format!("{error:#}"), "connection check could not run; next one in a day")
                }
            }
        }
        Ok(checked)
    }

    /// Tick every `every` until `shutdown` turns true.
    pub async fn run(self: Arc<Self>, every: Duration, shutdown: watch::Receiver<bool>) {
        crate::supervisor::every(every, shutdown, "the connection health check", || {
            self.tick(store::now())
        })
        .await
    }
}
