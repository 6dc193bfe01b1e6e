//! Auto-draft: per-mailbox settings and sync cursor, the inbound messages a
//! sync found (one row per message: what became of it and why), the drafts
//! created, and notable events (a catch-up after an expired cursor).
//!
//! Stats are computed from these rows rather than kept as counters, so they
//! cannot drift from what happened.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use domain::drafting::rules::DraftRules;
use domain::drafting::style::StyleProfile;
use domain::mail::MailboxCursor;
use domain::{IntegrationId, JobId, WorkspaceId};
use uuid::Uuid;

use crate::integrations::LastError;
use crate::jobs::{NewJob, insert_job, insert_or_hasten_job};
use crate::{Store, StoreError, across_workspaces, in_workspace, in_workspace_tx, now};

mod messages;
mod usage;

pub use usage::LlmUsage;

/// One mailbox's auto-draft settings and sync state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AutoDraftMailbox {
    pub integration_id: IntegrationId,
    pub workspace: WorkspaceId,
    pub enabled: bool,
    /// The position the next sync starts from (Gmail's `historyId`, IMAP's
    /// packed UIDVALIDITY and UIDNEXT, Outlook's delta round).
    pub history_id: Option<i64>,
    /// The provider's opaque cursor at that position (Graph's delta link).
    pub cursor_link: Option<String>,
    pub enabled_at: Option<DateTime<Utc>>,
    pub next_poll_at: Option<DateTime<Utc>>,
    pub sync_requested_at: Option<DateTime<Utc>>,
    pub last_synced_at: Option<DateTime<Utc>>,
    pub last_failure: Option<LastError>,
    pub alert_active_since: Option<DateTime<Utc>>,
    pub watch: MailboxWatch,
    pub updated_at: DateTime<Utc>,
    /// An enabled workflow starts when mail arrives here: the mailbox is
    /// synced (and watched) even with auto-draft off.
    pub for_workflows: bool,
    /// What the owner asks of every draft (for the model).
    pub instructions: Option<String>,
    /// Senders and domains to always or never draft for.
    pub rules: DraftRules,
    /// The opt-in clean-up: untouched drafts in threads quiet for this many
    /// days are deleted (`None`: off).
    pub cleanup_after_days: Option<i32>,
    /// How the owner writes (`None`: not learnt yet).
    pub style: Option<StyleProfile>,
    /// When the style was learnt from sent mail.
    pub style_learned_at: Option<DateTime<Utc>>,
}

impl AutoDraftMailbox {
    /// Whether syncs read this mailbox: auto-draft is on, or a workflow
    /// waits for its mail.
    pub fn synced(&self) -> bool {
        self.enabled || self.for_workflows
    }

    /// Whether its sync is under way: synced, with a cursor and a poll (a
    /// disconnect clears both; a new reader then starts it afresh).
    pub fn reading(&self) -> bool {
        self.synced() && self.history_id.is_some() && self.next_poll_at.is_some()
    }

    /// Where the next sync starts, if anywhere.
    pub fn cursor(&self) -> Option<MailboxCursor> {
        self.history_id.map(|position| MailboxCursor {
            position,
            link: self.cursor_link.clone(),
        })
    }
}

/// The mailbox's push watch (Gmail `users.watch`), as last recorded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MailboxWatch {
    /// Until when the provider announces changes; `None`: never watched.
    pub expires_at: Option<DateTime<Utc>>,
    /// When it is renewed (or, after a failure, tried again) next; `None`:
    /// due as soon as a topic is configured.
    pub renew_at: Option<DateTime<Utc>>,
    /// Why the last attempt failed; cleared by a success.
    pub last_error: Option<LastError>,
    /// The Microsoft Graph subscription that announces an Outlook
    /// mailbox's new mail (`None` for Gmail's watch, or none made yet).
    pub subscription_id: Option<String>,
}

#[derive(sqlx::FromRow)]
struct MailboxRow {
    integration_id: Uuid,
    workspace_id: Uuid,
    enabled: bool,
    history_id: Option<i64>,
    cursor_link: Option<String>,
    enabled_at: Option<DateTime<Utc>>,
    next_poll_at: Option<DateTime<Utc>>,
    sync_requested_at: Option<DateTime<Utc>>,
    last_synced_at: Option<DateTime<Utc>>,
    last_failure_code: Option<String>,
    last_failure_message: Option<String>,
    last_failure_at: Option<DateTime<Utc>>,
    alert_active_since: Option<DateTime<Utc>>,
    watch_expires_at: Option<DateTime<Utc>>,
    watch_renew_at: Option<DateTime<Utc>>,
    watch_error_code: Option<String>,
    watch_error_message: Option<String>,
    watch_error_at: Option<DateTime<Utc>>,
    subscription_id: Option<String>,
    updated_at: DateTime<Utc>,
    for_workflows: bool,
    instructions: Option<String>,
    rules: Option<String>,
    cleanup_after_days: Option<i32>,
    style: Option<String>,
    style_learned_at: Option<DateTime<Utc>>,
}

/// Whether an enabled workflow starts when mail arrives in the mailbox of
/// table `$t`.
macro_rules! watched_by_workflows {
    ($t:literal) => {
        concat!(
            "EXISTS (SELECT 1 FROM workflows w WHERE w.watched_integration_id = ",
            $t,
            ".integration_id AND w.workspace_id = ",
            $t,
            ".workspace_id AND w.enabled)"
        )
    };
}

