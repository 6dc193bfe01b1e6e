//! Push: with a Pub/Sub topic configured, each auto-draft mailbox is watched
//! (Gmail `users.watch`), so Google announces new mail to
//! `POST /api/push/gmail` and the poll is only the safety net. A watch lasts
//! 7 days; it is renewed daily, from the job queue, by one process per
//! mailbox (a compare-and-set claim on `watch_renew_at`, and the job's
//! dedupe key). A failed attempt is recorded on the mailbox with when it is
//! tried again.

use super::*;
use crate::mailbox::Watch;
use domain::pubsub::PubSubTopic;
use store::autodraft::MailboxWatch;

pub const WATCH_MAILBOX: &str = "autodraft.watch";
/// Counter: `outcome` = made | failed | stopped.
pub const WATCHES: &str = "mailwright_gmail_watches_total";
/// How often a watch is renewed (Google: at least every 7 days).
pub const WATCH_RENEW_EVERY: chrono::Duration = chrono::Duration::days(1);
/// After a failed attempt, when the next one is made...
pub const WATCH_RETRY_AFTER: chrono::Duration = chrono::Duration::minutes(15);
/// ...and after a second failure in a row (a topic that stays wrong costs
/// a few calls a day, not one every 15 minutes).
pub const WATCH_RETRY_AFTER_REPEATED: chrono::Duration = chrono::Duration::hours(2);
/// How often the poller looks for watches due for renewal.
pub const WATCH_TICK: std::time::Duration = std::time::Duration::from_secs(60);
/// A claimed renewal whose job never ran (its process died) is claimed
/// again after this.
const WATCH_CLAIM_LEASE: chrono::Duration = chrono::Duration::minutes(10);

/// What the AutoDraft object and page say about the watch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WatchStatus {
    /// Google announces new mail; the poll is the safety net.
    Active,
    /// No watch: no topic is configured, or auto-draft is off.
    Off,
    /// The last attempt failed, or the watch lapsed: the poll finds mail.
    Failing,
}

impl WatchStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            WatchStatus::Active => "active",
            WatchStatus::Off => "off",
            WatchStatus::Failing => "failing",
        }
    }

    pub fn of(
        topic: Option<&PubSubTopic>,
        enabled: bool,
        watch: &MailboxWatch,
        now: DateTime<Utc>,
    ) -> WatchStatus {
        if topic.is_none() || !enabled {
            return WatchStatus::Off;
        }
        match (&watch.last_error, watch.expires_at) {
            (Some(_), _) => WatchStatus::Failing,
            (None, Some(expires_at)) if expires_at > now => WatchStatus::Active,
            (None, Some(_)) => WatchStatus::Failing,
            (None, None) => WatchStatus::Off,
        }
    }
}

/// The `autodraft.watch` job: make or renew one mailbox's watch.
pub struct WatchMailbox(pub Arc<AutoDraft>);

impl JobHandler for WatchMailbox {
    fn kind(&self) -> &'static str {
        WATCH_MAILBOX
    }

    fn run<'a>(&'a self, job: &'a ClaimedJob) -> JobFuture<'a> {
        recorded_by_worker(async move {
            let (workspace, id) = super::jobs::job_mailbox(job)?;
            self.0
                .renew_watch(workspace, id)
                .await
                .map_err(job_transient)
        })
    }
}

impl AutoDraft {
    fn watch_job(workspace: WorkspaceId, integration: IntegrationId) -> NewJob {
        NewJob::new(
            WATCH_MAILBOX,
            json!({ "integration_id": integration.to_string() }),
        )
        .in_workspace(workspace)
        .dedupe_key(format!("autodraft.watch:{integration}"))
    }

    /// Queue a renewal for every watch that is due (or was never made);
    /// how many. Nothing without a topic.
    pub async fn watch_tick(&self, now: DateTime<Utc>) -> Result<usize, StoreError> {
        if self.settings.pubsub_topic.is_none() {
            return Ok(0);
        }
        let mut queued = 0;
        loop {
            let due = self.store.due_watch_renewals(now, 500).await?;
            let batch = due.len();
            let mut claimed = 0;
            for (workspace, integration, due_at) in due {
                if self
                    .store
                    .claim_watch_renewal(
                        workspace,
                        integration,
                        due_at,
                        now + WATCH_CLAIM_LEASE,
                        &Self::watch_job(workspace, integration),
                    )
                    .await?
                {
                    claimed += 1;
                }
            }
            queued += claimed;
            // A full page that another process claimed first: stop, rather
            // than read the same page again.
            if batch < 500 || claimed == 0 {
                break;
            }
        }
        Ok(queued)
    }

    /// Make or renew the watch of one mailbox (the job), if auto-draft is
    /// still on and the connection usable. Failures are recorded, not
    /// returned: the renewal is tried again at the recorded time.
    pub async fn renew_watch(
        &self,
        workspace: WorkspaceId,
        id: IntegrationId,
    ) -> Result<(), StoreError> {
        let Some(mailbox) = self.store.autodraft_mailbox(workspace, id).await? else {
            return Ok(());
        };
        let Some(integration) = self.existing_integration(workspace, id).await? else {
            return Ok(());
        };
        if !mailbox.enabled || integration.status != IntegrationStatus::Connected {
            return Ok(());
        }
        let failed_before = mailbox.watch.last_error.is_some();
        match Mailbox::open(&self.vault, workspace, id).await {
            Ok(inbox) => self.watch_open_mailbox(&inbox, failed_before).await,
            Err(error) => {
                self.record_watch_error(workspace, id, error, failed_before)
                    .await
            }
        }
    }

