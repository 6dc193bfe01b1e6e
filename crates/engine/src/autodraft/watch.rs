//! Push: with a Pub/Sub topic configured, each synced Gmail mailbox is
//! watched (Gmail `users.watch`), so Google announces new mail to
//! `POST /api/push/gmail`; with Microsoft configured, each synced Outlook
//! mailbox has a Graph subscription announcing new inbox mail to
//! `POST /api/push/microsoft`. The poll is only the safety net. A watch
//! lasts 7 days, a subscription [`SUBSCRIPTION_LIFETIME`]; both are renewed
//! daily, from the job queue, by one process per mailbox (a compare-and-set
//! claim on `watch_renew_at`, and the job's dedupe key). A failed attempt is
//! recorded on the mailbox with when it is tried again.

use super::*;
use crate::mailbox::Watch;
use crate::secrets::{constant_time_eq, random_token, sha256_hex};
use domain::pubsub::PubSubTopic;
use domain::scopes::IntegrationType;
use secrecy::{ExposeSecret, SecretString};
use store::autodraft::MailboxWatch;

pub const WATCH_MAILBOX: &str = "autodraft.watch";
/// Counter: `outcome` = made | failed | stopped; `provider` = google |
/// microsoft.
pub const WATCHES: &str = "mailwright_gmail_watches_total";
/// How long a Graph subscription is asked for (Graph allows 10080 minutes
/// for messages): renewed daily, it keeps two days in hand, and one left
/// behind by a crash ends soon.
pub const SUBSCRIPTION_LIFETIME: chrono::Duration = chrono::Duration::days(3);
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
    /// The provider announces new mail; the poll is the safety net.
    Active,
    /// No watch: push is not configured for the provider, or auto-draft is
    /// off.
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

    /// `announced`: push is configured for the mailbox's provider.
    pub fn of(
        announced: bool,
        enabled: bool,
        watch: &MailboxWatch,
        now: DateTime<Utc>,
    ) -> WatchStatus {
        if !announced || !enabled {
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

/// What became of one Graph change notification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GraphNotification {
    /// A sync of the mailbox is queued (or already was).
    Queued,
    /// No mailbox has this subscription (a lapsed or replaced one).
    UnknownSubscription,
    /// The clientState is not the subscription's: not from Graph.
    WrongClientState,
}

impl GraphNotification {
    pub fn as_str(self) -> &'static str {
        match self {
            GraphNotification::Queued => "queued",
            GraphNotification::UnknownSubscription => "unknown_subscription",
            GraphNotification::WrongClientState => "wrong_client_state",
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

    /// Whether new mail of a mailbox of `kind` is announced (push is
    /// configured for its provider).
    pub fn announced(&self, kind: IntegrationType) -> bool {
        match kind {
            IntegrationType::Gmail => self.settings.pubsub_topic.is_some(),
            IntegrationType::Outlook => self.settings.graph_notification_url.is_some(),
            IntegrationType::Imap | IntegrationType::Calendar => false,
        }
    }

    /// Queue a renewal for every watch that is due (or was never made);
    /// how many. Nothing when push is configured for no provider.
    pub async fn watch_tick(&self, now: DateTime<Utc>) -> Result<usize, StoreError> {
        let gmail = self.announced(IntegrationType::Gmail);
        let outlook = self.announced(IntegrationType::Outlook);
        if !gmail && !outlook {
            return Ok(0);
        }
        let mut queued = 0;
        loop {
            let due = self
                .store
                .due_watch_renewals(now, gmail, outlook, 500)
                .await?;
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

    /// A Graph change notification for `subscription` carrying
    /// `client_state`: when the state is the one the subscription was made
    /// with, queue a sync of its mailbox (the sync reads the inbox's delta,
    /// so what the notification names is not needed).
    pub async fn graph_notification(
        &self,
        subscription: &str,
        client_state: &str,
    ) -> Result<GraphNotification, StoreError> {
        let Some((workspace, integration, secret_hash)) =
            self.store.mailbox_of_subscription(subscription).await?
        else {
            return Ok(GraphNotification::UnknownSubscription);
        };
        if !constant_time_eq(sha256_hex(client_state).as_bytes(), secret_hash.as_bytes()) {
            return Ok(GraphNotification::WrongClientState);
        }
        self.store
            .request_autodraft_sync(
                workspace,
                integration,
                &Self::sync_job(workspace, integration),
            )
            .await?;
        Ok(GraphNotification::Queued)
    }

    /// Make or renew the watch of one mailbox (the job), if it is still
    /// synced (auto-draft, or a workflow waiting for its mail) and the
    /// connection usable. Failures are recorded, not returned: the renewal
    /// is tried again at the recorded time.
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
        // Synced: auto-draft, or a workflow waiting for its mail.
        if !mailbox.synced() || integration.status != IntegrationStatus::Connected {
            return Ok(());
        }
        let failed_before = mailbox.watch.last_error.is_some();
        match Mailbox::open(&self.vault, workspace, id).await {
            Ok(inbox) => self.watch_open_mailbox(&inbox, failed_before).await,
            Err(error) => {
                self.record_watch_error(
                    workspace,
                    id,
                    integration.integration_type,
                    error,
                    failed_before,
                )
                .await
            }
        }
    }

    /// Have the provider announce `inbox`'s new mail (a Gmail watch on the
    /// configured topic, a Graph subscription), if push is configured for
    /// it, and record the outcome (`failed_before`: the last attempt
    /// failed too).
    pub(super) async fn watch_open_mailbox(
        &self,
        inbox: &Mailbox,
        failed_before: bool,
    ) -> Result<(), StoreError> {
        let integration = inbox.integration();
        let (workspace, id, kind) = (
            integration.workspace,
            integration.id,
            integration.integration_type,
        );
        let outcome = match (kind, &self.settings.pubsub_topic) {
            (IntegrationType::Gmail, Some(topic)) => inbox.watch(topic).await,
            (IntegrationType::Outlook, _) if self.announced(kind) => {
                return self.subscribe_outlook(inbox, failed_before).await;
            }
            // An IMAP mailbox is followed by IDLE.
            _ => return Ok(()),
        };
        match outcome {
            Ok(Watch { expires_at, .. }) => {
                let renew_at = (store::now() + WATCH_RENEW_EVERY).min(expires_at);
                self.store
                    .record_watch(workspace, id, expires_at, renew_at)
                    .await?;
                metrics::counter!(WATCHES, "outcome" => "made", "provider" => "google")
                    .increment(1);
                tracing::info!(integration = %id, %expires_at, %renew_at, event = "gmail_watch_made", "Gmail watches the inbox");
                Ok(())
            }
            Err(error) => {
                self.record_watch_error(workspace, id, kind, error, failed_before)
                    .await
            }
        }
    }

    /// Renew the Outlook mailbox's Graph subscription, or make one (none
    /// yet, or Graph no longer has it), and record it. The record is a
    /// compare-and-set on the subscription read first: when another process
    /// recorded one meanwhile, the one made here is deleted again.
    async fn subscribe_outlook(
        &self,
        inbox: &Mailbox,
        failed_before: bool,
    ) -> Result<(), StoreError> {
        let Some(url) = &self.settings.graph_notification_url else {
            return Ok(());
        };
        let integration = inbox.integration();
        let (workspace, id, kind) = (
            integration.workspace,
            integration.id,
            integration.integration_type,
        );
        // The recorded subscription (the compare-and-set's expectation),
        // and whether Graph still has it (an expired one is deleted).
        let (recorded, live) = match self.store.autodraft_mailbox(workspace, id).await? {
            Some(mailbox) => {
                let live = mailbox
                    .watch
                    .expires_at
                    .is_some_and(|expires_at| expires_at > store::now());
                (mailbox.watch.subscription_id, live)
            }
            None => (None, false),
        };
        let expires = store::now() + SUBSCRIPTION_LIFETIME;
        let failed = |error| self.record_watch_error(workspace, id, kind, error, failed_before);
        // Renewed: the secret stays what it was.
        if let Some(subscription) = recorded.as_ref().filter(|_| live) {
            match inbox.renew_subscription(subscription, url, expires).await {
                Ok(renewed) => {
                    let renew_at = renewal_time(renewed.expires_at);
                    // Only while the row still holds this subscription
                    // (another process may have replaced it meanwhile).
                    self.store
                        .record_subscription_renewed(
                            workspace,
                            id,
                            subscription,
                            renewed.expires_at,
                            renew_at,
                        )
                        .await?;
                    metrics::counter!(WATCHES, "outcome" => "made", "provider" => "microsoft")
                        .increment(1);
                    tracing::info!(integration = %id, expires_at = %renewed.expires_at, %renew_at, event = "graph_subscription_renewed", "Microsoft Graph subscription renewed");
                    return Ok(());
                }
                // Graph dropped it (expired, or removed): make a new one.
                Err(VaultError::Gone) => {}
                Err(error) => return failed(error).await,
            }
        }
        let secret = SecretString::from(random_token(32));
        let made = match inbox.subscribe(url, &secret, expires).await {
            Ok(made) => made,
            Err(error) => return failed(error).await,
        };
        let Some(subscription) = made.subscription_id.as_deref() else {
            return Ok(());
        };
        let renew_at = renewal_time(made.expires_at);
        let recorded = self
            .store
            .record_subscription(
                workspace,
                id,
                recorded.as_deref(),
                subscription,
                &sha256_hex(secret.expose_secret()),
                made.expires_at,
                renew_at,
            )
            .await?;
        if !recorded {
            // Another process recorded its own (or auto-draft went off):
            // this one would announce to nobody.
            if let Err(error) = inbox.unsubscribe(subscription).await {
                tracing::warn!(integration = %id, error = %error, "deleting a Graph subscription made twice failed; it lapses within 3 days, and its notifications are ignored");
            }
            return Ok(());
        }
        metrics::counter!(WATCHES, "outcome" => "made", "provider" => "microsoft").increment(1);
        tracing::info!(integration = %id, expires_at = %made.expires_at, %renew_at, event = "graph_subscription_made", "Microsoft Graph announces the inbox's new mail");
        Ok(())
    }

    async fn record_watch_error(
        &self,
        workspace: WorkspaceId,
        id: IntegrationId,
        kind: IntegrationType,
        error: VaultError,
        failed_before: bool,
    ) -> Result<(), StoreError> {
        let topic = self
            .settings
            .pubsub_topic
            .as_ref()
            .map(PubSubTopic::as_str)
            .unwrap_or_default();
        let notification_url = self
            .settings
            .graph_notification_url
            .as_deref()
            .unwrap_or_default();
        // Gmail answers 400 for a topic of another Google Cloud project
        // than the OAuth client's, 403 (no right to publish) or 404 (no
        // such topic): the operator's to fix.
        let (code, message) = match error {
            // Graph answers 400 when its validation request failed; any
            // refusal of a subscription is the server's to fix, not the
            // connection's.
            VaultError::Rejected(reason) if kind == IntegrationType::Outlook => (
                "subscription_refused",
                format!(
                    "Microsoft Graph refused to subscribe to this mailbox's new mail ({}): it must reach {notification_url} over public HTTPS and get its validation token back within 10 s (check MAILWRIGHT_PUBLIC_URL and the proxy in front of Mailwright).",
                    reason.trim_end_matches('.')
                ),
            ),
            VaultError::Gone if kind == IntegrationType::Outlook => (
                "subscription_refused",
                "Microsoft Graph answered that the mailbox's inbox or subscription does not exist; Mailwright subscribes again at the next attempt.".to_owned(),
            ),
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
        metrics::counter!(WATCHES, "outcome" => "failed", "provider" => kind.provider())
            .increment(1);
        let event = match kind {
            IntegrationType::Outlook => "graph_subscription_failed",
            _ => "gmail_watch_failed",
        };
        tracing::warn!(integration = %id, code, %retry_at, event, "{message} Trying again at {retry_at}.");
        Ok(())
    }

    /// Stop announcing `integration`'s mail (best effort: a failure is
    /// logged, the watch lapses within 7 days anyway, a Graph subscription
    /// within 3). Gmail keeps one watch per address, so it is left alone
    /// while another workspace's mailbox with the same address still uses
    /// it; a Graph subscription is the mailbox's own.
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
        if let Some(subscription) = &mailbox.watch.subscription_id {
            let stopped =
                match Mailbox::open(&self.vault, integration.workspace, integration.id).await {
                    Ok(inbox) => inbox.unsubscribe(subscription).await,
                    Err(error) => Err(error),
                };
            match stopped {
                Ok(()) => {
                    metrics::counter!(WATCHES, "outcome" => "stopped", "provider" => "microsoft")
                        .increment(1);
                    tracing::info!(integration = %integration.id, event = "graph_subscription_deleted", "Microsoft Graph no longer announces the inbox's mail");
                }
                Err(error) => tracing::warn!(
                    integration = %integration.id,
                    error = %error,
                    "deleting the Graph subscription failed; it lapses within 3 days, and its notifications are ignored"
                ),
            }
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
                metrics::counter!(WATCHES, "outcome" => "stopped", "provider" => "google")
                    .increment(1);
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

/// When a watch or subscription until `expires_at` is renewed: daily, or
/// halfway to its end when the provider gave less than two days.
fn renewal_time(expires_at: DateTime<Utc>) -> DateTime<Utc> {
    let now = store::now();
    now + WATCH_RENEW_EVERY.min((expires_at - now) / 2)
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
            subscription_id: None,
        };
        let status = |topic: Option<&PubSubTopic>, enabled, watch: &MailboxWatch| {
            WatchStatus::of(topic.is_some(), enabled, watch, now)
        };
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
