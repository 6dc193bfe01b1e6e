//! Auto-draft: watch a mailbox's history, decide per inbound message whether
//! it deserves a reply draft (and say why not), generate the reply, and
//! create it in the message's thread exactly once.
//!
//! Two job kinds on the one queue: `autodraft.sync` (one per mailbox at a
//! time, by dedupe key) reads `history.list` from the stored cursor and, in
//! one transaction, records each new message and its `autodraft.draft` job
//! and moves the cursor (compare-and-set, forward only). `autodraft.draft`
//! runs the pipeline for one message. Before `drafts.create` the message is
//! marked `creating`; a retry after that point looks in the thread for a
//! draft carrying our `X-Mailwright-Source` header and adopts it.

use domain::retry::RetryPolicy;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use domain::drafting::{self, DraftLabel, DraftRequest, GeneratedDraft};
use domain::scopes::{Capability, IntegrationStatus, IntegrationType};
use domain::{IntegrationId, WorkspaceId};
use providers::google::gmail::{GmailMessage, GmailThread};
use providers::google::message::{Reply, SOURCE_HEADER, message_ids, parse_mailbox, reply_rfc822};
use providers::llm::{ChatDrafter, LlmError};
use serde_json::{Value, json};
use store::autodraft::{
    AutoDraftMailbox, DraftRecord, FoundMessage, Generated, InboundMessage, MessageStatus,
};
use store::integrations::Integration;
use store::jobs::{ClaimedJob, NewJob};
use store::{Store, StoreError};
use uuid::Uuid;

use crate::notify::Notifier;
use crate::vault::{Vault, VaultError};
use crate::worker::{
    GiveUpFuture, JobError, JobFuture, JobHandler, next_attempt_at, recorded_by_worker,
};

pub const SYNC_MAILBOX: &str = "autodraft.sync";
pub const DRAFT_MESSAGE: &str = "autodraft.draft";
/// `outcome` = drafted | skipped | failed; `reason` = the skip reason or
/// failure code (`created` / `adopted` for drafts).
pub const MESSAGES: &str = "mailwright_autodraft_messages_total";
pub const ENABLED_MAILBOXES: &str = "mailwright_autodraft_enabled_mailboxes";
pub const ALERTS: &str = "mailwright_autodraft_alerts_total";
pub const CATCH_UPS: &str = "mailwright_autodraft_catch_ups_total";

/// A catch-up after an expired cursor looks at most at this many messages.
const CATCH_UP_LIMIT: usize = 2_000;
/// How far before the last sync a catch-up looks (clock skew, delivery lag).
const CATCH_UP_MARGIN: chrono::Duration = chrono::Duration::minutes(10);
/// A message younger than this that starts its own thread is drafted
/// without reading the thread first.
const FRESH_MESSAGE: Duration = Duration::from_secs(20);
/// Attempts at a message before a model that keeps failing gives way to
/// the built-in drafter.
const MODEL_ATTEMPTS: u32 = 3;
/// A sync that was asked for again while it ran goes round at most this often.
const SYNC_ROUNDS: usize = 3;

/// Tunables, from configuration.
#[derive(Debug, Clone)]
pub struct AutoDraftSettings {
    pub poll_interval: Duration,
    /// Alert when at least this share of finished messages failed...
    pub alert_failure_rate: f64,
    /// ...within this window...
    pub alert_window: Duration,
    /// ...and at least this many messages finished in it.
    pub alert_min_messages: i64,
    /// The worker's: a message waiting to be tried again shows when.
    pub retry: RetryPolicy,
}

impl Default for AutoDraftSettings {
    fn default() -> Self {
        AutoDraftSettings {
            poll_interval: Duration::from_secs(60),
            alert_failure_rate: 0.5,
            alert_window: Duration::from_secs(3600),
            alert_min_messages: 5,
            retry: RetryPolicy::DEFAULT,
        }
    }
}

/// Who writes the reply.
#[derive(Clone)]
pub enum Generator {
    Builtin,
    Llm(ChatDrafter),
}

/// Why a message gets no draft. The code is stable (stats, metrics, API).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SkipReason {
    OwnMessage,
    NoReplySender,
    MailingList,
    Bulk,
    AutoSubmitted,
    SpamOrTrash,
    Promotions,
    NotInInbox,
    ThreadLatestFromOwner,
    ThreadHasDraft,
    Deleted,
    AutoDraftOff,
    NoReplyAddress,
}

impl SkipReason {
    pub fn code(self) -> &'static str {
        match self {
            SkipReason::OwnMessage => "own_message",
            SkipReason::NoReplySender => "no_reply_sender",
            SkipReason::MailingList => "mailing_list",
            SkipReason::Bulk => "bulk",
            SkipReason::AutoSubmitted => "auto_submitted",
            SkipReason::SpamOrTrash => "spam_or_trash",
            SkipReason::Promotions => "promotions",
            SkipReason::NotInInbox => "not_in_inbox",
            SkipReason::ThreadLatestFromOwner => "thread_latest_from_owner",
            SkipReason::ThreadHasDraft => "thread_has_draft",
            SkipReason::Deleted => "deleted",
            SkipReason::AutoDraftOff => "auto_draft_off",
            SkipReason::NoReplyAddress => "no_reply_address",
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            SkipReason::OwnMessage => "The message was sent by the mailbox owner.",
            SkipReason::NoReplySender => "The sender is a no-reply address.",
            SkipReason::MailingList => "The message came through a mailing list.",
            SkipReason::Bulk => "The message is bulk mail.",
            SkipReason::AutoSubmitted => {
                "The message was sent automatically (an auto-reply or notification)."
            }
            SkipReason::SpamOrTrash => "The message is in spam or trash.",
            SkipReason::Promotions => "The message is in the promotions category.",
            SkipReason::NotInInbox => "The message is no longer in the inbox.",
            SkipReason::ThreadLatestFromOwner => {
                "The newest message in the conversation is the owner's."
            }
            SkipReason::ThreadHasDraft => {
                "The conversation already holds a draft; Mailwright never overwrites one."
            }
            SkipReason::Deleted => "The message was deleted before it could be answered.",
            SkipReason::AutoDraftOff => {
                "Auto-draft was switched off before the message was handled."
            }
            SkipReason::NoReplyAddress => "The message has no address to reply to.",
        }
    }
}

/// The rules that need only the message itself. `owner` is the mailbox's
/// address.
pub fn skip_reason_for(message: &GmailMessage, owner: &str) -> Option<SkipReason> {
    if message.has_label("SPAM") || message.has_label("TRASH") {
        return Some(SkipReason::SpamOrTrash);
    }
    let from_address = message
        .header("From")
        .and_then(parse_mailbox)
        .map(|(_, address)| address);
    if message.has_label("SENT")
        || message.has_label("DRAFT")
        || from_address
            .as_deref()
            .is_some_and(|from| from.eq_ignore_ascii_case(owner))
    {
        return Some(SkipReason::OwnMessage);
    }
    if message.has_label("CATEGORY_PROMOTIONS") {
        return Some(SkipReason::Promotions);
    }
    if !message.has_label("INBOX") {
        return Some(SkipReason::NotInInbox);
    }
    if let Some(value) = message.header("Auto-Submitted")
        && !value.trim().eq_ignore_ascii_case("no")
    {
        return Some(SkipReason::AutoSubmitted);
    }
    if message.header("List-Id").is_some() || message.header("List-Unsubscribe").is_some() {
        return Some(SkipReason::MailingList);
    }
    if let Some(precedence) = message.header("Precedence") {
        let precedence = precedence.trim().to_ascii_lowercase();
        if precedence == "list" {
            return Some(SkipReason::MailingList);
        }
        if precedence == "bulk" || precedence == "junk" {
            return Some(SkipReason::Bulk);
        }
    }
    match from_address {
        Some(address) if is_no_reply(&address) => Some(SkipReason::NoReplySender),
        _ => None,
    }
}

