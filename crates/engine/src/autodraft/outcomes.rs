//! What became of the drafts auto-draft wrote, and the opt-in clean-up of
//! stale untouched ones.
//!
//! What Gmail shows: a draft is a container with a stable id whose message
//! is replaced on every edit (`drafts.get` answers the current one); sending
//! it removes the draft (`drafts.get` answers 404) and files a message
//! labelled `SENT` in the same thread (the sandbox gives it a new message
//! id and keeps the draft's headers, so its `Message-ID` is the one
//! Mailwright chose unless the person's client replaced it); deleting it
//! leaves nothing. So: a draft still there is `pending`; one gone is
//! `sent_*` when a sent message carries Mailwright's Message-ID or answers
//! the same message in the same thread after the draft was made, and
//! `deleted` otherwise. Sent or not, the texts decide "unchanged" (the
//! reply part, normalized), never a label.

use super::*;
use domain::drafting::outcome::{DraftOutcome, changed_percent, fingerprint};

pub const CHECK_OUTCOMES: &str = "autodraft.outcomes";
/// `outcome`, `draft_type`, `generator`: each draft's fate as it is found.
pub const DRAFT_OUTCOMES: &str = "mailwright_autodraft_draft_outcomes_total";
/// How often a mailbox's pending drafts are looked at.
pub const OUTCOME_CHECK_EVERY: Duration = Duration::from_secs(15 * 60);
/// Pending drafts looked at per check (the oldest looks first).
const OUTCOME_BATCH: i64 = 50;
/// Days of quiet after which the clean-up deletes an untouched draft when
/// no number is given.
pub const DEFAULT_CLEANUP_DAYS: i32 = 14;

/// A draft the clean-up deletes (or, in a dry run, would delete), and why.
#[derive(Debug, Clone)]
pub struct CleanupItem {
    pub draft: DraftRecord,
    pub why: String,
}

impl AutoDraft {
    /// The job that looks at mailbox `id`'s pending drafts (one at a time
    /// per mailbox).
    pub fn outcomes_job(workspace: WorkspaceId, integration: IntegrationId) -> NewJob {
        NewJob::new(
            CHECK_OUTCOMES,
            json!({ "integration_id": integration.to_string() }),
        )
        .in_workspace(workspace)
        .dedupe_key(format!("autodraft.outcomes:{integration}"))
    }

    /// Queue the outcome check of mailbox `id` if it is due (after a sync).
    pub(super) async fn outcome_check_if_due(&self, workspace: WorkspaceId, id: IntegrationId) {
        let due_before = store::now() - chrono_duration(OUTCOME_CHECK_EVERY);
        let queued = match self
            .store
            .claim_outcome_check(workspace, id, due_before)
            .await
        {
            Ok(true) => self
                .store
                .enqueue_job(&Self::outcomes_job(workspace, id))
                .await
                .map(drop),
            Ok(false) => Ok(()),
            Err(error) => Err(error),
        };
        if let Err(error) = queued {
            tracing::warn!(integration = %id, error = format!("{error:#}"), "cannot queue the drafts' outcome check; the next sync tries again");
        }
    }

    /// Look at the mailbox's pending drafts and record what became of
    /// them; then, when the clean-up is on, delete the stale untouched ones.
    /// How many drafts got an outcome.
    pub async fn check_outcomes(
        &self,
        workspace: WorkspaceId,
        id: IntegrationId,
    ) -> Result<usize, JobError> {
        let Some(inbox) = self.mailbox_for_job(workspace, id).await? else {
            return Ok(0);
        };
        let drafts = self
            .store
            .drafts_to_check(workspace, id, store::now(), OUTCOME_BATCH)
            .await
            .map_err(job_transient)?;
        let mut decided = 0;
        for draft in drafts {
            let (outcome, changed) = match self.outcome_of(&inbox, &draft).await {
                Ok(found) => found,
                // An outage: the whole check is tried again later.
                Err(error @ VaultError::Unavailable { .. }) => return Err(vault_job_error(error)),
                // This draft alone: looked at again next time, the others now.
                Err(error) => {
                    tracing::warn!(integration = %id, draft = %draft.provider_draft_id, error = %error, "cannot find out what became of a draft");
                    (DraftOutcome::Pending, None)
                }
            };
            let changed = changed.map(i32::from);
            if self
                .store
                .record_draft_outcome(workspace, draft.id, outcome.as_str(), changed)
                .await
                .map_err(job_transient)?
                && outcome != DraftOutcome::Pending
            {
                decided += 1;
                count_outcome(outcome, &draft);
            }
        }
        let mailbox = self
            .store
            .autodraft_mailbox(workspace, id)
            .await
            .map_err(job_transient)?;
        if let Some(mailbox) = mailbox.as_ref().filter(|mailbox| mailbox.enabled) {
            self.learn_style_if_due(mailbox).await;
        }
        let cleanup_days = mailbox.and_then(|mailbox| mailbox.cleanup_after_days);
        if let Some(days) = cleanup_days {
            self.clean_up(&inbox, days, false)
                .await
                .map_err(vault_job_error)?;
        }
        Ok(decided)
    }

