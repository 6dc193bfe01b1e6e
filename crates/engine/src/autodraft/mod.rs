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
use domain::mail::{Message, MessageRef};
use domain::scopes::{Capability, IntegrationStatus};
use domain::{IntegrationId, WorkspaceId};
use providers::google::message::{Reply, SOURCE_HEADER, reply_headers, reply_rfc822};
use providers::llm::{ChatDrafter, LlmError};
use serde_json::{Value, json};
use store::autodraft::{AutoDraftMailbox, FoundMessage, Generated, InboundMessage, MessageStatus};
pub use store::autodraft::{DraftRecord, DraftSummary};
pub use store::daily::DayCount;
use store::integrations::Integration;
use store::jobs::{ClaimedJob, NewJob};
use store::{Store, StoreError};
use uuid::Uuid;

mod alert;
mod idle;
mod jobs;
mod outcomes;
mod pipeline;
mod service;
mod style;
mod sync;
mod watch;

pub use domain::mail::{SkipReason, skip_reason_for};
pub use idle::{IDLE_TICK, ImapIdle};
pub use jobs::{DraftMessage, SyncMailbox};
pub use outcomes::{
    CHECK_OUTCOMES, CheckOutcomes, CleanupItem, DEFAULT_CLEANUP_DAYS, DRAFT_OUTCOMES,
    OUTCOME_CHECK_EVERY,
};
pub use pipeline::{PlannedReply, Verdict};
pub use service::{Overview, WatchOverview, WorkflowSync};
pub use style::{LEARN_STYLE, LearnStyle, STYLE_REFRESH};
pub use watch::{
    GraphNotification, SUBSCRIPTION_LIFETIME, WATCH_MAILBOX, WATCH_RENEW_EVERY, WATCH_RETRY_AFTER,
    WATCH_TICK, WATCHES, WatchMailbox, WatchStatus,
};

use crate::error::ServiceError;
use crate::mailbox::{Changes, Mailbox};
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
/// `model`: the language model's tokens (prompt and answer).
pub const LLM_TOKENS: &str = "mailwright_llm_tokens_total";
/// Drafts the built-in drafter wrote because a mailbox's model budget for
/// the day was used up.
pub const LLM_OVER_BUDGET: &str = "mailwright_llm_over_budget_total";
/// Tokens a mailbox's drafts may use per UTC day by default.
pub const DEFAULT_LLM_DAILY_TOKENS: u64 = 200_000;

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
    /// Where Gmail publishes watched mailboxes' changes; `None`: no watch,
    /// polling only.
    pub pubsub_topic: Option<domain::pubsub::PubSubTopic>,
    /// Where Microsoft Graph posts change notifications for Outlook
    /// mailboxes (`<public URL>/api/push/microsoft`); `None` (Microsoft not
    /// configured): polling only.
    pub graph_notification_url: Option<String>,
    /// Tokens one mailbox's drafts may use per UTC day; over it, the
    /// built-in drafter writes them.
    pub llm_daily_tokens: u64,
    /// IMAP mailboxes one process follows by IDLE at most; beyond, they
    /// are polled.
    pub imap_idle_connections: usize,
}

impl Default for AutoDraftSettings {
    fn default() -> Self {
        AutoDraftSettings {
            poll_interval: Duration::from_secs(60),
            alert_failure_rate: 0.5,
            alert_window: Duration::from_secs(3600),
            alert_min_messages: 5,
            retry: RetryPolicy::DEFAULT,
            pubsub_topic: None,
            graph_notification_url: None,
            llm_daily_tokens: DEFAULT_LLM_DAILY_TOKENS,
            imap_idle_connections: 100,
        }
    }
}

/// Who writes the reply.
#[derive(Clone)]
pub enum Generator {
    Builtin,
    Llm(ChatDrafter),
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
    events: crate::webhooks::Events,
    vault: Arc<Vault>,
    notifier: Arc<Notifier>,
    generator: Generator,
    settings: AutoDraftSettings,
    /// Each mailbox's signature as last read, and when (read again after
    /// [`SIGNATURE_TTL`]): one Gmail call per mailbox and hour, not per draft.
    signatures: std::sync::Mutex<
        std::collections::HashMap<IntegrationId, (std::time::Instant, Option<String>)>,
    >,
}

/// How long a mailbox's signature is reused before it is read again.
const SIGNATURE_TTL: Duration = Duration::from_secs(3600);
/// Most signatures kept (one per mailbox drafting now; the oldest go).
const SIGNATURES_KEPT: usize = 10_000;