/// Whether the mailbox of table `$t` is synced: auto-draft is on for it, or
/// a workflow waits for its mail. One rule, written once for every query
/// that asks.
macro_rules! synced {
    ($t:literal) => {
        concat!("(", $t, ".enabled OR ", watched_by_workflows!($t), ")")
    };
}

const MAILBOX_COLUMNS: &str = concat!(
    "integration_id, workspace_id, enabled, history_id, cursor_link, enabled_at, next_poll_at, \
     sync_requested_at, last_synced_at, last_failure_code, last_failure_message, last_failure_at, \
     alert_active_since, watch_expires_at, watch_renew_at, watch_error_code, watch_error_message, \
     watch_error_at, subscription_id, updated_at, instructions, rules, cleanup_after_days, style, style_learned_at, ",
    watched_by_workflows!("autodraft_mailboxes"),
    " AS for_workflows"
);

impl From<MailboxRow> for AutoDraftMailbox {
    fn from(row: MailboxRow) -> Self {
        AutoDraftMailbox {
            integration_id: IntegrationId::from_uuid(row.integration_id),
            workspace: WorkspaceId::from_uuid(row.workspace_id),
            enabled: row.enabled,
            history_id: row.history_id,
            cursor_link: row.cursor_link,
            enabled_at: row.enabled_at,
            next_poll_at: row.next_poll_at,
            sync_requested_at: row.sync_requested_at,
            last_synced_at: row.last_synced_at,
            last_failure: match (
                row.last_failure_code,
                row.last_failure_message,
                row.last_failure_at,
            ) {
                (Some(code), Some(message), Some(at)) => Some(LastError { code, message, at }),
                _ => None,
            },
            alert_active_since: row.alert_active_since,
            watch: MailboxWatch {
                expires_at: row.watch_expires_at,
                renew_at: row.watch_renew_at,
                last_error: match (
                    row.watch_error_code,
                    row.watch_error_message,
                    row.watch_error_at,
                ) {
                    (Some(code), Some(message), Some(at)) => Some(LastError { code, message, at }),
                    _ => None,
                },
                subscription_id: row.subscription_id,
            },
            updated_at: row.updated_at,
            for_workflows: row.for_workflows,
            instructions: row.instructions,
            // Written by this application only; a row it cannot read has
            // no rules rather than no mailbox.
            rules: row
                .rules
                .as_deref()
                .and_then(|rules| serde_json::from_str(rules).ok())
                .unwrap_or_default(),
            cleanup_after_days: row.cleanup_after_days,
            style: row
                .style
                .as_deref()
                .and_then(|style| serde_json::from_str(style).ok()),
            style_learned_at: row.style_learned_at,
        }
    }
}

/// What became of an inbound message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageStatus {
    Pending,
    /// `drafts.create` may have been called: a retry looks for the draft first.
    Creating,
    Drafted,
    Skipped,
    Failed,
}

impl MessageStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            MessageStatus::Pending => "pending",
            MessageStatus::Creating => "creating",
            MessageStatus::Drafted => "drafted",
            MessageStatus::Skipped => "skipped",
            MessageStatus::Failed => "failed",
        }
    }

    fn parse(text: &str) -> Result<MessageStatus, StoreError> {
        Ok(match text {
            "pending" => MessageStatus::Pending,
            "creating" => MessageStatus::Creating,
            "drafted" => MessageStatus::Drafted,
            "skipped" => MessageStatus::Skipped,
            "failed" => MessageStatus::Failed,
            other => {
                return Err(StoreError::Other(
                    format!("unknown auto-draft message status `{other}`").into(),
                ));
            }
        })
    }

    pub fn is_final(self) -> bool {
        matches!(
            self,
            MessageStatus::Drafted | MessageStatus::Skipped | MessageStatus::Failed
        )
    }
}

/// An inbound message a sync found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboundMessage {
    pub id: Uuid,
    pub workspace: WorkspaceId,
    pub integration_id: IntegrationId,
    pub gmail_message_id: String,
    pub thread_id: String,
    pub status: MessageStatus,
    pub reason: Option<String>,
    pub detail: Option<String>,
    /// Set when the draft was generated (kept for a retry that adopts it).
    pub generated: Option<Generated>,
    pub discovered_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

/// What the generator produced, as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Generated {
    pub draft_type: String,
    pub draft_type_label: String,
    pub generator: String,
}

#[derive(sqlx::FromRow)]
struct MessageRow {
    id: Uuid,
    workspace_id: Uuid,
    integration_id: Uuid,
    gmail_message_id: String,
    thread_id: String,
    status: String,
    reason: Option<String>,
    detail: Option<String>,
    draft_type: Option<String>,
    draft_type_label: Option<String>,
    generator: Option<String>,
    discovered_at: DateTime<Utc>,
    finished_at: Option<DateTime<Utc>>,
}

const MESSAGE_COLUMNS: &str = "id, workspace_id, integration_id, gmail_message_id, thread_id, status, reason, detail, \
     draft_type, draft_type_label, generator, discovered_at, finished_at";

impl TryFrom<MessageRow> for InboundMessage {
    type Error = StoreError;

