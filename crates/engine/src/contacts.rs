//! Sidemail contact sync: when a user is first seen or their email changes,
//! upsert them as a Sidemail contact, through the queue (so Sidemail being
//! down never slows a sign-in). Off unless Sidemail is configured.

use std::sync::Arc;

use domain::UserId;
use providers::mail::MailError;
use providers::mail::sidemail::Sidemail;
use serde_json::json;
use store::Store;
use store::jobs::NewJob;

use crate::worker::{JobError, JobFuture, JobHandler, recorded_by_worker};

pub const SYNC_CONTACT: &str = "sidemail.contact_sync";

/// Queues contact syncs when they are enabled.
pub struct Contacts {
    store: Store,
    enabled: bool,
}

impl Contacts {
    pub fn new(store: Store, enabled: bool) -> Contacts {
        Contacts { store, enabled }
    }

    /// The user is new, or their email changed.
    pub async fn user_changed(&self, user: UserId) {
        if !self.enabled {
            return;
        }
        let job = NewJob::new(SYNC_CONTACT, json!({ "user_id": user }))
            .dedupe_key(format!("contact:{user}"));
        if let Err(error) = self.store.enqueue_job(&job).await {
            tracing::warn!(user = %user, error = format!("{error:#}"), "cannot queue the Sidemail contact sync");
        }
    }
}

pub struct SyncContact {
    store: Store,
    sidemail: Arc<Sidemail>,
}

impl SyncContact {
    pub fn new(store: Store, sidemail: Arc<Sidemail>) -> SyncContact {
        SyncContact { store, sidemail }
    }
}

impl JobHandler for SyncContact {
    fn kind(&self) -> &'static str {
        SYNC_CONTACT
    }

    fn run<'a>(&'a self, job: &'a store::jobs::ClaimedJob) -> JobFuture<'a> {
        recorded_by_worker(async move {
            let user = job
                .payload
                .get("user_id")
                .and_then(|id| id.as_str())
                .and_then(|id| UserId::parse(id).ok())
                .ok_or_else(|| JobError::Permanent("the job names no user".into()))?;
            let user = match self.store.user(user).await {
                Ok(user) => user,
                Err(store::StoreError::NotFound) => return Ok(()),
                Err(error) => {
                    return Err(JobError::Transient {
                        message: format!("the user cannot be read ({error})"),
                        retry_after: None,
                    });
                }
            };
            // Nothing to sync for a user without an address (yet).
            let Some(email) = user.email else {
                return Ok(());
            };
            let props = json!({ "name": user.display_name, "source": "mailwright" });
            self.sidemail
                .upsert_contact(&email, &user.id.to_string(), props)
                .await
                .map_err(|error| match error {
                    MailError::Transient {
                        reason,
                        retry_after,
                    } => JobError::Transient {
                        message: reason,
                        retry_after,
                    },
                    MailError::Permanent(reason) => JobError::Permanent(reason),
                })
        })
    }
}