/// `noreply@`, `no-reply@`, `donotreply@`, `mailer-daemon@`, ...
fn is_no_reply(address: &str) -> bool {
    let local = address
        .split('@')
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    let squashed: String = local
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect();
    squashed.starts_with("noreply")
        || squashed.starts_with("donotreply")
        || squashed.ends_with("noreply")
        || squashed == "mailerdaemon"
        || squashed == "postmaster"
        || squashed == "bounce"
        || squashed.starts_with("bounces")
}

/// What the pipeline decided for one message.
#[derive(Debug, Clone)]
pub enum Verdict {
    Skip(SkipReason),
    /// A draft for this message already exists (an earlier attempt made it).
    Adopt {
        provider_draft_id: String,
    },
    Draft(Box<PlannedReply>),
}

/// A reply ready to be created.
#[derive(Debug, Clone)]
pub struct PlannedReply {
    pub source: GmailMessage,
    pub label: DraftLabel,
    pub generator: String,
    pub to: String,
    pub subject: String,
    /// The reply with the original quoted below.
    pub body: String,
    pub in_reply_to: Option<String>,
    pub references: Vec<String>,
    pub rfc822_message_id: String,
}

/// Why the pipeline could not decide or act.
#[derive(Debug)]
enum PipelineError {
    /// The connection is broken (its status says how; the owner was told).
    Connection { code: &'static str, message: String },
    /// Retry later.
    Transient {
        message: String,
        retry_after: Option<Duration>,
    },
    /// Retrying cannot help.
    Permanent { code: &'static str, message: String },
}

/// Why enabling (or the test) was refused.
#[derive(Debug, thiserror::Error)]
pub enum AutoDraftError {
    #[error("no such integration")]
    NotFound,
    #[error("auto-draft works on Gmail connections only")]
    NotGmail,
    #[error("the connection lacks permissions")]
    MissingScopes(Vec<String>),
    #[error("the connection must be reconnected")]
    NeedsReauth,
    #[error("the connection is disconnected")]
    Disconnected,
    #[error("Gmail is unavailable: {0}")]
    Unavailable(String),
    #[error("Gmail refused: {0}")]
    Provider(String),
    #[error("the inbox has no message to test with")]
    NoMessage,
    /// The message the client named is not in this mailbox.
    #[error("no such message in this mailbox")]
    NoSuchMessage,
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<StoreError> for AutoDraftError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::NotFound => AutoDraftError::NotFound,
            other => AutoDraftError::Internal(other.into()),
        }
    }
}

impl From<VaultError> for AutoDraftError {
    fn from(error: VaultError) -> Self {
        match error {
            VaultError::NotFound => AutoDraftError::NotFound,
            VaultError::Disconnected => AutoDraftError::Disconnected,
            VaultError::NeedsReauth => AutoDraftError::NeedsReauth,
            VaultError::MissingScopes(scopes) => AutoDraftError::MissingScopes(scopes),
            VaultError::Unavailable { reason, .. } => AutoDraftError::Unavailable(reason),
            VaultError::GoneAtGoogle => AutoDraftError::Provider("not found".into()),
            VaultError::Rejected(reason) => AutoDraftError::Provider(reason),
            VaultError::NotConfigured => {
                AutoDraftError::Provider("Google is not configured on this server".into())
            }
            VaultError::Internal(error) => AutoDraftError::Internal(error),
        }
    }
}

/// The result of `POST .../auto-draft/test`.
#[derive(Debug, Clone)]
pub struct TestOutcome {
    pub message_id: String,
    pub thread_id: String,
    pub draft_type: String,
    pub draft_type_label: String,
    pub subject: String,
    pub body: String,
    pub skipped: Option<SkipReason>,
    pub draft_id: Option<String>,
}

pub struct AutoDraft {
    store: Store,
    vault: Arc<Vault>,
    notifier: Arc<Notifier>,
    generator: Generator,
    settings: AutoDraftSettings,
}

/// The Message-ID of the reply to `source` in `integration`: the same on
/// every attempt, so a retry can find the draft by it.
fn reply_message_id(integration: IntegrationId, source: &str) -> String {
    format!(
        "<autodraft.{source}.{}@mailwright>",
        integration.as_uuid().simple()
    )
}

fn vault_to_pipeline(error: VaultError) -> PipelineError {
    match error {
        VaultError::MissingScopes(scopes) => PipelineError::Connection {
            code: "missing_scopes",
            message: format!(
                "The connection lacks the permission {}; reconnect it and allow it.",
                scopes.join(", ")
            ),
        },
        VaultError::NeedsReauth => PipelineError::Connection {
            code: "needs_reauth",
            message: "Google no longer accepts the connection; reconnect it.".into(),
        },
        VaultError::Disconnected | VaultError::NotFound => PipelineError::Connection {
            code: "disconnected",
            message: "The connection was disconnected.".into(),
        },
        VaultError::Unavailable {
            reason,
            retry_after,
        } => PipelineError::Transient {
            message: format!("Gmail did not answer ({reason})"),
            retry_after,
        },
        VaultError::Internal(error) => {
            // The detail is for the log; what people see says only what happened.
            tracing::error!(
                error = format!("{error:#}"),
                "auto-draft hit an internal error; retrying"
            );
            PipelineError::Transient {
                message: "Mailwright hit an internal error (details in the server log)".into(),
                retry_after: None,
            }
        }
        VaultError::GoneAtGoogle => PipelineError::Permanent {
            code: "provider_error",
            message: "Gmail answered that the item no longer exists.".into(),
        },
        VaultError::Rejected(reason) => PipelineError::Permanent {
            code: "provider_error",
            message: format!("Gmail refused the request ({reason})."),
        },
        VaultError::NotConfigured => PipelineError::Permanent {
            code: "provider_error",
            message: "Google is not configured on this server.".into(),
        },
    }
}

fn store_transient(error: StoreError) -> PipelineError {
    // Stats and the test action show this message: no database text in it.
    tracing::error!(
        error = format!("{error:#}"),
        "auto-draft cannot reach the database; retrying"
    );
    PipelineError::Transient {
        message: "the database was unavailable".into(),
        retry_after: None,
    }
}

fn job_transient(error: StoreError) -> JobError {
    JobError::Transient {
        message: format!("the database is unavailable ({error})"),
        retry_after: None,
    }
}