    fn try_from(row: MessageRow) -> Result<Self, StoreError> {
        Ok(InboundMessage {
            id: row.id,
            workspace: WorkspaceId::from_uuid(row.workspace_id),
            integration_id: IntegrationId::from_uuid(row.integration_id),
            gmail_message_id: row.gmail_message_id,
            thread_id: row.thread_id,
            status: MessageStatus::parse(&row.status)?,
            reason: row.reason,
            detail: row.detail,
            generated: match (row.draft_type, row.draft_type_label, row.generator) {
                (Some(draft_type), Some(draft_type_label), Some(generator)) => Some(Generated {
                    draft_type,
                    draft_type_label,
                    generator,
                }),
                _ => None,
            },
            discovered_at: row.discovered_at,
            finished_at: row.finished_at,
        })
    }
}

/// A message a sync found in the mailbox's history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundMessage {
    pub gmail_message_id: String,
    pub thread_id: String,
}

/// A draft Mailwright created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DraftRecord {
    pub id: Uuid,
    pub workspace: WorkspaceId,
    pub integration_id: IntegrationId,
    pub source_message_id: String,
    pub source_rfc822_message_id: Option<String>,
    pub thread_id: String,
    pub provider_draft_id: String,
    pub draft_type: String,
    pub draft_type_label: String,
    pub generator: String,
    pub created_at: DateTime<Utc>,
    /// What the drafts list shows without a call to the provider (absent
    /// for an adopted draft).
    pub summary: DraftSummary,
    /// The reply Mailwright wrote (absent for adopted and older drafts):
    /// what a sent or current text is compared with.
    pub reply_text: Option<String>,
    /// The message the draft held when made (every edit replaces it).
    pub draft_message_id: Option<String>,
    /// `pending`, `sent_unchanged`, `sent_edited`, `deleted`, `cleaned_up`.
    pub outcome: String,
    pub outcome_at: Option<DateTime<Utc>>,
    /// For `sent_edited`: how much of the reply changed, in percent.
    pub changed_percent: Option<i32>,
}

/// A draft in a line: the answered message's subject and sender, and the
/// start of the reply (never the original's text).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DraftSummary {
    pub source_subject: Option<String>,
    pub source_from: Option<String>,
    pub reply_excerpt: Option<String>,
}

#[derive(sqlx::FromRow)]
struct DraftRow {
    id: Uuid,
    workspace_id: Uuid,
    integration_id: Uuid,
    source_message_id: String,
    source_rfc822_message_id: Option<String>,
    thread_id: String,
    provider_draft_id: String,
    draft_type: String,
    draft_type_label: String,
    generator: String,
    created_at: DateTime<Utc>,
    source_subject: Option<String>,
    source_from: Option<String>,
    reply_excerpt: Option<String>,
    reply_text: Option<String>,
    draft_message_id: Option<String>,
    outcome: String,
    outcome_at: Option<DateTime<Utc>>,
    changed_percent: Option<i32>,
}

impl From<DraftRow> for DraftRecord {
    fn from(row: DraftRow) -> Self {
        DraftRecord {
            id: row.id,
            workspace: WorkspaceId::from_uuid(row.workspace_id),
            integration_id: IntegrationId::from_uuid(row.integration_id),
            source_message_id: row.source_message_id,
            source_rfc822_message_id: row.source_rfc822_message_id,
            thread_id: row.thread_id,
            provider_draft_id: row.provider_draft_id,
            draft_type: row.draft_type,
            draft_type_label: row.draft_type_label,
            generator: row.generator,
            created_at: row.created_at,
            summary: DraftSummary {
                source_subject: row.source_subject,
                source_from: row.source_from,
                reply_excerpt: row.reply_excerpt,
            },
            reply_text: row.reply_text,
            draft_message_id: row.draft_message_id,
            outcome: row.outcome,
            outcome_at: row.outcome_at,
            changed_percent: row.changed_percent,
        }
    }
}

const DRAFT_COLUMNS: &str = "id, workspace_id, integration_id, source_message_id, source_rfc822_message_id, thread_id, \
     provider_draft_id, draft_type, draft_type_label, generator, created_at, source_subject, source_from, reply_excerpt, \
     reply_text, draft_message_id, outcome, outcome_at, changed_percent";

/// Per-mailbox numbers for people.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AutoDraftStats {
    pub drafts_created: i64,
    /// Drafts by stats bucket (a known type's name, or `other`).
    pub drafts_by_type: BTreeMap<String, i64>,
    pub skipped_by_reason: BTreeMap<String, i64>,
    pub failures_by_reason: BTreeMap<String, i64>,
    pub pending: i64,
    /// Of the pending: those whose last attempt failed and will be tried again.
    pub retrying: i64,
    /// The soonest of their next attempts, and what went wrong last time.
    pub next_retry: Option<NextRetry>,
    pub last_success_at: Option<DateTime<Utc>>,
    /// The newest failed message (mailbox-level failures are on the mailbox).
    pub last_failed_message: Option<LastError>,
}

/// A message waiting to be tried again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NextRetry {
    pub at: DateTime<Utc>,
    pub code: String,
    pub message: String,
}

/// Outcome counts, draft counts by type, the newest failed message, and the
/// soonest retry.
type StatsRows = (
    Vec<(String, Option<String>, i64)>,
    Vec<(String, i64, DateTime<Utc>)>,
    Option<(Option<String>, Option<String>, DateTime<Utc>)>,
    Option<(DateTime<Utc>, Option<String>, Option<String>)>,
);

