//! Switching auto-draft on and off, pushes, and the test action.

use super::pipeline::{Answered, MadeDraft};
use super::*;
use crate::error::ServiceError;
use domain::drafting::rules::{DraftRules, check_instructions};
use domain::drafting::style::StyleProfile;
use domain::explain::explain;
use store::autodraft::{AutoDraftEvent, AutoDraftStats};
use store::integrations::LastError;

impl AutoDraft {
    /// Switch auto-draft on: the connection must be healthy and allow reading
    /// and drafting. Drafting starts with mail arriving after now.
    pub async fn enable(
        &self,
        workspace: WorkspaceId,
        id: IntegrationId,
    ) -> Result<AutoDraftMailbox, ServiceError> {
        let integration = self
            .usable_mailbox(workspace, id, &[Capability::ReadMail, Capability::Draft])
            .await?;
        if integration.status == IntegrationStatus::MissingScopes {
            let missing = integration.missing_scopes();
            return Err(ServiceError::connection(
                integration.id,
                &integration.email,
                IntegrationStatus::MissingScopes,
                missing,
            ));
        }
        let from_vault =
            |error| ServiceError::from_vault(error, integration.id, &integration.email);
        // Already on: keep the cursor, or mail not yet synced would be lost.
        // Synced for a workflow: switch drafting on from its cursor.
        if let Some(mailbox) = self.store.autodraft_mailbox(workspace, id).await?
            && mailbox.reading()
        {
            if mailbox.enabled {
                return Ok(mailbox);
            }
            return Ok(self
                .store
                .set_autodraft(workspace, id, true, None, store::now())
                .await?);
        }
        let inbox = Mailbox::open(&self.vault, workspace, id)
            .await
            .map_err(from_vault)?;
        let cursor = inbox.cursor().await.map_err(from_vault)?.ok_or_else(|| {
            ServiceError::ProviderError(
                "The mailbox gave no position to start from; try again.".into(),
            )
        })?;
        let first_poll = self.first_poll_at();
        self.store
            .set_autodraft(workspace, id, true, Some(&cursor), first_poll)
            .await?;
        tracing::info!(integration = %id, history_id = cursor.position, event = "autodraft_enabled", "auto-draft switched on");
        if let Some(mailbox) = self.store.autodraft_mailbox(workspace, id).await? {
            self.learn_style_if_due(&mailbox).await;
        }
        // Now rather than at the next renewal tick, so the answer shows the
        // watch; a failure is recorded on it and retried, and the poll
        // finds mail meanwhile.
        self.watch_open_mailbox(&inbox, false).await?;
        self.store
            .autodraft_mailbox(workspace, id)
            .await?
            .ok_or(ServiceError::NotFound)
    }

    /// When a mailbox whose sync starts now polls first: somewhere within
    /// the first interval, so mailboxes switched on together (an import, a
    /// restart of many) do not all poll in the same second.
    fn first_poll_at(&self) -> DateTime<Utc> {
        let interval = self.settings.poll_interval.as_millis().max(1) as u64;
        store::now()
            + chrono::Duration::milliseconds(rand::Rng::gen_range(
                &mut rand::thread_rng(),
                0..interval,
            ) as i64)
    }

    /// The Gmail connection `id`, if it works and allows `needs`; else why
    /// not (its status, or the scopes it lacks), with its reconnect.
    async fn usable_mailbox(
        &self,
        workspace: WorkspaceId,
        id: IntegrationId,
        needs: &[Capability],
    ) -> Result<Integration, ServiceError> {
        let integration = self.gmail_integration(workspace, id).await?;
        let broken = |status, missing| {
            ServiceError::connection(integration.id, &integration.email, status, missing)
        };
        match integration.status {
            IntegrationStatus::Connected | IntegrationStatus::MissingScopes => {}
            status => return Err(broken(status, Vec::new())),
        }
        let mut missing: Vec<String> = Vec::new();
        for capability in needs.iter().filter(|need| !integration.allows(**need)) {
            // One Microsoft permission can stand for several capabilities.
            let scope = integration.integration_type.preferred_scope(*capability);
            if !missing.iter().any(|listed| listed == scope) {
                missing.push(scope.to_owned());
            }
        }
        if !missing.is_empty() {
            return Err(broken(IntegrationStatus::MissingScopes, missing));
        }
        Ok(integration)
    }