impl AutoDraft {
    pub fn new(
        store: Store,
        vault: Arc<Vault>,
        notifier: Arc<Notifier>,
        generator: Generator,
        settings: AutoDraftSettings,
    ) -> AutoDraft {
        AutoDraft {
            store,
            vault,
            notifier,
            generator,
            settings,
        }
    }

    pub fn settings(&self) -> &AutoDraftSettings {
        &self.settings
    }

    pub fn sync_job(workspace: WorkspaceId, integration: IntegrationId) -> NewJob {
        NewJob::new(
            SYNC_MAILBOX,
            json!({ "integration_id": integration.to_string() }),
        )
        .in_workspace(workspace)
        .dedupe_key(format!("autodraft.sync:{integration}"))
    }

    fn draft_job(&self, workspace: WorkspaceId, message: Uuid) -> NewJob {
        NewJob::new(DRAFT_MESSAGE, json!({ "message_id": message }))
            .in_workspace(workspace)
            .dedupe_key(format!("autodraft.draft:{message}"))
    }

    /// The Gmail integration, or why auto-draft cannot use it.
    async fn gmail_integration(
        &self,
        workspace: WorkspaceId,
        id: IntegrationId,
    ) -> Result<Integration, AutoDraftError> {
        let integration = self.store.integration(workspace, id).await?;
        if integration.integration_type != IntegrationType::Gmail {
            return Err(AutoDraftError::NotGmail);
        }
        Ok(integration)
    }

    /// Switch auto-draft on: the connection must be healthy and allow reading
    /// and drafting. Drafting starts with mail arriving after now.
    pub async fn enable(
        &self,
        workspace: WorkspaceId,
        id: IntegrationId,
    ) -> Result<AutoDraftMailbox, AutoDraftError> {
        let integration = self.gmail_integration(workspace, id).await?;
        match integration.status {
            IntegrationStatus::Connected => {}
            IntegrationStatus::NeedsReauth => return Err(AutoDraftError::NeedsReauth),
            IntegrationStatus::Disconnected => return Err(AutoDraftError::Disconnected),
            IntegrationStatus::MissingScopes => {}
        }
        let missing: Vec<String> = [Capability::ReadMail, Capability::Draft]
            .into_iter()
            .filter(|capability| !integration.granted_scopes.allows(*capability))
            .map(|capability| capability.preferred_scope().to_owned())
            .collect();
        if !missing.is_empty() {
            return Err(AutoDraftError::MissingScopes(missing));
        }
        if integration.status == IntegrationStatus::MissingScopes {
            return Err(AutoDraftError::MissingScopes(
                integration
                    .granted_scopes
                    .missing_for(IntegrationType::Gmail),
            ));
        }
        // Already on: keep the cursor, or mail not yet synced would be lost.
        if let Some(mailbox) = self.store.autodraft_mailbox(workspace, id).await?
            && mailbox.enabled
            && mailbox.history_id.is_some()
        {
            return Ok(mailbox);
        }
        let gmail = self.vault.gmail().clone();
        let profile = self
            .vault
            .with_gmail(workspace, id, Capability::ReadMail, |token| {
                let gmail = gmail.clone();
                async move { gmail.profile(&token).await }
            })
            .await?;
        let history_id = profile
            .history_id
            .as_deref()
            .and_then(|id| id.parse::<i64>().ok())
            .ok_or_else(|| AutoDraftError::Provider("Gmail gave no history id".into()))?;
        // Somewhere within the first interval: mailboxes switched on together
        // (an import, a restart of many) do not all poll in the same second.
        let interval = self.settings.poll_interval.as_millis().max(1) as u64;
        let first_poll = store::now()
            + chrono::Duration::milliseconds(rand::Rng::gen_range(
                &mut rand::thread_rng(),
                0..interval,
            ) as i64);
        let mailbox = self
            .store
            .set_autodraft(workspace, id, true, Some(history_id), first_poll)
            .await?;
        tracing::info!(integration = %id, history_id, event = "autodraft_enabled", "auto-draft switched on");
        Ok(mailbox)
    }

    pub async fn disable(
        &self,
        workspace: WorkspaceId,
        id: IntegrationId,
    ) -> Result<AutoDraftMailbox, AutoDraftError> {
        self.gmail_integration(workspace, id).await?;
        let mailbox = self
            .store
            .set_autodraft(workspace, id, false, None, store::now())
            .await?;
        tracing::info!(integration = %id, event = "autodraft_disabled", "auto-draft switched off");
        Ok(mailbox)
    }

    /// A Gmail push for `email`: queue a sync of each enabled mailbox with
    /// that address. How many were queued (or already queued).
    pub async fn push(&self, email: &str) -> Result<usize, StoreError> {
        let mailboxes = self.store.autodraft_mailboxes_for_address(email).await?;
        let mut requested = 0;
        for (workspace, integration) in mailboxes {
            if self
                .store
                .request_autodraft_sync(
                    workspace,
                    integration,
                    &Self::sync_job(workspace, integration),
                )
                .await?
            {
                requested += 1;
            }
        }
        Ok(requested)
    }

    /// Queue a sync for every mailbox whose poll is due; how many.
    pub async fn poll_tick(&self, now: DateTime<Utc>) -> Result<usize, StoreError> {
        let next = now + chrono_duration(self.settings.poll_interval);
        let mut queued = 0;
        loop {
            let due = self.store.due_autodraft_polls(now, 500).await?;
            let batch = due.len();
            for (workspace, integration, due_at) in due {
                if self
                    .store
                    .claim_autodraft_poll(
                        workspace,
                        integration,
                        due_at,
                        next,
                        &Self::sync_job(workspace, integration),
                    )
                    .await?
                {
                    queued += 1;
                }
            }
            if batch < 500 {
                break;
            }
        }
        metrics::gauge!(ENABLED_MAILBOXES)
            .set(self.store.enabled_autodraft_mailboxes().await? as f64);
        Ok(queued)
    }

    /// Poll until `shutdown` turns true.
    pub async fn run_poller(self: Arc<Self>, mut shutdown: tokio::sync::watch::Receiver<bool>) {
        let tick = self
            .settings
            .poll_interval
            .clamp(Duration::from_millis(200), Duration::from_secs(1));
        loop {
            if *shutdown.borrow() {
                return;
            }
            if let Err(error) = self.poll_tick(store::now()).await {
                tracing::warn!(
                    error = format!("{error:#}"),
                    "the auto-draft poller cannot reach the database; retrying"
                );
            }
            tokio::select! {
                _ = tokio::time::sleep(tick) => {}
                _ = shutdown.changed() => {}
            }
        }
    }