/// Something worth showing in the mailbox's history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AutoDraftEvent {
    pub kind: String,
    pub message: String,
    pub at: DateTime<Utc>,
}

/// Enabled mailboxes by their account's address (`$1`), across workspaces:
/// `email_key` is the lowered address, indexed by `integrations_by_address`.
const MAILBOXES_FOR_ADDRESS_SQL: &str = concat!(
    "SELECT m.workspace_id, m.integration_id \
     FROM integrations i JOIN autodraft_mailboxes m ON m.integration_id = i.id \
     WHERE i.email_key = LOWER($1) AND ",
    synced!("m")
);

impl Store {
    pub async fn autodraft_mailbox(
        &self,
        workspace: WorkspaceId,
        integration: IntegrationId,
    ) -> Result<Option<AutoDraftMailbox>, StoreError> {
        let sql = format!(
            "SELECT {MAILBOX_COLUMNS} FROM autodraft_mailboxes WHERE workspace_id = $1 AND integration_id = $2"
        );
        let row: Option<MailboxRow> = in_workspace!(self, workspace, conn => {
            sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str()))
                .bind(workspace.as_uuid())
                .bind(integration.as_uuid())
                .fetch_optional(&mut *conn)
                .await?
        });
        Ok(row.map(AutoDraftMailbox::from))
    }

    /// Switch auto-draft on from `cursor` (mail after it gets drafted),
    /// polling first at `first_poll`; or off (`cursor` ignored).
    pub async fn set_autodraft(
        &self,
        workspace: WorkspaceId,
        integration: IntegrationId,
        enabled: bool,
        cursor: Option<&MailboxCursor>,
        first_poll: DateTime<Utc>,
    ) -> Result<AutoDraftMailbox, StoreError> {
        let at = now();
        let history_id = cursor.map(|cursor| cursor.position);
        let link = cursor.and_then(|cursor| cursor.link.clone());
        in_workspace_tx!(self, workspace, conn => {
            if enabled {
                // No cursor: a workflow's sync already reads the mailbox;
                // its cursor and poll stand.
                sqlx::query(
                    "INSERT INTO autodraft_mailboxes (integration_id, workspace_id, enabled, history_id, cursor_link, \
                                                      enabled_at, next_poll_at, updated_at) \
                     VALUES ($1, $2, TRUE, $3, $6, $4, $5, $4) \
                     ON CONFLICT (integration_id) DO UPDATE SET enabled = TRUE, \
                         history_id = COALESCE($3, autodraft_mailboxes.history_id), \
                         cursor_link = CASE WHEN $3 IS NULL THEN autodraft_mailboxes.cursor_link ELSE $6 END, \
                         enabled_at = $4, \
                         next_poll_at = CASE WHEN $3 IS NULL THEN COALESCE(autodraft_mailboxes.next_poll_at, $5) \
                             ELSE $5 END, \
                         updated_at = $4, last_failure_code = NULL, last_failure_message = NULL, \
                         last_failure_at = NULL",
                )
                .bind(integration.as_uuid())
                .bind(workspace.as_uuid())
                .bind(history_id)
                .bind(at)
                .bind(first_poll)
                .bind(link)
                .execute(&mut *conn)
                .await?;
            } else {
                sqlx::query(
                    "INSERT INTO autodraft_mailboxes (integration_id, workspace_id, enabled, updated_at) \
                     VALUES ($1, $2, FALSE, $3) \
                     ON CONFLICT (integration_id) DO UPDATE SET enabled = FALSE, updated_at = $3",
                )
                .bind(integration.as_uuid())
                .bind(workspace.as_uuid())
                .bind(at)
                .execute(&mut *conn)
                .await?;
                // Unless a workflow still waits for its mail, the mailbox is
                // no longer polled nor watched.
                sqlx::query(concat!(
                    "UPDATE autodraft_mailboxes SET next_poll_at = NULL, watch_expires_at = NULL, \
                         watch_renew_at = NULL, watch_error_code = NULL, watch_error_message = NULL, \
                         watch_error_at = NULL, subscription_id = NULL, subscription_secret_hash = NULL \
                     WHERE integration_id = $1 AND workspace_id = $2 AND NOT ",
                    synced!("autodraft_mailboxes")
                ))
                .bind(integration.as_uuid())
                .bind(workspace.as_uuid())
                .execute(&mut *conn)
                .await?;
            }
        });
        self.autodraft_mailbox(workspace, integration)
            .await?
            .ok_or(StoreError::NotFound)
    }

    /// Keep what the owner asks of the mailbox's drafts (a mailbox row is
    /// made when there is none: preferences may come before the switch).
    pub async fn set_drafting_preferences(
        &self,
        workspace: WorkspaceId,
        integration: IntegrationId,
        instructions: Option<&str>,
        rules: &DraftRules,
    ) -> Result<(), StoreError> {
        let rules = serde_json::to_string(rules)
            .map_err(|error| StoreError::Other(error.to_string().into()))?;
        let at = now();
        in_workspace!(self, workspace, conn => {
            sqlx::query(
                "INSERT INTO autodraft_mailboxes (integration_id, workspace_id, enabled, updated_at, instructions, rules) \
                 VALUES ($1, $2, FALSE, $3, $4, $5) \
                 ON CONFLICT (integration_id) DO UPDATE SET instructions = $4, rules = $5, updated_at = $3",
            )
            .bind(integration.as_uuid())
            .bind(workspace.as_uuid())
            .bind(at)
            .bind(instructions)
            .bind(&rules)
            .execute(&mut *conn)
            .await?;
        });
        Ok(())
    }

    /// Ask for a sync of this mailbox now: note the request (so a sync
    /// already running goes round once more) and queue `job` unless one is
    /// queued or running. `false` when auto-draft is off for it.
    pub async fn request_autodraft_sync(
        &self,
        workspace: WorkspaceId,
        integration: IntegrationId,
        job: &NewJob,
    ) -> Result<bool, StoreError> {
        let at = now();
        let requested = in_workspace_tx!(self, workspace, conn => {
            let updated = sqlx::query(concat!(
                "UPDATE autodraft_mailboxes SET sync_requested_at = $1 \
                 WHERE workspace_id = $2 AND integration_id = $3 AND ",
                synced!("autodraft_mailboxes")
            ))
            .bind(at)
            .bind(workspace.as_uuid())
            .bind(integration.as_uuid())
            .execute(&mut *conn)
            .await?
            .rows_affected();
            if updated == 1 {
                insert_or_hasten_job!(conn, job);
            }
            updated == 1
        });
        if requested {
            self.announce_jobs(1);
        }
        Ok(requested)
    }

    /// Enabled mailboxes of connected integrations whose poll is due, in
    /// every workspace (the poller serves them all).
    pub async fn due_autodraft_polls(
        &self,
        at: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<(WorkspaceId, IntegrationId, DateTime<Utc>)>, StoreError> {
        let rows: Vec<(Uuid, Uuid, DateTime<Utc>)> = across_workspaces!(self, conn => {
            sqlx::query_as(concat!(
                "SELECT m.workspace_id, m.integration_id, m.next_poll_at FROM autodraft_mailboxes m \
                 JOIN integrations i ON i.id = m.integration_id \
                 WHERE m.next_poll_at IS NOT NULL AND m.next_poll_at <= $1 AND i.status = 'connected' AND ",
                synced!("m"),
                " ORDER BY m.next_poll_at LIMIT $2"
            ))
            .bind(at)
            .bind(limit)
            .fetch_all(&mut *conn)
            .await?
        });
        Ok(rows
            .into_iter()
            .map(|(workspace, integration, due)| {
                (
                    WorkspaceId::from_uuid(workspace),
                    IntegrationId::from_uuid(integration),
                    due,
                )
            })
            .collect())
    }

    /// Move a mailbox's poll from `due` to `next` and queue its sync, if no
    /// other poller did first (compare-and-set). Whether this one did.
    pub async fn claim_autodraft_poll(
        &self,
        workspace: WorkspaceId,
        integration: IntegrationId,
        due: DateTime<Utc>,
        next: DateTime<Utc>,
        job: &NewJob,
    ) -> Result<bool, StoreError> {
        let claimed = in_workspace_tx!(self, workspace, conn => {
            let moved = sqlx::query(concat!(
                "UPDATE autodraft_mailboxes SET next_poll_at = $1, sync_requested_at = $2 \
                 WHERE workspace_id = $3 AND integration_id = $4 AND next_poll_at = $5 AND ",
                synced!("autodraft_mailboxes")
            ))
            .bind(next)
            .bind(now())
            .bind(workspace.as_uuid())
            .bind(integration.as_uuid())
            .bind(due)
            .execute(&mut *conn)
            .await?
            .rows_affected();
            if moved == 1 {
                insert_or_hasten_job!(conn, job);
            }
            moved == 1
        });
        if claimed {
            self.announce_jobs(1);
        }
        Ok(claimed)
    }

    /// Enabled mailboxes whose account has this address, in every workspace
    /// (a push names only the address).
    pub async fn autodraft_mailboxes_for_address(
        &self,
        email: &str,
    ) -> Result<Vec<(WorkspaceId, IntegrationId)>, StoreError> {
        let rows: Vec<(Uuid, Uuid)> = across_workspaces!(self, conn => {
            sqlx::query_as(MAILBOXES_FOR_ADDRESS_SQL)
            .bind(email)
            .fetch_all(&mut *conn)
            .await?
        });
        Ok(rows
            .into_iter()
            .map(|(workspace, integration)| {
                (
                    WorkspaceId::from_uuid(workspace),
                    IntegrationId::from_uuid(integration),
                )
            })
            .collect())
    }

    /// Record what a sync found: move the cursor from position `from` to
    /// `to` (only if it is still at `from`, the mailbox is synced, and `to`
    /// is not behind, unless `cursor_reset`: after a catch-up an IMAP cursor
    /// with a new UIDVALIDITY may well be lower; `to`'s link, if any, is
    /// written with it) and, all in one transaction: with auto-draft on, add a row
    /// per new message and queue `draft_job(row id)` for each; with a
    /// workflow waiting for mail, queue `new_mail_job(message)` for each.
    /// `None` when the cursor had moved (nothing written); otherwise how many
    /// messages were new to auto-draft.
    pub async fn record_autodraft_sync(
        &self,
        workspace: WorkspaceId,
        integration: IntegrationId,
        (from, to, cursor_reset): (i64, &MailboxCursor, bool),
        found: &[FoundMessage],
        draft_job: impl Fn(Uuid) -> NewJob,
        new_mail_job: impl Fn(&FoundMessage) -> NewJob,
    ) -> Result<Option<usize>, StoreError> {
        let at = now();
        let (inserted, queued) = in_workspace_tx!(self, workspace, conn => {
            let moved = sqlx::query(concat!(
                "UPDATE autodraft_mailboxes SET history_id = $1, cursor_link = $7, last_synced_at = $2, \
                     last_failure_code = NULL, last_failure_message = NULL, last_failure_at = NULL \
                 WHERE workspace_id = $3 AND integration_id = $4 AND history_id = $5 AND ($1 >= $5 OR $6) AND ",
                synced!("autodraft_mailboxes")
            ))
            .bind(to.position)
            .bind(at)
            .bind(workspace.as_uuid())
            .bind(integration.as_uuid())
            .bind(from)
            .bind(cursor_reset)
            .bind(to.link.as_deref())
            .execute(&mut *conn)
            .await?
            .rows_affected();
            if moved == 0 {
                (None, 0)
            } else {
                // Read in the transaction that moved the cursor: what this
                // sync found goes to whoever reads the mailbox now.
                let (drafting, for_workflows): (bool, bool) = sqlx::query_as(concat!(
                    "SELECT enabled, ",
                    watched_by_workflows!("autodraft_mailboxes"),
                    " FROM autodraft_mailboxes WHERE workspace_id = $1 AND integration_id = $2"
                ))
                .bind(workspace.as_uuid())
                .bind(integration.as_uuid())
                .fetch_one(&mut *conn)
                .await?;
                let mut inserted = 0;
                let mut queued = 0;
                for message in found {
                    if drafting {
                        let id = Uuid::now_v7();
                        let added = sqlx::query(
                            "INSERT INTO autodraft_messages (id, workspace_id, integration_id, gmail_message_id, \
                                                             thread_id, status, discovered_at) \
                             VALUES ($1, $2, $3, $4, $5, 'pending', $6) \
                             ON CONFLICT (integration_id, gmail_message_id) DO NOTHING",
                        )
                        .bind(id)
                        .bind(workspace.as_uuid())
                        .bind(integration.as_uuid())
                        .bind(&message.gmail_message_id)
                        .bind(&message.thread_id)
                        .bind(at)
                        .execute(&mut *conn)
                        .await?
                        .rows_affected();
                        if added == 1 {
                            insert_job!(&mut *conn, JobId::new(), &draft_job(id));
                            inserted += 1;
                            queued += 1;
                        }
                    }
                    if for_workflows {
                        // Found twice (a catch-up overlapping a sync): the
                        // run's idempotency key starts it once.
                        queued += insert_job!(&mut *conn, JobId::new(), &new_mail_job(message)) as usize;
                    }
                }
                (Some(inserted), queued)
            }
        });
        self.announce_jobs(queued);
        Ok(inserted)
    }

    /// Start syncing a mailbox for workflows from `cursor` (mail after it
    /// starts them), polling first at `first_poll`, unless its sync is
    /// already under way for auto-draft or for another workflow than
    /// `workflow` (then its cursor stands, so no one's mail is skipped).
    pub async fn start_mailbox_sync(
        &self,
        workspace: WorkspaceId,
        integration: IntegrationId,
        cursor: &MailboxCursor,
        first_poll: DateTime<Utc>,
        workflow: Option<Uuid>,
    ) -> Result<(), StoreError> {
        let at = now();
        in_workspace!(self, workspace, conn => {
            sqlx::query(
                "INSERT INTO autodraft_mailboxes (integration_id, workspace_id, enabled, history_id, cursor_link, \
                                                  next_poll_at, last_synced_at, updated_at) \
                 VALUES ($1, $2, FALSE, $3, $7, $4, $5, $5) \
                 ON CONFLICT (integration_id) DO UPDATE SET history_id = $3, cursor_link = $7, next_poll_at = $4, \
                     last_synced_at = $5, updated_at = $5, \
                     last_failure_code = NULL, last_failure_message = NULL, last_failure_at = NULL \
                 WHERE NOT (autodraft_mailboxes.history_id IS NOT NULL AND autodraft_mailboxes.next_poll_at IS NOT NULL \
                     AND (autodraft_mailboxes.enabled OR EXISTS (SELECT 1 FROM workflows w \
                         WHERE w.watched_integration_id = autodraft_mailboxes.integration_id \
                             AND w.workspace_id = autodraft_mailboxes.workspace_id AND w.enabled \
                             AND w.id IS DISTINCT FROM $6)))",
            )
            .bind(integration.as_uuid())
            .bind(workspace.as_uuid())
            .bind(cursor.position)
            .bind(first_poll)
            .bind(at)
            .bind(workflow)
            .bind(cursor.link.as_deref())
            .execute(&mut *conn)
            .await?;
        });
        Ok(())
    }

    /// Whether a sync was requested after `started` (then it runs again).
    pub async fn autodraft_sync_requested_since(
        &self,
        workspace: WorkspaceId,
        integration: IntegrationId,
        started: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let requested: Option<Option<DateTime<Utc>>> = in_workspace!(self, workspace, conn => {
            sqlx::query_scalar(
                "SELECT sync_requested_at FROM autodraft_mailboxes WHERE workspace_id = $1 AND integration_id = $2",
            )
            .bind(workspace.as_uuid())
            .bind(integration.as_uuid())
            .fetch_optional(&mut *conn)
            .await?
        });
        Ok(requested.flatten().is_some_and(|at| at > started))
    }

    /// A sync could not run: say why on the mailbox.
    pub async fn record_autodraft_failure(
        &self,
        workspace: WorkspaceId,
        integration: IntegrationId,
        code: &str,
        message: &str,
    ) -> Result<(), StoreError> {
        in_workspace!(self, workspace, conn => {
            sqlx::query(
                "UPDATE autodraft_mailboxes SET last_failure_code = $1, last_failure_message = $2, last_failure_at = $3 \
                 WHERE workspace_id = $4 AND integration_id = $5",
            )
            .bind(code)
            .bind(message)
            .bind(now())
            .bind(workspace.as_uuid())
            .bind(integration.as_uuid())
            .execute(&mut *conn)
            .await?;
        });
        Ok(())
    }

    /// Synced mailboxes of connected integrations whose watch is due for
    /// renewal (or was never made), in every workspace, with when it was
    /// due (the claim compares it). Google's when `gmail` (a Pub/Sub watch
    /// is configured), Microsoft's when `outlook` (Graph subscriptions
    /// are); an IMAP mailbox is followed by IDLE.
    pub async fn due_watch_renewals(
        &self,
        at: DateTime<Utc>,
        gmail: bool,
        outlook: bool,
        limit: i64,
    ) -> Result<Vec<(WorkspaceId, IntegrationId, Option<DateTime<Utc>>)>, StoreError> {
        let rows: Vec<(Uuid, Uuid, Option<DateTime<Utc>>)> = across_workspaces!(self, conn => {
            sqlx::query_as(concat!(
                "SELECT m.workspace_id, m.integration_id, m.watch_renew_at FROM autodraft_mailboxes m \
                 JOIN integrations i ON i.id = m.integration_id \
                 WHERE (m.watch_renew_at IS NULL OR m.watch_renew_at <= $1) \
                     AND i.status = 'connected' \
                     AND ((i.provider = 'google' AND $3) OR (i.provider = 'microsoft' AND $4)) AND ",
                synced!("m"),
                " ORDER BY m.watch_renew_at LIMIT $2"
            ))
            .bind(at)
            .bind(limit)
            .bind(gmail)
            .bind(outlook)
            .fetch_all(&mut *conn)
            .await?
        });
        Ok(rows
            .into_iter()
            .map(|(workspace, integration, due)| {
                (
                    WorkspaceId::from_uuid(workspace),
                    IntegrationId::from_uuid(integration),
                    due,
                )
            })
            .collect())
    }

    /// Move a mailbox's watch renewal from `due` to `next` and queue `job`
    /// (which renews it), unless another process did first (compare-and-set
    /// on `due`). Whether this one did.
    pub async fn claim_watch_renewal(
        &self,
        workspace: WorkspaceId,
        integration: IntegrationId,
        due: Option<DateTime<Utc>>,
        next: DateTime<Utc>,
        job: &NewJob,
    ) -> Result<bool, StoreError> {
        let claimed = in_workspace_tx!(self, workspace, conn => {
            let moved = sqlx::query(concat!(
                "UPDATE autodraft_mailboxes SET watch_renew_at = $1 \
                 WHERE workspace_id = $2 AND integration_id = $3 \
                     AND watch_renew_at IS NOT DISTINCT FROM $4 AND ",
                synced!("autodraft_mailboxes")
            ))
            .bind(next)
            .bind(workspace.as_uuid())
            .bind(integration.as_uuid())
            .bind(due)
            .execute(&mut *conn)
            .await?
            .rows_affected();
            if moved == 1 {
                insert_job!(&mut *conn, JobId::new(), job);
            }
            moved == 1
        });
        if claimed {
            self.announce_jobs(1);
        }
        Ok(claimed)
    }

    /// A watch was made (or renewed) until `expires_at`; renew it at
    /// `renew_at`. Ignored when auto-draft was switched off meanwhile.
    pub async fn record_watch(
        &self,
        workspace: WorkspaceId,
        integration: IntegrationId,
        expires_at: DateTime<Utc>,
        renew_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        in_workspace!(self, workspace, conn => {
            sqlx::query(concat!(
                "UPDATE autodraft_mailboxes SET watch_expires_at = $1, watch_renew_at = $2, \
                     watch_error_code = NULL, watch_error_message = NULL, watch_error_at = NULL \
                 WHERE workspace_id = $3 AND integration_id = $4 AND ",
                synced!("autodraft_mailboxes")
            ))
            .bind(expires_at)
            .bind(renew_at)
            .bind(workspace.as_uuid())
            .bind(integration.as_uuid())
            .execute(&mut *conn)
            .await?;
        });
        Ok(())
    }

    /// A watch could not be made: say why, and try again at `retry_at`.
    pub async fn record_watch_failure(
        &self,
        workspace: WorkspaceId,
        integration: IntegrationId,
        code: &str,
        message: &str,
        retry_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        in_workspace!(self, workspace, conn => {
            sqlx::query(concat!(
                "UPDATE autodraft_mailboxes SET watch_error_code = $1, watch_error_message = $2, \
                     watch_error_at = $3, watch_renew_at = $4 \
                 WHERE workspace_id = $5 AND integration_id = $6 AND ",
                synced!("autodraft_mailboxes")
            ))
            .bind(code)
            .bind(message)
            .bind(now())
            .bind(retry_at)
            .bind(workspace.as_uuid())
            .bind(integration.as_uuid())
            .execute(&mut *conn)
            .await?;
        });
        Ok(())
    }

    /// A Graph subscription was made (or renewed) for the mailbox until
    /// `expires_at`; renew it at `renew_at`. Only while the mailbox's
    /// subscription is still `previous` (compare-and-set: two processes
    /// that each made one keep the first) and it is synced. Whether it was
    /// recorded: if not, the caller deletes the one it made.
    #[allow(clippy::too_many_arguments)]
    pub async fn record_subscription(
        &self,
        workspace: WorkspaceId,
        integration: IntegrationId,
        previous: Option<&str>,
        subscription_id: &str,
        secret_hash: &str,
        expires_at: DateTime<Utc>,
        renew_at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let recorded = in_workspace!(self, workspace, conn => {
            sqlx::query(concat!(
                "UPDATE autodraft_mailboxes SET subscription_id = $1, subscription_secret_hash = $2, \
                     watch_expires_at = $3, watch_renew_at = $4, watch_error_code = NULL, \
                     watch_error_message = NULL, watch_error_at = NULL \
                 WHERE workspace_id = $5 AND integration_id = $6 \
                     AND subscription_id IS NOT DISTINCT FROM $7 AND ",
                synced!("autodraft_mailboxes")
            ))
            .bind(subscription_id)
            .bind(secret_hash)
            .bind(expires_at)
            .bind(renew_at)
            .bind(workspace.as_uuid())
            .bind(integration.as_uuid())
            .bind(previous)
            .execute(&mut *conn)
            .await?
            .rows_affected()
        });
        Ok(recorded == 1)
    }

    /// Graph subscription `subscription` was renewed until `expires_at`;
    /// renew it again at `renew_at`. Only while the mailbox still holds
    /// that subscription and is synced; whether it did.
    pub async fn record_subscription_renewed(
        &self,
        workspace: WorkspaceId,
        integration: IntegrationId,
        subscription: &str,
        expires_at: DateTime<Utc>,
        renew_at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let recorded = in_workspace!(self, workspace, conn => {
            sqlx::query(concat!(
                "UPDATE autodraft_mailboxes SET watch_expires_at = $1, watch_renew_at = $2, \
                     watch_error_code = NULL, watch_error_message = NULL, watch_error_at = NULL \
                 WHERE workspace_id = $3 AND integration_id = $4 AND subscription_id = $5 AND ",
                synced!("autodraft_mailboxes")
            ))
            .bind(expires_at)
            .bind(renew_at)
            .bind(workspace.as_uuid())
            .bind(integration.as_uuid())
            .bind(subscription)
            .execute(&mut *conn)
            .await?
            .rows_affected()
        });
        Ok(recorded == 1)
    }

    /// The mailbox Graph subscription `id` announces, in any workspace, with
    /// the SHA-256 of its clientState (a notification is checked against
    /// it before anything is queued).
    pub async fn mailbox_of_subscription(
        &self,
        id: &str,
    ) -> Result<Option<(WorkspaceId, IntegrationId, String)>, StoreError> {
        let row: Option<(Uuid, Uuid, Option<String>)> = across_workspaces!(self, conn => {
            sqlx::query_as(
                "SELECT workspace_id, integration_id, subscription_secret_hash FROM autodraft_mailboxes \
                 WHERE subscription_id = $1",
            )
            .bind(id)
            .fetch_optional(&mut *conn)
            .await?
        });
        Ok(row.and_then(|(workspace, integration, hash)| {
            Some((
                WorkspaceId::from_uuid(workspace),
                IntegrationId::from_uuid(integration),
                hash?,
            ))
        }))
    }

    /// Every mailbox with auto-draft on, in every workspace (for the
    /// operator's `mailwright doctor`, which looks at their watches).
    pub async fn enabled_autodraft_mailboxes_everywhere(
        &self,
        limit: i64,
    ) -> Result<Vec<AutoDraftMailbox>, StoreError> {
        let sql = format!(
            "SELECT {MAILBOX_COLUMNS} FROM autodraft_mailboxes WHERE enabled ORDER BY integration_id LIMIT $1"
        );
        let rows: Vec<MailboxRow> = across_workspaces!(self, conn => {
            sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str()))
                .bind(limit)
                .fetch_all(&mut *conn)
                .await?
        });
        Ok(rows.into_iter().map(AutoDraftMailbox::from).collect())
    }

    /// How many mailboxes have auto-draft on (the metrics gauge).
    pub async fn enabled_autodraft_mailboxes(&self) -> Result<i64, StoreError> {
        let count: i64 = across_workspaces!(self, conn => {
            sqlx::query_scalar("SELECT COUNT(*) FROM autodraft_mailboxes WHERE enabled")
                .fetch_one(&mut *conn)
                .await?
        });
        Ok(count)
    }
}

// After the macros it uses (`synced!`).
mod idle;

#[cfg(test)]
mod tests;