    /// Watch `inbox` on the configured topic and record the outcome
    /// (`failed_before`: the last attempt failed too).
    pub(super) async fn watch_open_mailbox(
        &self,
        inbox: &Mailbox,
        failed_before: bool,
    ) -> Result<(), StoreError> {
        let Some(topic) = &self.settings.pubsub_topic else {
            return Ok(());
        };
        let integration = inbox.integration();
        // A Pub/Sub watch is Gmail's; an IMAP mailbox is followed by IDLE.
        if integration.integration_type.provider() != "google" {
            return Ok(());
        }
        let (workspace, id) = (integration.workspace, integration.id);
        match inbox.watch(topic).await {
            Ok(Watch { expires_at }) => {
                let renew_at = (store::now() + WATCH_RENEW_EVERY).min(expires_at);
                self.store
                    .record_watch(workspace, id, expires_at, renew_at)
                    .await?;
                metrics::counter!(WATCHES, "outcome" => "made").increment(1);
                tracing::info!(integration = %id, %expires_at, %renew_at, event = "gmail_watch_made", "Gmail watches the inbox");
                Ok(())
            }
            Err(error) => {
                self.record_watch_error(workspace, id, error, failed_before)
                    .await
            }
        }
    }

    async fn record_watch_error(
        &self,
        workspace: WorkspaceId,
        id: IntegrationId,
        error: VaultError,
        failed_before: bool,
    ) -> Result<(), StoreError> {
        let topic = self
            .settings
            .pubsub_topic
            .as_ref()
            .map(PubSubTopic::as_str)
            .unwrap_or_default();
        // Gmail answers 400 for a topic of another Google Cloud project
        // than the OAuth client's, 403 (no right to publish) or 404 (no
        // such topic): the operator's to fix.
        let (code, message) = match error {
            VaultError::Rejected(reason) if reason.starts_with("HTTP 400") => (
                "watch_topic_invalid",
                format!(
                    "Gmail does not accept the topic {topic} for this mailbox: the topic must be in the Google Cloud project of the OAuth client that connected it (for a connection Clerk holds, the project of Clerk's Google client)."
                ),
            ),
            VaultError::Rejected(_) | VaultError::Gone => (
                "watch_topic_refused",
                format!(
                    "Gmail refused to publish this mailbox's changes to {topic}. Check that the topic exists and that gmail-api-push@system.gserviceaccount.com has the Pub/Sub Publisher role on it."
                ),
            ),
            other => {
                let facing = other.user_facing(None);
                (facing.code, facing.message())
            }
        };
        let retry_at = store::now()
            + if failed_before {
                WATCH_RETRY_AFTER_REPEATED
            } else {
                WATCH_RETRY_AFTER
            };
        self.store
            .record_watch_failure(workspace, id, code, &message, retry_at)
            .await?;
        metrics::counter!(WATCHES, "outcome" => "failed").increment(1);
        tracing::warn!(integration = %id, code, %retry_at, event = "gmail_watch_failed", "{message} Trying again at {retry_at}.");
        Ok(())
    }

    /// Stop announcing `integration`'s mail (best effort: a failure is
    /// logged, the watch lapses within 7 days anyway). Gmail keeps one watch
    /// per address, so it is left alone while another workspace's mailbox
    /// with the same address still uses it.
    pub async fn stop_watch(&self, integration: &Integration) {
        let Ok(Some(mailbox)) = self
            .store
            .autodraft_mailbox(integration.workspace, integration.id)
            .await
        else {
            return;
        };
        if mailbox
            .watch
            .expires_at
            .is_none_or(|expires_at| expires_at <= store::now())
        {
            return;
        }
        let shared = match self
            .store
            .autodraft_mailboxes_for_address(&integration.email)
            .await
        {
            Ok(others) => others.iter().any(|(_, other)| *other != integration.id),
            Err(_) => true,
        };
        if shared {
            return;
        }
        let stopped = match Mailbox::open(&self.vault, integration.workspace, integration.id).await
        {
            Ok(inbox) => inbox.stop_watching().await,
            Err(error) => Err(error),
        };
        match stopped {
            Ok(()) => {
                metrics::counter!(WATCHES, "outcome" => "stopped").increment(1);
                tracing::info!(integration = %integration.id, event = "gmail_watch_stopped", "Gmail no longer watches the inbox");
            }
            Err(error) => tracing::warn!(
                integration = %integration.id,
                error = %error,
                "stopping the Gmail watch failed; it lapses within 7 days"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_watch_status_follows_topic_switch_error_and_expiry() {
        let topic = PubSubTopic::parse("projects/p/topics/gmail").unwrap();
        let now = store::now();
        let active = MailboxWatch {
            expires_at: Some(now + chrono::Duration::days(7)),
            renew_at: Some(now + chrono::Duration::days(1)),
            last_error: None,
        };
        let status =
            |topic, enabled, watch: &MailboxWatch| WatchStatus::of(topic, enabled, watch, now);
        assert_eq!(status(Some(&topic), true, &active), WatchStatus::Active);
        assert_eq!(status(None, true, &active), WatchStatus::Off);
        assert_eq!(status(Some(&topic), false, &active), WatchStatus::Off);
        assert_eq!(
            status(Some(&topic), true, &MailboxWatch::default()),
            WatchStatus::Off
        );
        let lapsed = MailboxWatch {
            expires_at: Some(now - chrono::Duration::minutes(1)),
            ..active.clone()
        };
        assert_eq!(status(Some(&topic), true, &lapsed), WatchStatus::Failing);
        let failed = MailboxWatch {
            last_error: Some(store::integrations::LastError {
                code: "watch_topic_refused".into(),
                message: "refused".into(),
                at: now,
            }),
            ..active
        };
        assert_eq!(status(Some(&topic), true, &failed), WatchStatus::Failing);
    }
}