    /// One sync of a mailbox (the `autodraft.sync` job).
    pub async fn sync(&self, workspace: WorkspaceId, id: IntegrationId) -> Result<(), JobError> {
        for _ in 0..SYNC_ROUNDS {
            let started = store::now();
            let Some(mailbox) = self
                .store
                .autodraft_mailbox(workspace, id)
                .await
                .map_err(job_transient)?
            else {
                return Ok(());
            };
            let Some(cursor) = mailbox.history_id.filter(|_| mailbox.enabled) else {
                return Ok(());
            };
            let integration = match self.store.integration(workspace, id).await {
                Ok(integration) => integration,
                Err(StoreError::NotFound) => return Ok(()),
                Err(error) => return Err(job_transient(error)),
            };
            if integration.status != IntegrationStatus::Connected {
                // Paused: the integration's status and last error say why,
                // and its owner was told when it broke.
                return Ok(());
            }
            let read = match self.read_history(workspace, id, cursor).await {
                Err(VaultError::GoneAtGoogle) => {
                    self.catch_up(workspace, &integration, &mailbox, cursor)
                        .await
                }
                other => other,
            };
            let (found, to) = match read {
                Ok(read) => read,
                Err(error) => return self.sync_failed(workspace, id, error).await,
            };
            let recorded = self
                .store
                .record_autodraft_sync(workspace, id, cursor, to, &found, |message| {
                    self.draft_job(workspace, message)
                })
                .await
                .map_err(job_transient)?;
            match recorded {
                Some(new) if new > 0 => {
                    tracing::debug!(integration = %id, new, "auto-draft sync found messages")
                }
                Some(_) => {}
                None => {
                    tracing::debug!(integration = %id, "the cursor moved meanwhile; nothing recorded")
                }
            }
            if !self
                .store
                .autodraft_sync_requested_since(workspace, id, started)
                .await
                .map_err(job_transient)?
            {
                return Ok(());
            }
        }
        Ok(())
    }

    async fn read_history(
        &self,
        workspace: WorkspaceId,
        id: IntegrationId,
        cursor: i64,
    ) -> Result<(Vec<FoundMessage>, i64), VaultError> {
        let gmail = self.vault.gmail().clone();
        let start = u64::try_from(cursor).unwrap_or(0);
        let mut found: Vec<FoundMessage> = Vec::new();
        let mut page_token: Option<String> = None;
        let mut latest = cursor;
        loop {
            let page = self
                .vault
                .with_gmail(workspace, id, Capability::ReadMail, |token| {
                    let (gmail, page_token) = (gmail.clone(), page_token.clone());
                    async move {
                        gmail
                            .inbox_history(&token, start, page_token.as_deref())
                            .await
                    }
                })
                .await?;
            for record in page.history {
                for added in record.messages_added {
                    if found.iter().all(|m| m.gmail_message_id != added.message.id) {
                        found.push(FoundMessage {
                            thread_id: added
                                .message
                                .thread_id
                                .clone()
                                .unwrap_or_else(|| added.message.id.clone()),
                            gmail_message_id: added.message.id,
                        });
                    }
                }
            }
            if let Some(history_id) = page
                .history_id
                .as_deref()
                .and_then(|h| h.parse::<i64>().ok())
            {
                latest = latest.max(history_id);
            }
            match page.next_page_token {
                Some(token) => page_token = Some(token),
                None => break,
            }
        }
        Ok((found, latest))
    }

    /// The cursor expired: list the inbox since the last sync instead, and
    /// say so in the mailbox's events.
    async fn catch_up(
        &self,
        workspace: WorkspaceId,
        integration: &Integration,
        mailbox: &AutoDraftMailbox,
        cursor: i64,
    ) -> Result<(Vec<FoundMessage>, i64), VaultError> {
        let id = integration.id;
        let gmail = self.vault.gmail().clone();
        let profile = self
            .vault
            .with_gmail(workspace, id, Capability::ReadMail, |token| {
                let gmail = gmail.clone();
                async move { gmail.profile(&token).await }
            })
            .await?;
        let now_history = profile
            .history_id
            .as_deref()
            .and_then(|h| h.parse::<i64>().ok())
            .unwrap_or(cursor)
            .max(cursor);
        let enabled_at = mailbox.enabled_at.unwrap_or_else(store::now);
        let since = mailbox
            .last_synced_at
            .map(|at| at - CATCH_UP_MARGIN)
            .unwrap_or(enabled_at)
            .max(enabled_at);
        let query = format!("after:{}", since.timestamp());
        let mut found: Vec<FoundMessage> = Vec::new();
        let mut page_token: Option<String> = None;
        loop {
            let page = self
                .vault
                .with_gmail(workspace, id, Capability::ReadMail, |token| {
                    let (gmail, page_token, query) =
                        (gmail.clone(), page_token.clone(), query.clone());
                    async move {
                        gmail
                            .inbox_messages(&token, &query, 500, page_token.as_deref())
                            .await
                    }
                })
                .await?;
            found.extend(page.messages.into_iter().map(|m| FoundMessage {
                thread_id: m.thread_id.clone().unwrap_or_else(|| m.id.clone()),
                gmail_message_id: m.id,
            }));
            match page.next_page_token {
                Some(token) if found.len() < CATCH_UP_LIMIT => page_token = Some(token),
                _ => break,
            }
        }
        // Oldest first, like history order.
        found.reverse();
        let message = format!(
            "Gmail no longer had the mailbox history from position {cursor}; Mailwright looked at the {} inbox message(s) since {} instead.",
            found.len(),
            since.format("%Y-%m-%d %H:%M UTC")
        );
        tracing::warn!(integration = %id, event = "autodraft_catch_up", found = found.len(), "{message}");
        metrics::counter!(CATCH_UPS).increment(1);
        if let Err(error) = self
            .store
            .record_autodraft_event(workspace, id, "catch_up", &message)
            .await
        {
            tracing::error!(integration = %id, error = format!("{error:#}"), "cannot record the catch-up event");
        }
        Ok((found, now_history))
    }

    /// A sync could not read the mailbox: say why on the mailbox. Connection
    /// problems pause it (the integration's status says why and its owner
    /// was told), so the job ends; outages retry.
    async fn sync_failed(
        &self,
        workspace: WorkspaceId,
        id: IntegrationId,
        error: VaultError,
    ) -> Result<(), JobError> {
        let (code, message, outcome) = match vault_to_pipeline(error) {
            PipelineError::Connection { code, message } => (code, message.clone(), Ok(())),
            PipelineError::Transient {
                message,
                retry_after,
            } => (
                "provider_unavailable",
                message.clone(),
                Err(JobError::Transient {
                    message,
                    retry_after,
                }),
            ),
            PipelineError::Permanent { code, message } => {
                (code, message.clone(), Err(JobError::Permanent(message)))
            }
        };
        if let Err(error) = self
            .store
            .record_autodraft_failure(workspace, id, code, &message)
            .await
        {
            tracing::error!(integration = %id, error = format!("{error:#}"), "cannot record the sync failure");
        }
        outcome
    }