    /// What became of `draft`, and for an edited send how much changed.
    async fn outcome_of(
        &self,
        inbox: &Mailbox,
        draft: &DraftRecord,
    ) -> Result<(DraftOutcome, Option<u8>), VaultError> {
        if inbox.draft(&draft.provider_draft_id).await?.is_some() {
            return Ok((DraftOutcome::Pending, None));
        }
        let Some(sent) = self.sent_version(inbox, draft).await? else {
            return Ok((DraftOutcome::Deleted, None));
        };
        let theirs = drafting::strip_quoted_history(&sent.text);
        Ok(match &draft.reply_text {
            Some(ours) if same_words(&drafting::strip_quoted_history(ours), &theirs) => {
                (DraftOutcome::SentUnchanged, None)
            }
            Some(ours) => (
                DraftOutcome::SentEdited,
                Some(changed_percent(ours, &theirs)),
            ),
            // Adopted after a crash: what was written is not known.
            None => (DraftOutcome::SentEdited, None),
        })
    }

    /// The message sent from `draft`: the one with Mailwright's Message-ID,
    /// else the mailbox's own reply to the same message in the thread,
    /// sent after the draft was made.
    async fn sent_version(
        &self,
        inbox: &Mailbox,
        draft: &DraftRecord,
    ) -> Result<Option<Message>, VaultError> {
        let ours = reply_message_id(draft.integration_id, &draft.source_message_id);
        if let Some(found) = inbox.find_message(&ours).await? {
            match inbox.message(&found.id).await {
                Ok(message) if message.placement.sent => return Ok(Some(message)),
                Ok(_) | Err(VaultError::Gone) => {}
                Err(error) => return Err(error),
            }
        }
        let thread = match inbox.thread(&draft.thread_id).await {
            Ok(thread) => thread,
            Err(VaultError::Gone) => return Ok(None),
            Err(error) => return Err(error),
        };
        let made = draft.created_at.timestamp_millis();
        Ok(thread
            .messages
            .into_iter()
            .filter(|message| {
                message.placement.sent
                    && !message.placement.draft
                    && message.received_at_millis >= made
                    && is_persons_reply(message, draft)
            })
            .min_by_key(|message| message.received_at_millis))
    }

    /// The drafts the clean-up deletes in mailbox `id` after `days` of
    /// quiet, deleting them unless `dry_run`.
    pub async fn cleanup(
        &self,
        workspace: WorkspaceId,
        id: IntegrationId,
        days: i32,
        dry_run: bool,
    ) -> Result<Vec<CleanupItem>, ServiceError> {
        let integration = self.gmail_integration(workspace, id).await?;
        let from_vault =
            |error| ServiceError::from_vault(error, integration.id, &integration.email);
        let inbox = Mailbox::open(&self.vault, workspace, id)
            .await
            .map_err(from_vault)?;
        self.clean_up(&inbox, days, dry_run)
            .await
            .map_err(from_vault)
    }

    /// Only drafts Mailwright recorded, still pending, still holding the
    /// very message it made (Gmail replaces it on every edit: to the text,
    /// inline below the quote, the recipients, an attachment) with the text
    /// it wrote, and whose conversation the person answered another way or
    /// which has been quiet for `days`: a person's own draft, an edited one
    /// and one in a conversation still moving stay. Each is marked before it
    /// is deleted (and marked pending again when the delete fails), so a
    /// deletion is never mistaken for the person's.
    async fn clean_up(
        &self,
        inbox: &Mailbox,
        days: i32,
        dry_run: bool,
    ) -> Result<Vec<CleanupItem>, VaultError> {
        let integration = inbox.integration();
        let (workspace, id) = (integration.workspace, integration.id);
        let internal = |error: StoreError| VaultError::Internal(error.into());
        let pending = self
            .store
            .drafts_to_check(
                workspace,
                id,
                store::now() + chrono::Duration::days(1),
                CLEANUP_BATCH,
            )
            .await
            .map_err(internal)?;
        let quiet_since = store::now() - chrono::Duration::days(i64::from(days.max(1)));
        let mut stale = Vec::new();
        for draft in pending {
            let Some(why) = self.why_stale(inbox, &draft, quiet_since, days).await? else {
                continue;
            };
            let item = CleanupItem { draft, why };
            if dry_run {
                stale.push(item);
                continue;
            }
            let claimed = self
                .store
                .record_draft_outcome(
                    workspace,
                    item.draft.id,
                    DraftOutcome::CleanedUp.as_str(),
                    None,
                )
                .await
                .map_err(internal)?;
            if !claimed {
                continue;
            }
            if let Err(error) = inbox.delete_draft(&item.draft.provider_draft_id).await {
                self.store
                    .reopen_cleaned_draft(workspace, item.draft.id)
                    .await
                    .map_err(internal)?;
                return Err(error);
            }
            count_outcome(DraftOutcome::CleanedUp, &item.draft);
            let message = format!(
                "Deleted the untouched draft answering “{}” ({}).",
                item.draft
                    .summary
                    .source_subject
                    .as_deref()
                    .unwrap_or("a message"),
                item.why
            );
            if let Err(error) = self
                .store
                .record_autodraft_event(workspace, id, "cleanup", &message)
                .await
            {
                tracing::error!(integration = %id, error = format!("{error:#}"), "cannot record a clean-up");
            }
            tracing::info!(integration = %id, draft = %item.draft.provider_draft_id, event = "autodraft_cleanup", "deleted an untouched stale draft");
            stale.push(item);
        }
        Ok(stale)
    }