/// The Message-ID of the reply to `source` in `integration`: the same on
/// every attempt, so a retry can find the draft by it.
fn reply_message_id(integration: IntegrationId, source: &str) -> String {
    // Gmail ids are alphanumeric; an IMAP id (`7:12:INBOX`) has characters
    // a Message-ID may not: they become `-`.
    let token: String = source
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    format!(
        "<autodraft.{token}.{}@mailwright>",
        integration.as_uuid().simple()
    )
}

/// A vault error as the pipeline acts on it (the words are the vault's).
fn vault_to_pipeline(error: VaultError) -> PipelineError {
    let facing = error.user_facing(None);
    match facing.retry {
        Some(retry_after) => PipelineError::Transient {
            message: facing.problem.trim_end_matches('.').to_owned(),
            retry_after,
        },
        None if facing.remedy.is_empty() => PipelineError::Permanent {
            code: facing.code,
            message: facing.message(),
        },
        None => PipelineError::Connection {
            code: facing.code,
            message: facing.message(),
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
            events: crate::webhooks::Events::new(store.clone()),
            store,
            vault,
            notifier,
            generator,
            settings,
            signatures: std::sync::Mutex::default(),
        }
    }

    /// The mailbox owner's signature (plain text), read at most hourly.
    async fn signature(&self, inbox: &Mailbox) -> Result<Option<String>, PipelineError> {
        let id = inbox.integration().id;
        let cached = {
            let signatures = self
                .signatures
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            signatures
                .get(&id)
                .filter(|(at, _)| at.elapsed() < SIGNATURE_TTL)
                .map(|(_, signature)| signature.clone())
        };
        if let Some(signature) = cached {
            return Ok(signature);
        }
        let signature = inbox.signature().await.map_err(vault_to_pipeline)?;
        let mut signatures = self
            .signatures
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if signatures.len() >= SIGNATURES_KEPT {
            signatures.retain(|_, (at, _)| at.elapsed() < SIGNATURE_TTL);
            if signatures.len() >= SIGNATURES_KEPT {
                signatures.clear();
            }
        }
        signatures.insert(id, (std::time::Instant::now(), signature.clone()));
        Ok(signature)
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

    pub(super) fn draft_job(&self, workspace: WorkspaceId, message: Uuid) -> NewJob {
        NewJob::new(DRAFT_MESSAGE, json!({ "message_id": message }))
            .in_workspace(workspace)
            .dedupe_key(format!("autodraft.draft:{message}"))
    }

    /// The integration, or `None` when it was deleted meanwhile (its
    /// mailbox, messages and jobs go with it, so there is nothing to do).
    pub(super) async fn existing_integration(
        &self,
        workspace: WorkspaceId,
        id: IntegrationId,
    ) -> Result<Option<Integration>, StoreError> {
        match self.store.integration(workspace, id).await {
            Ok(integration) => Ok(Some(integration)),
            Err(StoreError::NotFound) => Ok(None),
            Err(error) => Err(error),
        }
    }

    /// The mailbox a background job works on, opened; `None` when there is
    /// nothing to do now (deleted, or broken: its status says why and its
    /// owner was told). Outages are the job's to retry.
    pub(super) async fn mailbox_for_job(
        &self,
        workspace: WorkspaceId,
        id: IntegrationId,
    ) -> Result<Option<Mailbox>, JobError> {
        let Some(integration) = self
            .existing_integration(workspace, id)
            .await
            .map_err(job_transient)?
        else {
            return Ok(None);
        };
        if integration.status != IntegrationStatus::Connected {
            return Ok(None);
        }
        match Mailbox::open(&self.vault, workspace, id).await {
            Ok(inbox) => Ok(Some(inbox)),
            Err(VaultError::NotFound | VaultError::NeedsReauth | VaultError::Disconnected) => {
                Ok(None)
            }
            Err(error) => Err(outcomes::vault_job_error(error)),
        }
    }

    /// The Gmail integration, or why auto-draft cannot use it.
    pub(super) async fn gmail_integration(
        &self,
        workspace: WorkspaceId,
        id: IntegrationId,
    ) -> Result<Integration, ServiceError> {
        let integration = self.store.integration(workspace, id).await?;
        if !integration.integration_type.is_mailbox() {
            return Err(ServiceError::Conflict(
                "Auto-draft works on mailboxes (Gmail, Outlook, IMAP); this one is a calendar connection."
                    .into(),
            ));
        }
        Ok(integration)
    }
}

fn chrono_duration(duration: Duration) -> chrono::Duration {
    chrono::Duration::from_std(duration).unwrap_or(chrono::Duration::MAX)
}