    /// Run the pipeline for one message row (the `autodraft.draft` job).
    pub async fn draft_message(
        &self,
        job: &ClaimedJob,
        workspace: WorkspaceId,
        row: Uuid,
    ) -> Result<(), JobError> {
        let (message, enabled) = match self.store.autodraft_message(workspace, row).await {
            Ok(found) => found,
            Err(StoreError::NotFound) => return Ok(()),
            Err(error) => return Err(job_transient(error)),
        };
        if message.status.is_final() {
            return Ok(());
        }
        if !enabled {
            return self
                .finish_skipped(&message, SkipReason::AutoDraftOff)
                .await;
        }
        // A draft recorded for this source (e.g. by the test action) is this
        // message's draft.
        if let Some(existing) = self
            .store
            .autodraft_draft_for_source(
                workspace,
                message.integration_id,
                &message.gmail_message_id,
            )
            .await
            .map_err(job_transient)?
        {
            self.store
                .record_autodraft_draft(message.id, &existing)
                .await
                .map_err(job_transient)?;
            return Ok(());
        }
        let integration = match self
            .store
            .integration(workspace, message.integration_id)
            .await
        {
            Ok(integration) => integration,
            Err(StoreError::NotFound) => return Ok(()),
            Err(error) => return Err(job_transient(error)),
        };
        if integration.status != IntegrationStatus::Connected {
            // Paused: no call to Google can succeed; the integration's status
            // says why and its owner was told once.
            let (code, detail) = match integration.status {
                IntegrationStatus::MissingScopes => (
                    "missing_scopes",
                    "The connection lacks a permission auto-draft needs; reconnect it and allow it.",
                ),
                IntegrationStatus::NeedsReauth => (
                    "needs_reauth",
                    "Google no longer accepts the connection; reconnect it.",
                ),
                _ => ("disconnected", "The connection was disconnected."),
            };
            return self
                .finish_failed(&integration, &message, code, detail)
                .await;
        }
        let retrying = message.status == MessageStatus::Creating;
        // A model that is still down on this attempt gives way to the
        // built-in drafter: a reply now beats a better one hours later.
        let last_attempt = job.attempt >= MODEL_ATTEMPTS;
        let result = match self
            .evaluate(
                &integration,
                &message.gmail_message_id,
                retrying,
                last_attempt,
            )
            .await
        {
            Ok(Verdict::Skip(reason)) => return self.finish_skipped(&message, reason).await,
            Ok(Verdict::Adopt { provider_draft_id }) => {
                let generated = message.generated.clone().unwrap_or(Generated {
                    draft_type: "reply".into(),
                    draft_type_label: "reply".into(),
                    generator: "unknown".into(),
                });
                self.record_draft(
                    &integration,
                    &message,
                    &provider_draft_id,
                    None,
                    &generated,
                    "adopted",
                )
                .await
            }
            Ok(Verdict::Draft(plan)) => self.create(&integration, &message, &plan).await,
            Err(error) => Err(error),
        };
        match result {
            Ok(()) => {
                self.check_alert(&integration, false).await;
                Ok(())
            }
            Err(PipelineError::Transient {
                message: text,
                retry_after,
            }) => {
                // Retried until the retry horizon (then `give_up` records the
                // message as failed); until then it says so, and when.
                metrics::counter!(MESSAGES, "outcome" => "retrying", "reason" => "provider_unavailable").increment(1);
                let at = next_attempt_at(&self.settings.retry, job, retry_after);
                self.store
                    .mark_autodraft_message_retrying(
                        workspace,
                        message.id,
                        "provider_unavailable",
                        &text,
                        at,
                    )
                    .await
                    .map_err(job_transient)?;
                Err(JobError::RetryAt { message: text, at })
            }
            Err(PipelineError::Connection {
                code,
                message: text,
            })
            | Err(PipelineError::Permanent {
                code,
                message: text,
            }) => {
                self.finish_failed(&integration, &message, code, &text)
                    .await
            }
        }
    }

    /// Everything up to (not including) `drafts.create`.
    async fn evaluate(
        &self,
        integration: &Integration,
        gmail_message_id: &str,
        check_for_ours: bool,
        last_attempt: bool,
    ) -> Result<Verdict, PipelineError> {
        let (workspace, id) = (integration.workspace, integration.id);
        let gmail = self.vault.gmail().clone();
        let source = match self
            .vault
            .with_gmail(workspace, id, Capability::ReadMail, |token| {
                let gmail = gmail.clone();
                let message_id = gmail_message_id.to_owned();
                async move { gmail.message(&token, &message_id).await }
            })
            .await
        {
            Ok(source) => source,
            Err(VaultError::GoneAtGoogle) => return Ok(Verdict::Skip(SkipReason::Deleted)),
            Err(error) => return Err(vault_to_pipeline(error)),
        };
        let rfc822_message_id = reply_message_id(id, &source.id);
        if let Some(reason) = skip_reason_for(&source, &integration.email) {
            // Our own draft carries the DRAFT label; only a retry could meet it here.
            return Ok(Verdict::Skip(reason));
        }
        // Gmail's thread id is the id of its first message: a message that
        // starts its thread and arrived moments ago has no earlier messages,
        // and nobody has had time to answer it or draft a reply, so (on a
        // first attempt) the thread read is skipped. Older messages (found by
        // a poll) are checked: their owner may have replied meanwhile.
        let fresh = store::now().timestamp_millis() - source.internal_date_millis()
            < FRESH_MESSAGE.as_millis() as i64;
        if check_for_ours || source.thread_id != source.id || !fresh {
            let thread_id = source.thread_id.clone();
            let thread: GmailThread = self
                .vault
                .with_gmail(workspace, id, Capability::ReadMail, |token| {
                    let (gmail, thread_id) = (gmail.clone(), thread_id.clone());
                    async move {
                        gmail
                            .thread_metadata(&token, &thread_id, &["From", SOURCE_HEADER])
                            .await
                    }
                })
                .await
                .map_err(vault_to_pipeline)?;
            let drafts: Vec<&GmailMessage> = thread
                .messages
                .iter()
                .filter(|m| m.has_label("DRAFT"))
                .collect();
            if drafts
                .iter()
                .any(|draft| draft.header(SOURCE_HEADER) == Some(source.id.as_str()))
            {
                let lookup = rfc822_message_id.clone();
                let found = self
                    .vault
                    .with_gmail(workspace, id, Capability::Draft, |token| {
                        let (gmail, lookup) = (gmail.clone(), lookup.clone());
                        async move { gmail.find_draft(&token, &lookup).await }
                    })
                    .await
                    .map_err(vault_to_pipeline)?;
                return match found {
                    Some(draft) => Ok(Verdict::Adopt {
                        provider_draft_id: draft.id,
                    }),
                    // Gmail's search index lags its storage by moments.
                    None => Err(PipelineError::Transient {
                        message: "the draft an earlier attempt created is not searchable yet"
                            .into(),
                        retry_after: Some(Duration::from_secs(5)),
                    }),
                };
            }
            if !drafts.is_empty() {
                return Ok(Verdict::Skip(SkipReason::ThreadHasDraft));
            }
            let latest = thread
                .messages
                .iter()
                .filter(|m| !m.has_label("DRAFT"))
                .max_by_key(|m| m.internal_date_millis());
            if let Some(latest) = latest
                && latest.id != source.id
                && (latest.has_label("SENT")
                    || latest
                        .header("From")
                        .and_then(parse_mailbox)
                        .is_some_and(|(_, from)| from.eq_ignore_ascii_case(&integration.email)))
            {
                return Ok(Verdict::Skip(SkipReason::ThreadLatestFromOwner));
            }
        }
        let reply_to = source
            .header("Reply-To")
            .and_then(parse_mailbox)
            .or_else(|| source.header("From").and_then(parse_mailbox));
        let Some((to_name, to_address)) = reply_to else {
            return Ok(Verdict::Skip(SkipReason::NoReplyAddress));
        };
        let (sender_name, sender_address) = source
            .header("From")
            .and_then(parse_mailbox)
            .unwrap_or((to_name.clone(), to_address.clone()));
        let original_subject = source.header("Subject").unwrap_or_default().to_owned();
        let text = source.text_body();
        let request = DraftRequest {
            sender_name: sender_name.clone(),
            sender_address: sender_address.clone(),
            subject: original_subject.clone(),
            text: text.clone(),
            owner_name: integration.display_name.clone(),
            owner_address: integration.email.clone(),
        };
        let generated = self.generate(&request, last_attempt).await?;
        let date = source.header("Date").unwrap_or_default().to_owned();
        let sender = match &sender_name {
            Some(name) => format!("{name} <{sender_address}>"),
            None => sender_address.clone(),
        };
        let body = format!(
            "{}\n\n{}",
            generated.body.trim_end(),
            drafting::quote(&sender, &date, &text)
        );
        let to = match to_name {
            Some(name) => format!("{} <{to_address}>", quote_display_name(&name)),
            None => to_address,
        };
        let in_reply_to = source
            .header("Message-ID")
            .map(message_ids)
            .and_then(|ids| ids.into_iter().next());
        let mut references = source
            .header("References")
            .map(message_ids)
            .unwrap_or_default();
        if let Some(original) = &in_reply_to
            && !references.contains(original)
        {
            references.push(original.clone());
        }
        Ok(Verdict::Draft(Box::new(PlannedReply {
            subject: drafting::reply_subject(&original_subject),
            label: generated.label,
            generator: generated.generator,
            to,
            body,
            in_reply_to,
            references,
            rfc822_message_id,
            source,
        })))
    }