    /// Why `draft` is stale and untouched, or `None` when it must stay.
    async fn why_stale(
        &self,
        inbox: &Mailbox,
        draft: &DraftRecord,
        quiet_since: DateTime<Utc>,
        days: i32,
    ) -> Result<Option<String>, VaultError> {
        let integration = inbox.integration();
        let (Some(ours), Some(made_message)) =
            (draft.reply_text.as_deref(), &draft.draft_message_id)
        else {
            // Adopted or older drafts: not provably untouched.
            return Ok(None);
        };
        let Some(current) = inbox.draft(&draft.provider_draft_id).await? else {
            return Ok(None);
        };
        if &current.id != made_message
            || fingerprint(&drafting::strip_quoted_history(&current.text)) != fingerprint(ours)
        {
            return Ok(None);
        }
        let thread = match inbox.thread(&draft.thread_id).await {
            Ok(thread) => thread,
            Err(VaultError::Gone) => return Ok(None),
            Err(error) => return Err(error),
        };
        let made = draft.created_at.timestamp_millis();
        let received = thread
            .messages
            .iter()
            .filter(|m| !m.placement.draft && !m.placement.spam_or_trash);
        let answered_otherwise = received.clone().any(|message| {
            message.is_from(&integration.email)
                && message.received_at_millis > made
                && is_persons_reply(message, draft)
        });
        let newest = received.map(|m| m.received_at_millis).max().unwrap_or(made);
        let quiet =
            draft.created_at < quiet_since && newest.max(made) < quiet_since.timestamp_millis();
        Ok(if answered_otherwise {
            Some("the conversation moved on: it was answered without this draft".to_owned())
        } else if quiet {
            Some(format!(
                "untouched, in a conversation quiet for more than {days} days"
            ))
        } else {
            None
        })
    }
}

/// Drafts the clean-up looks at per run.
const CLEANUP_BATCH: i64 = 100;

/// Whether `message` (sent from the mailbox) is the person's own answer to
/// the message `draft` answers: it replies to that message, and no program
/// wrote it (an automatic reply, or a Mailwright message).
fn is_persons_reply(message: &Message, draft: &DraftRecord) -> bool {
    let automatic = message
        .header("Auto-Submitted")
        .is_some_and(|value| !value.trim().eq_ignore_ascii_case("no"))
        || message
            .header("Message-ID")
            .is_some_and(|id| id.contains("@mailwright>"))
        || message
            .header(providers::google::message::SOURCE_HEADER)
            .is_some();
    let answers = match &draft.source_rfc822_message_id {
        Some(source) => message
            .header("In-Reply-To")
            .is_some_and(|value| value.trim() == source.as_str()),
        None => true,
    };
    !automatic && answers
}

/// The same words in the same order (spacing, line breaks and
/// non-breaking spaces aside): how "unchanged" and `changed_percent` agree.
fn same_words(ours: &str, theirs: &str) -> bool {
    ours.split_whitespace().eq(theirs.split_whitespace())
}

fn count_outcome(outcome: DraftOutcome, draft: &DraftRecord) {
    metrics::counter!(
        DRAFT_OUTCOMES,
        "outcome" => outcome.as_str(),
        "draft_type" => draft.draft_type.clone(),
        "generator" => draft.generator.clone()
    )
    .increment(1);
}

/// A mailbox that could not be read, for the job: outages retry; a
/// connection that broke ends it (its status says why).
pub(super) fn vault_job_error(error: VaultError) -> JobError {
    match vault_to_pipeline(error) {
        PipelineError::Transient {
            message,
            retry_after,
        } => JobError::Transient {
            message,
            retry_after,
        },
        PipelineError::Connection { message, .. } | PipelineError::Permanent { message, .. } => {
            JobError::Permanent(message)
        }
    }
}

/// The `autodraft.outcomes` job.
pub struct CheckOutcomes(pub Arc<AutoDraft>);

impl JobHandler for CheckOutcomes {
    fn kind(&self) -> &'static str {
        CHECK_OUTCOMES
    }

    fn run<'a>(&'a self, job: &'a ClaimedJob) -> JobFuture<'a> {
        recorded_by_worker(async move {
            let (workspace, id) = super::jobs::job_mailbox(job)?;
            self.0.check_outcomes(workspace, id).await.map(drop)
        })
    }
}