    pub async fn disable(
        &self,
        workspace: WorkspaceId,
        id: IntegrationId,
    ) -> Result<AutoDraftMailbox, ServiceError> {
        let integration = self.gmail_integration(workspace, id).await?;
        // A workflow waiting for this mailbox's mail keeps its watch.
        let for_workflows = self
            .store
            .autodraft_mailbox(workspace, id)
            .await?
            .is_some_and(|mailbox| mailbox.for_workflows);
        if !for_workflows {
            self.stop_watch(&integration).await;
        }
        let mailbox = self
            .store
            .set_autodraft(workspace, id, false, None, store::now())
            .await?;
        tracing::info!(integration = %id, event = "autodraft_disabled", "auto-draft switched off");
        Ok(mailbox)
    }

    /// Before a workflow that starts on mail arriving in `id` is saved:
    /// check that the connection is a mailbox Mailwright may read, and, when
    /// nothing syncs it yet, where it is now (mail after that starts runs).
    /// Call [`AutoDraft::start_workflow_sync`] once the workflow is saved.
    pub async fn prepare_workflow_sync(
        &self,
        workspace: WorkspaceId,
        id: IntegrationId,
    ) -> Result<Option<WorkflowSync>, ServiceError> {
        let integration = self
            .usable_mailbox(workspace, id, &[Capability::ReadMail])
            .await?;
        if let Some(mailbox) = self.store.autodraft_mailbox(workspace, id).await?
            && mailbox.reading()
        {
            return Ok(None);
        }
        let from_vault =
            |error| ServiceError::from_vault(error, integration.id, &integration.email);
        let inbox = Mailbox::open(&self.vault, workspace, id)
            .await
            .map_err(from_vault)?;
        let cursor = inbox.cursor().await.map_err(from_vault)?.ok_or_else(|| {
            ServiceError::ProviderError(
                "The mailbox gave no position to start from; try again.".into(),
            )
        })?;
        Ok(Some(WorkflowSync { inbox, cursor }))
    }

    /// Keep what the owner asks of the mailbox's drafts: `instructions`
    /// (empty clears them) and `rules`; `None` leaves one as it is. Checked
    /// here: a problem is a 422 naming the field.
    pub async fn set_preferences(
        &self,
        workspace: WorkspaceId,
        id: IntegrationId,
        instructions: Option<&str>,
        rules: Option<DraftRules>,
    ) -> Result<(), ServiceError> {
        self.gmail_integration(workspace, id).await?;
        let mut problems = Vec::new();
        let instructions = match instructions.map(check_instructions) {
            Some(Ok(instructions)) => Some(instructions),
            Some(Err(problem)) => {
                problems.push(domain::workflows::Invalid::new("instructions", problem));
                None
            }
            None => None,
        };
        if let Some(rules) = &rules {
            problems.extend(
                rules
                    .validate()
                    .into_iter()
                    .map(|(field, problem)| domain::workflows::Invalid::new(field, problem)),
            );
        }
        if !problems.is_empty() {
            return Err(ServiceError::Invalid(problems));
        }
        let current = self.store.autodraft_mailbox(workspace, id).await?;
        let (kept_instructions, kept_rules) = current
            .map(|mailbox| (mailbox.instructions, mailbox.rules))
            .unwrap_or_default();
        let instructions = instructions.unwrap_or(kept_instructions);
        let rules = rules.unwrap_or(kept_rules);
        self.store
            .set_drafting_preferences(workspace, id, instructions.as_deref(), &rules)
            .await?;
        Ok(())
    }

    /// Set the owner's writing style by hand (`Some`: kept until they reset
    /// it) or reset it (`None`: learnt again from their sent mail now).
    pub async fn set_style(
        &self,
        workspace: WorkspaceId,
        id: IntegrationId,
        style: Option<StyleProfile>,
    ) -> Result<(), ServiceError> {
        self.gmail_integration(workspace, id).await?;
        match style {
            Some(mut style) => {
                let problems = style.validate();
                if !problems.is_empty() {
                    return Err(ServiceError::Invalid(
                        problems
                            .into_iter()
                            .map(|(field, problem)| domain::workflows::Invalid::new(field, problem))
                            .collect(),
                    ));
                }
                style.learned_from = 0;
                self.store
                    .set_autodraft_style(workspace, id, Some(&style), None)
                    .await?;
            }
            None => {
                self.store
                    .set_autodraft_style(workspace, id, None, None)
                    .await?;
                self.store
                    .enqueue_job(&Self::style_job(workspace, id))
                    .await?;
            }
        }
        Ok(())
    }