    /// The reply body from the language model, or the built-in drafter when
    /// none is configured, when the model's answer is unusable, or when the
    /// model is still down on the message's last attempt (a draft beats none).
    async fn generate(
        &self,
        request: &DraftRequest,
        last_attempt: bool,
    ) -> Result<GeneratedDraft, PipelineError> {
        let Generator::Llm(llm) = &self.generator else {
            return Ok(drafting::builtin_draft(request));
        };
        match llm.draft(request).await {
            Ok(generated) => Ok(generated),
            Err(LlmError::Rejected { reason }) => {
                tracing::warn!(reason = %reason, "the language model refused; using the built-in drafter");
                Ok(drafting::builtin_draft(request))
            }
            Err(LlmError::Unavailable { reason, .. }) if last_attempt => {
                tracing::warn!(reason = %reason, "the language model is still unavailable; using the built-in drafter");
                Ok(drafting::builtin_draft(request))
            }
            Err(LlmError::Unavailable {
                reason,
                retry_after,
            }) => Err(PipelineError::Transient {
                message: format!("the language model is unavailable ({reason})"),
                retry_after,
            }),
        }
    }

    async fn create(
        &self,
        integration: &Integration,
        message: &InboundMessage,
        plan: &PlannedReply,
    ) -> Result<(), PipelineError> {
        let generated = Generated {
            draft_type: plan.label.draft_type().to_owned(),
            draft_type_label: plan.label.label().to_owned(),
            generator: plan.generator.clone(),
        };
        self.store
            .mark_autodraft_creating(message.workspace, message.id, &generated)
            .await
            .map_err(store_transient)?;
        let draft_id = self.create_in_gmail(integration, plan).await?;
        self.record_draft(
            integration,
            message,
            &draft_id,
            plan.in_reply_to.clone(),
            &generated,
            "created",
        )
        .await
    }

    async fn create_in_gmail(
        &self,
        integration: &Integration,
        plan: &PlannedReply,
    ) -> Result<String, PipelineError> {
        let raw = reply_rfc822(&Reply {
            from_name: integration.display_name.as_deref(),
            from_address: &integration.email,
            to: &plan.to,
            subject: &plan.subject,
            body: &plan.body,
            message_id: &plan.rfc822_message_id,
            in_reply_to: plan.in_reply_to.as_deref(),
            references: &plan.references,
            source: &plan.source.id,
        })
        .map_err(|problem| PipelineError::Permanent {
            code: "invalid_message",
            message: problem,
        })?;
        let raw = Arc::new(raw);
        let gmail = self.vault.gmail().clone();
        let thread_id = plan.source.thread_id.clone();
        let draft = self
            .vault
            .with_gmail(
                integration.workspace,
                integration.id,
                Capability::Draft,
                |token| {
                    let (gmail, raw, thread_id) =
                        (gmail.clone(), Arc::clone(&raw), thread_id.clone());
                    async move { gmail.create_draft(&token, &raw, Some(&thread_id)).await }
                },
            )
            .await
            .map_err(vault_to_pipeline)?;
        Ok(draft.id)
    }

    async fn record_draft(
        &self,
        integration: &Integration,
        message: &InboundMessage,
        provider_draft_id: &str,
        source_rfc822_message_id: Option<String>,
        generated: &Generated,
        how: &'static str,
    ) -> Result<(), PipelineError> {
        let record = DraftRecord {
            id: Uuid::now_v7(),
            workspace: integration.workspace,
            integration_id: integration.id,
            source_message_id: message.gmail_message_id.clone(),
            source_rfc822_message_id,
            thread_id: message.thread_id.clone(),
            provider_draft_id: provider_draft_id.to_owned(),
            draft_type: generated.draft_type.clone(),
            draft_type_label: generated.draft_type_label.clone(),
            generator: generated.generator.clone(),
            created_at: store::now(),
        };
        self.store
            .record_autodraft_draft(message.id, &record)
            .await
            .map_err(store_transient)?;
        metrics::counter!(MESSAGES, "outcome" => "drafted", "reason" => how).increment(1);
        tracing::info!(integration = %integration.id, message = %message.gmail_message_id, draft_type = %generated.draft_type, how, "auto-draft created a reply draft");
        Ok(())
    }

    async fn finish_skipped(
        &self,
        message: &InboundMessage,
        reason: SkipReason,
    ) -> Result<(), JobError> {
        self.store
            .finish_autodraft_message(
                message.workspace,
                message.id,
                MessageStatus::Skipped,
                reason.code(),
                reason.describe(),
            )
            .await
            .map_err(job_transient)?;
        metrics::counter!(MESSAGES, "outcome" => "skipped", "reason" => reason.code()).increment(1);
        tracing::debug!(integration = %message.integration_id, message = %message.gmail_message_id, reason = reason.code(), "auto-draft skipped a message");
        Ok(())
    }

    async fn finish_failed(
        &self,
        integration: &Integration,
        message: &InboundMessage,
        code: &'static str,
        detail: &str,
    ) -> Result<(), JobError> {
        self.store
            .finish_autodraft_message(
                message.workspace,
                message.id,
                MessageStatus::Failed,
                code,
                detail,
            )
            .await
            .map_err(job_transient)?;
        metrics::counter!(MESSAGES, "outcome" => "failed", "reason" => code).increment(1);
        tracing::warn!(integration = %integration.id, message = %message.gmail_message_id, code, "auto-draft could not draft a reply: {detail}");
        self.check_alert(integration, true).await;
        Ok(())
    }