    /// Switch the opt-in clean-up on (after `days` of quiet) or off.
    pub async fn set_cleanup(
        &self,
        workspace: WorkspaceId,
        id: IntegrationId,
        days: Option<i32>,
    ) -> Result<(), ServiceError> {
        self.gmail_integration(workspace, id).await?;
        Ok(self
            .store
            .set_autodraft_cleanup(workspace, id, days)
            .await?)
    }

    /// A connection was made again: a workflow that waits on its mailbox
    /// (whose sync a disconnect stopped) gets it synced again from now.
    /// Best effort: a failure is logged, and saving the workflow again
    /// starts it too.
    pub async fn resume_workflow_sync(&self, integration: &Integration) {
        let (workspace, id) = (integration.workspace, integration.id);
        let waiting = match self.store.autodraft_mailbox(workspace, id).await {
            Ok(Some(mailbox)) => mailbox.for_workflows && !mailbox.reading(),
            Ok(None) => false,
            Err(error) => {
                tracing::error!(integration = %id, error = format!("{error:#}"), "cannot read the mailbox to resume its workflows' sync");
                return;
            }
        };
        if !waiting {
            return;
        }
        let resumed = match self.prepare_workflow_sync(workspace, id).await {
            Ok(Some(sync)) => self.start_workflow_sync(sync, None).await,
            Ok(None) => Ok(()),
            Err(error) => Err(error),
        };
        if let Err(error) = resumed {
            tracing::warn!(integration = %id, error = %error, "cannot resume the sync new-mail workflows wait on; saving one of them again retries");
        }
    }

    /// The workflow (`workflow`, when it has an id already) is saved: sync
    /// (and watch) its mailbox from the cursor
    /// [`AutoDraft::prepare_workflow_sync`] read.
    pub async fn start_workflow_sync(
        &self,
        sync: WorkflowSync,
        workflow: Option<uuid::Uuid>,
    ) -> Result<(), ServiceError> {
        let integration = sync.inbox.integration();
        let (workspace, id) = (integration.workspace, integration.id);
        let first_poll = self.first_poll_at();
        self.store
            .start_mailbox_sync(workspace, id, &sync.cursor, first_poll, workflow)
            .await?;
        tracing::info!(integration = %id, history_id = sync.cursor.position, event = "workflow_mailbox_synced", "a workflow waits for this mailbox's mail");
        self.watch_open_mailbox(&sync.inbox, false).await?;
        Ok(())
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

    /// The whole pipeline on one message (the newest inbox message when none
    /// is named), without recording anything unless `create_draft`.
    pub async fn test(
        &self,
        workspace: WorkspaceId,
        id: IntegrationId,
        message_id: Option<String>,
        create_draft: bool,
    ) -> Result<TestOutcome, ServiceError> {
        let integration = self.gmail_integration(workspace, id).await?;
        let from_vault =
            |error| ServiceError::from_vault(error, integration.id, &integration.email);
        let inbox = Mailbox::open(&self.vault, workspace, id)
            .await
            .map_err(from_vault)?;
        let named_by_client = message_id.is_some();
        let message_id = match message_id {
            Some(message_id) => message_id,
            None => {
                let newest = inbox.newest_inbox_message().await.map_err(from_vault)?;
                newest.map(|m| m.id).ok_or_else(|| {
                    ServiceError::Conflict(
                        "The inbox has no message to test with; send one to this mailbox first."
                            .into(),
                    )
                })?
            }
        };
        let no_such_message =
            || ServiceError::invalid("message_id", "is not a message in this mailbox");
        let verdict = match self.evaluate(&inbox, &message_id, true, true).await {
            Ok(verdict) => verdict,
            // Gmail refuses an id that is not one of its own.
            Err(PipelineError::Permanent { .. }) if named_by_client => {
                return Err(no_such_message());
            }
            Err(error) => return Err(pipeline_error(&integration, error)),
        };
        if named_by_client && matches!(verdict, Verdict::Skip(SkipReason::Deleted)) {
            return Err(no_such_message());
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
                    let draft = self
                        .create_draft(&inbox, &plan)
                        .await
                        .map_err(|error| pipeline_error(&integration, error))?;
                    // When a sync already found this message, its row ends drafted too.
                    let row = self
                        .store
                        .autodraft_message_by_gmail_id(workspace, id, &plan.source.id)
                        .await?
                        .map(|message| message.id);
                    let generated = Generated {
                        draft_type: plan.label.draft_type().to_owned(),
                        draft_type_label: plan.label.label().to_owned(),
                        generator: plan.generator.clone(),
                    };
                    let answered = Answered {
                        row,
                        gmail_message_id: &plan.source.id,
                        thread_id: &plan.source.thread_id,
                    };
                    self.record_draft(
                        &integration,
                        answered,
                        MadeDraft {
                            provider_draft_id: &draft.id,
                            source_rfc822_message_id: plan.in_reply_to.clone(),
                            generated: &generated,
                            summary: plan.summary(),
                            reply_text: Some(plan.reply_text.clone()),
                            draft_message_id: draft.message_id.clone(),
                        },
                        "test",
                    )
                    .await?;
                    Some(draft.id)
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

/// A pipeline failure as the test action answers it.
fn pipeline_error(integration: &Integration, error: PipelineError) -> ServiceError {
    match error {
        // The status as the failed call left it (the integration read
        // before the call may still say connected).
        PipelineError::Connection { code, message } => {
            let (status, missing_scopes) = match code {
                "missing_scopes" => (
                    IntegrationStatus::MissingScopes,
                    integration.missing_scopes(),
                ),
                "needs_reauth" => (IntegrationStatus::NeedsReauth, Vec::new()),
                _ => (IntegrationStatus::Disconnected, Vec::new()),
            };
            ServiceError::Connection {
                integration: integration.id,
                status,
                missing_scopes,
                message,
            }
        }
        PipelineError::Transient { message, .. } => {
            ServiceError::ProviderUnavailable(format!("{message}; try again."))
        }
        PipelineError::Permanent { message, .. } => ServiceError::ProviderError(message),
    }
}

/// Everything a mailbox's auto-draft page and `GET .../auto-draft` show.
#[derive(Debug)]
pub struct Overview {
    pub integration: Integration,
    pub enabled: bool,
    pub updated_at: DateTime<Utc>,
    /// While on but unable to run (the connection is broken): a code and
    /// why, in words.
    pub paused: Option<(String, String)>,
    /// Why the switch cannot be turned on, if it cannot.
    pub blocked: Option<String>,
    pub stats: AutoDraftStats,
    /// The newer of the mailbox's last sync failure and the last message
    /// that failed.
    pub last_failure: Option<LastError>,
    /// Notable events, newest first.
    pub events: Vec<AutoDraftEvent>,
    pub watch: WatchOverview,
    /// What the owner asks of every draft.
    pub instructions: Option<String>,
    pub rules: DraftRules,
    /// The clean-up's days of quiet (`None`: off).
    pub cleanup_after_days: Option<i32>,
    /// `(draft_type, generator, outcome, count)` of the mailbox's drafts.
    pub outcome_counts: Vec<(String, String, String, i64)>,
    /// How the owner writes (`None`: not learnt yet).
    pub style: Option<StyleProfile>,
    /// The model's daily token budget per mailbox (`None`: no model).
    pub llm_daily_tokens: Option<u64>,
    /// The mailbox's model use over the last 7 days, newest first.
    pub llm_usage: Vec<store::autodraft::LlmUsage>,
}

/// The mailbox's push watch, as the object and page show it.
#[derive(Debug, Clone)]
pub struct WatchOverview {
    pub status: WatchStatus,
    pub expires_at: Option<DateTime<Utc>>,
    /// When it is renewed next (after a failure: tried again).
    pub renews_at: Option<DateTime<Utc>>,
    pub last_error: Option<LastError>,
}

/// How many events an overview carries.
const OVERVIEW_EVENTS: i64 = 10;

impl AutoDraft {
    /// The switch, numbers and recent events of mailbox `id`.
    pub async fn overview(
        &self,
        workspace: WorkspaceId,
        id: IntegrationId,
    ) -> Result<Overview, ServiceError> {
        let integration = self.store.integration(workspace, id).await?;
        let mailbox = self.store.autodraft_mailbox(workspace, id).await?;
        let stats = self.store.autodraft_stats(workspace, id).await?;
        let events = self
            .store
            .autodraft_events(workspace, id, OVERVIEW_EVENTS)
            .await?;
        let enabled = mailbox.as_ref().is_some_and(|mailbox| mailbox.enabled);
        let paused = (enabled && integration.status != IntegrationStatus::Connected).then(|| {
            let explanation = explain(
                integration.status,
                Some(&integration.email),
                &integration
                    .granted_scopes
                    .missing_for(integration.integration_type),
            );
            let message = match &integration.last_error {
                Some(error) => error.message.clone(),
                None => explanation.message(),
            };
            (explanation.code.to_owned(), message)
        });
        let mailbox_failure = mailbox
            .as_ref()
            .and_then(|mailbox| mailbox.last_failure.clone());
        let last_failure = match (mailbox_failure, stats.last_failed_message.clone()) {
            (Some(a), Some(b)) => Some(if a.at >= b.at { a } else { b }),
            (a, b) => a.or(b),
        };
        let watch = mailbox
            .as_ref()
            .map(|mailbox| mailbox.watch.clone())
            .unwrap_or_default();
        let announced = self.announced(integration.integration_type);
        let status = WatchStatus::of(announced, enabled, &watch, store::now());
        let watch = WatchOverview {
            status,
            expires_at: watch.expires_at.filter(|_| enabled),
            renews_at: watch.renew_at.filter(|_| enabled && announced),
            last_error: watch.last_error.filter(|_| status == WatchStatus::Failing),
        };
        let (instructions, rules) = mailbox
            .as_ref()
            .map(|mailbox| (mailbox.instructions.clone(), mailbox.rules.clone()))
            .unwrap_or_default();
        let cleanup_after_days = mailbox
            .as_ref()
            .and_then(|mailbox| mailbox.cleanup_after_days);
        let outcome_counts = self.store.autodraft_outcome_counts(workspace, id).await?;
        let week_ago = (store::now() - chrono::Duration::days(6)).date_naive();
        let llm_usage = self.store.llm_usage(workspace, id, week_ago).await?;
        let llm_daily_tokens =
            matches!(self.generator, Generator::Llm(_)).then_some(self.settings.llm_daily_tokens);
        Ok(Overview {
            watch,
            enabled,
            instructions,
            rules,
            cleanup_after_days,
            outcome_counts,
            llm_daily_tokens,
            llm_usage,
            style: mailbox.as_ref().and_then(|mailbox| mailbox.style.clone()),
            updated_at: mailbox
                .as_ref()
                .map_or(integration.updated_at, |mailbox| mailbox.updated_at),
            paused,
            blocked: blocked_reason(&integration),
            stats,
            last_failure,
            events,
            integration,
        })
    }

    /// The newest `limit` drafts auto-draft created in mailbox `id`.
    pub async fn drafts(
        &self,
        workspace: WorkspaceId,
        id: IntegrationId,
        limit: i64,
    ) -> Result<Vec<DraftRecord>, ServiceError> {
        // The connection's own "not found" (foreign or missing), not an
        // empty list.
        self.store.integration(workspace, id).await?;
        Ok(self.store.autodraft_drafts(workspace, id, limit).await?)
    }

    /// Mailbox `id`'s finished messages per UTC day and status
    /// (`drafted`, `skipped`, `failed`), from `since` on.
    pub async fn days(
        &self,
        workspace: WorkspaceId,
        id: IntegrationId,
        since: DateTime<Utc>,
    ) -> Result<Vec<DayCount>, ServiceError> {
        Ok(self.store.autodraft_days(workspace, id, since).await?)
    }
}

/// Why the switch cannot be turned on, if it cannot.
fn blocked_reason(integration: &Integration) -> Option<String> {
    let missing: Vec<&str> = [Capability::ReadMail, Capability::Draft]
        .into_iter()
        .filter(|capability| !integration.allows(*capability))
        .map(Capability::describe)
        .collect();
    if !missing.is_empty() {
        return Some(format!(
            "Auto-draft needs permission to {}. Reconnect and allow it.",
            missing.join(" and ")
        ));
    }
    let explanation = explain(
        integration.status,
        Some(&integration.email),
        &integration
            .granted_scopes
            .missing_for(integration.integration_type),
    );
    explanation.needs_reconnect().then(|| explanation.message())
}

/// A mailbox a workflow is about to wait on, and where it is now.
pub struct WorkflowSync {
    inbox: Mailbox,
    cursor: domain::mail::MailboxCursor,
}