    /// A message whose retries ran out of time: failed, with the reason.
    pub async fn give_up_message(
        &self,
        workspace: WorkspaceId,
        row: Uuid,
        reason: &str,
    ) -> Result<(), StoreError> {
        let (message, _) = match self.store.autodraft_message(workspace, row).await {
            Ok(found) => found,
            Err(StoreError::NotFound) => return Ok(()),
            Err(error) => return Err(error),
        };
        if message.status.is_final() {
            return Ok(());
        }
        let integration = match self
            .store
            .integration(workspace, message.integration_id)
            .await
        {
            Ok(integration) => integration,
            Err(StoreError::NotFound) => return Ok(()),
            Err(error) => return Err(error),
        };
        let detail = format!("Gmail kept failing; {reason}.");
        self.finish_failed(&integration, &message, "provider_unavailable", &detail)
            .await
            .map_err(|error| StoreError::Other(error.to_string().into()))
    }

    /// The failure-rate alert: after a failure, fire when the window's
    /// failure share reaches the threshold; after a success while firing,
    /// clear when it dropped below. One notice per episode.
    async fn check_alert(&self, integration: &Integration, after_failure: bool) {
        if let Err(error) = self.check_alert_inner(integration, after_failure).await {
            tracing::error!(integration = %integration.id, error = format!("{error:#}"), "cannot evaluate the auto-draft failure alert");
        }
    }

    async fn check_alert_inner(
        &self,
        integration: &Integration,
        after_failure: bool,
    ) -> anyhow::Result<()> {
        let (workspace, id) = (integration.workspace, integration.id);
        if !after_failure {
            // Cheap path: nothing to clear unless the alert is firing.
            let firing = self
                .store
                .autodraft_mailbox(workspace, id)
                .await?
                .is_some_and(|mailbox| mailbox.alert_active_since.is_some());
            if !firing {
                return Ok(());
            }
        }
        let since = store::now() - chrono_duration(self.settings.alert_window);
        let (finished, failed) = self
            .store
            .autodraft_outcomes_since(workspace, id, since)
            .await?;
        let rate = if finished == 0 {
            0.0
        } else {
            failed as f64 / finished as f64
        };
        let breached = finished >= self.settings.alert_min_messages
            && rate >= self.settings.alert_failure_rate;
        if after_failure && breached {
            if let Some(at) = self.store.set_autodraft_alert(workspace, id, true).await? {
                let percent = (rate * 100.0).round();
                let message = format!(
                    "{failed} of the last {finished} messages ({percent}%) could not be drafted within {} minutes.",
                    self.settings.alert_window.as_secs() / 60
                );
                tracing::warn!(integration = %id, event = "autodraft_failure_rate_alert", failed, finished, "{message}");
                metrics::counter!(ALERTS).increment(1);
                self.store
                    .record_autodraft_event(workspace, id, "failure_rate_alert", &message)
                    .await?;
                self.notifier
                    .autodraft_failing(integration, &message, at)
                    .await;
            }
        } else if !after_failure
            && !breached
            && self
                .store
                .set_autodraft_alert(workspace, id, false)
                .await?
                .is_some()
        {
            tracing::info!(integration = %id, event = "autodraft_failure_rate_recovered", "auto-draft failures are back below the alert threshold");
            self.store
                .record_autodraft_event(
                    workspace,
                    id,
                    "failure_rate_recovered",
                    "Drafting works again; the failure rate is below the alert threshold.",
                )
                .await?;
        }
        Ok(())
    }

    /// The whole pipeline on one message (the newest inbox message when none
    /// is named), without recording anything unless `create_draft`.
    pub async fn test(
        &self,
        workspace: WorkspaceId,
        id: IntegrationId,
        message_id: Option<String>,
        create_draft: bool,
    ) -> Result<TestOutcome, AutoDraftError> {
        let integration = self.gmail_integration(workspace, id).await?;
        let gmail = self.vault.gmail().clone();
        let named_by_client = message_id.is_some();
        let message_id = match message_id {
            Some(message_id) => message_id,
            None => {
                let page = self
                    .vault
                    .with_gmail(workspace, id, Capability::ReadMail, |token| {
                        let gmail = gmail.clone();
                        async move { gmail.inbox_messages(&token, "", 1, None).await }
                    })
                    .await?;
                page.messages
                    .into_iter()
                    .next()
                    .map(|m| m.id)
                    .ok_or(AutoDraftError::NoMessage)?
            }
        };
        let verdict = match self.evaluate(&integration, &message_id, true, true).await {
            Ok(verdict) => verdict,
            Err(PipelineError::Connection { code, message }) => {
                return Err(match code {
                    "missing_scopes" => AutoDraftError::MissingScopes(
                        integration
                            .granted_scopes
                            .missing_for(IntegrationType::Gmail),
                    ),
                    "needs_reauth" => AutoDraftError::NeedsReauth,
                    _ => AutoDraftError::Provider(message),
                });
            }
            Err(PipelineError::Transient { message, .. }) => {
                return Err(AutoDraftError::Unavailable(message));
            }
            // Gmail refuses an id that is not one of its own.
            Err(PipelineError::Permanent { .. }) if named_by_client => {
                return Err(AutoDraftError::NoSuchMessage);
            }
            Err(PipelineError::Permanent { message, .. }) => {
                return Err(AutoDraftError::Provider(message));
            }
        };
        if named_by_client && matches!(verdict, Verdict::Skip(SkipReason::Deleted)) {
            return Err(AutoDraftError::NoSuchMessage);
        }
        match verdict {
            Verdict::Skip(reason) => Ok(TestOutcome {
                message_id,
                thread_id: String::new(),
                draft_type: String::new(),
                draft_type_label: String::new(),
                subject: String::new(),
                body: String::new(),
                skipped: Some(reason),
                draft_id: None,
            }),
            Verdict::Adopt { provider_draft_id } => Ok(TestOutcome {
                message_id,
                thread_id: String::new(),
                draft_type: String::new(),
                draft_type_label: String::new(),
                subject: String::new(),
                body: String::new(),
                skipped: Some(SkipReason::ThreadHasDraft),
                draft_id: Some(provider_draft_id),
            }),
            Verdict::Draft(plan) => {
                let draft_id = if create_draft {
                    let draft_id = self.create_in_gmail(&integration, &plan).await.map_err(
                        |error| match error {
                            PipelineError::Transient { message, .. } => {
                                AutoDraftError::Unavailable(message)
                            }
                            PipelineError::Connection { message, .. }
                            | PipelineError::Permanent { message, .. } => {
                                AutoDraftError::Provider(message)
                            }
                        },
                    )?;
                    let record = DraftRecord {
                        id: Uuid::now_v7(),
                        workspace,
                        integration_id: id,
                        source_message_id: plan.source.id.clone(),
                        source_rfc822_message_id: plan.in_reply_to.clone(),
                        thread_id: plan.source.thread_id.clone(),
                        provider_draft_id: draft_id.clone(),
                        draft_type: plan.label.draft_type().to_owned(),
                        draft_type_label: plan.label.label().to_owned(),
                        generator: plan.generator.clone(),
                        created_at: store::now(),
                    };
                    // When a sync already found this message, its row ends drafted too.
                    let row = self
                        .store
                        .autodraft_message_by_gmail_id(workspace, id, &plan.source.id)
                        .await?
                        .map(|message| message.id)
                        .unwrap_or_else(Uuid::nil);
                    self.store.record_autodraft_draft(row, &record).await?;
                    Some(draft_id)
                } else {
                    None
                };
                Ok(TestOutcome {
                    message_id,
                    thread_id: plan.source.thread_id.clone(),
                    draft_type: plan.label.draft_type().to_owned(),
                    draft_type_label: plan.label.label().to_owned(),
                    subject: plan.subject.clone(),
                    body: plan.body.clone(),
                    skipped: None,
                    draft_id,
                })
            }
        }
    }
}

/// A display name as it goes in a header: quoted when it holds specials.
fn quote_display_name(name: &str) -> String {
    let cleaned: String = name
        .chars()
        .filter(|c| !c.is_control() && *c != '"' && *c != '\\')
        .collect();
    if cleaned.chars().any(|c| "()<>[]:;@\\,.".contains(c)) {
        format!("\"{cleaned}\"")
    } else {
        cleaned
    }
}

fn chrono_duration(duration: Duration) -> chrono::Duration {
    chrono::Duration::from_std(duration).unwrap_or(chrono::Duration::MAX)
}

/// The `autodraft.sync` job.
pub struct SyncMailbox(pub Arc<AutoDraft>);

impl JobHandler for SyncMailbox {
    fn kind(&self) -> &'static str {
        SYNC_MAILBOX
    }

    fn run<'a>(&'a self, job: &'a ClaimedJob) -> JobFuture<'a> {
        recorded_by_worker(async move {
            let (Some(workspace), Some(id)) = (
                job.workspace,
                job.payload
                    .get("integration_id")
                    .and_then(Value::as_str)
                    .and_then(|id| IntegrationId::parse(id).ok()),
            ) else {
                return Err(JobError::Permanent("the job names no mailbox".into()));
            };
            self.0.sync(workspace, id).await
        })
    }
}

/// The `autodraft.draft` job.
pub struct DraftMessage(pub Arc<AutoDraft>);

/// The message row an `autodraft.draft` job names, if its payload is well formed.
fn job_message(job: &ClaimedJob) -> Option<(WorkspaceId, Uuid)> {
    let row = job
        .payload
        .get("message_id")
        .and_then(Value::as_str)
        .and_then(|id| Uuid::parse_str(id).ok())?;
    Some((job.workspace?, row))
}

impl JobHandler for DraftMessage {
    fn kind(&self) -> &'static str {
        DRAFT_MESSAGE
    }

    fn run<'a>(&'a self, job: &'a ClaimedJob) -> JobFuture<'a> {
        recorded_by_worker(async move {
            let Some((workspace, row)) = job_message(job) else {
                return Err(JobError::Permanent("the job names no message".into()));
            };
            self.0.draft_message(job, workspace, row).await
        })
    }

    /// The message ends `failed`, saying how long it was tried.
    fn give_up<'a>(&'a self, job: &'a ClaimedJob, reason: &'a str) -> GiveUpFuture<'a> {
        Box::pin(async move {
            let Some((workspace, row)) = job_message(job) else {
                return Ok(());
            };
            self.0.give_up_message(workspace, row, reason).await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use providers::google::gmail::{MessageHeader, MessagePart};

    fn message(labels: &[&str], headers: &[(&str, &str)]) -> GmailMessage {
        GmailMessage {
            id: "m1".into(),
            thread_id: "m1".into(),
            label_ids: labels.iter().map(|l| (*l).to_owned()).collect(),
            internal_date: None,
            payload: Some(MessagePart {
                headers: headers
                    .iter()
                    .map(|(name, value)| MessageHeader {
                        name: (*name).to_owned(),
                        value: (*value).to_owned(),
                    })
                    .collect(),
                ..MessagePart::default()
            }),
        }
    }

    const OWNER: &str = "ann@example.com";

    #[test]
    fn ordinary_mail_is_not_skipped() {
        let m = message(&["INBOX", "UNREAD"], &[("From", "Zoë <zoe@example.com>")]);
        assert_eq!(skip_reason_for(&m, OWNER), None);
    }

    #[test]
    fn each_rule_names_its_reason() {
        let from = ("From", "Zoë <zoe@example.com>");
        let cases: Vec<(GmailMessage, SkipReason)> = vec![
            (
                message(&["INBOX"], &[("From", "Ann <ANN@example.com>")]),
                SkipReason::OwnMessage,
            ),
            (message(&["INBOX", "SENT"], &[from]), SkipReason::OwnMessage),
            (
                message(&["INBOX"], &[("From", "no-reply@shop.example")]),
                SkipReason::NoReplySender,
            ),
            (
                message(
                    &["INBOX"],
                    &[("From", "Do Not Reply <donotreply@bank.example>")],
                ),
                SkipReason::NoReplySender,
            ),
            (
                message(&["INBOX"], &[("From", "MAILER-DAEMON@mx.example")]),
                SkipReason::NoReplySender,
            ),
            (
                message(&["INBOX"], &[from, ("List-Id", "<dev.lists.example>")]),
                SkipReason::MailingList,
            ),
            (
                message(&["INBOX"], &[from, ("List-Unsubscribe", "<mailto:u@x>")]),
                SkipReason::MailingList,
            ),
            (
                message(&["INBOX"], &[from, ("Precedence", "list")]),
                SkipReason::MailingList,
            ),
            (
                message(&["INBOX"], &[from, ("Precedence", "bulk")]),
                SkipReason::Bulk,
            ),
            (
                message(&["INBOX"], &[from, ("Auto-Submitted", "auto-replied")]),
                SkipReason::AutoSubmitted,
            ),
            (message(&["SPAM"], &[from]), SkipReason::SpamOrTrash),
            (
                message(&["INBOX", "TRASH"], &[from]),
                SkipReason::SpamOrTrash,
            ),
            (
                message(&["INBOX", "CATEGORY_PROMOTIONS"], &[from]),
                SkipReason::Promotions,
            ),
            (message(&["ARCHIVE"], &[from]), SkipReason::NotInInbox),
        ];
        for (m, expected) in cases {
            assert_eq!(
                skip_reason_for(&m, OWNER),
                Some(expected),
                "{:?}",
                m.payload
            );
        }
        let explicit_no = message(&["INBOX"], &[from, ("Auto-Submitted", "no")]);
        assert_eq!(skip_reason_for(&explicit_no, OWNER), None);
    }

    #[test]
    fn no_reply_detection_is_not_fooled_by_ordinary_names() {
        assert!(is_no_reply("noreply@x.example"));
        assert!(is_no_reply("no_reply@x.example"));
        assert!(is_no_reply("billing-noreply@x.example"));
        assert!(!is_no_reply("nora@x.example"));
        assert!(!is_no_reply("reply@x.example"));
    }

    #[test]
    fn display_names_with_specials_are_quoted() {
        assert_eq!(quote_display_name("Zoë Martin"), "Zoë Martin");
        assert_eq!(quote_display_name("Martin, Zoë"), "\"Martin, Zoë\"");
        assert_eq!(quote_display_name("A \"B\" C"), "A B C");
    }
}
