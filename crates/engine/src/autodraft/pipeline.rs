//! One message through the pipeline: decide, generate, create the draft
//! exactly once, record the outcome.

use super::*;
use domain::drafting::rules::RuleVerdict;

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
    pub source: Message,
    pub label: DraftLabel,
    pub generator: String,
    pub to: String,
    pub subject: String,
    /// The reply with the original quoted below.
    pub body: String,
    pub in_reply_to: Option<String>,
    pub references: Vec<String>,
    pub rfc822_message_id: String,
    /// The reply alone (the body without the quoted original).
    pub reply_text: String,
}

/// Characters of the reply kept for the drafts list.
const REPLY_EXCERPT_CHARS: usize = 280;

impl PlannedReply {
    /// What the drafts list shows of this reply.
    pub(super) fn summary(&self) -> DraftSummary {
        let mut excerpt: String = self.reply_text.chars().take(REPLY_EXCERPT_CHARS).collect();
        if excerpt.len() < self.reply_text.len() {
            excerpt.push('…');
        }
        DraftSummary {
            source_subject: self.source.header("Subject").map(str::to_owned),
            source_from: self.source.from.as_ref().map(|from| from.display()),
            reply_excerpt: Some(excerpt),
        }
    }
}

/// The message a draft answers: its row, when a sync found it (the test
/// action may answer one no sync has seen).
pub(super) struct Answered<'a> {
    pub(super) row: Option<Uuid>,
    pub(super) gmail_message_id: &'a str,
    pub(super) thread_id: &'a str,
}

/// The draft that answers it: the provider's id, the answered message's
/// Message-ID, what wrote it, and its line in the drafts list.
pub(super) struct MadeDraft<'a> {
    pub(super) provider_draft_id: &'a str,
    pub(super) source_rfc822_message_id: Option<String>,
    pub(super) generated: &'a Generated,
    pub(super) summary: DraftSummary,
    /// The reply as written (none for a draft adopted after a crash).
    pub(super) reply_text: Option<String>,
    /// The message the draft held when made (none when adopted).
    pub(super) draft_message_id: Option<String>,
}

impl<'a> From<&'a InboundMessage> for Answered<'a> {
    fn from(message: &'a InboundMessage) -> Self {
        Answered {
            row: Some(message.id),
            gmail_message_id: &message.gmail_message_id,
            thread_id: &message.thread_id,
        }
    }
}

impl AutoDraft {
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
                .record_autodraft_draft(Some(message.id), &existing)
                .await
                .map_err(job_transient)?;
            return Ok(());
        }
        let Some(integration) = self
            .existing_integration(workspace, message.integration_id)
            .await
            .map_err(job_transient)?
        else {
            return Ok(());
        };
        if integration.status != IntegrationStatus::Connected {
            // Paused: no call to Google can succeed; the integration's status
            // says why and its owner was told once.
            let missing = integration.missing_scopes();
            let explanation =
                domain::explain::explain(integration.status, Some(&integration.email), &missing);
            let (code, detail) = (explanation.code, explanation.message());
            return self
                .finish_failed(&integration, &message, code, &detail)
                .await;
        }
        let retrying = message.status == MessageStatus::Creating;
        // A model that is still down on this attempt gives way to the
        // built-in drafter: a reply now beats a better one hours later.
        let last_attempt = job.attempt >= MODEL_ATTEMPTS;
        let evaluated = match Mailbox::open(&self.vault, workspace, integration.id).await {
            Ok(inbox) => self
                .evaluate(&inbox, &message.gmail_message_id, retrying, last_attempt)
                .await
                .map(|verdict| (inbox, verdict)),
            Err(error) => Err(vault_to_pipeline(error)),
        };
        let result = match evaluated {
            Ok((_, Verdict::Skip(reason))) => return self.finish_skipped(&message, reason).await,
            Ok((_, Verdict::Adopt { provider_draft_id })) => {
                let generated = message.generated.clone().unwrap_or(Generated {
                    draft_type: "reply".into(),
                    draft_type_label: "reply".into(),
                    generator: "unknown".into(),
                });
                self.record_draft(
                    &integration,
                    Answered::from(&message),
                    MadeDraft {
                        provider_draft_id: &provider_draft_id,
                        source_rfc822_message_id: None,
                        generated: &generated,
                        summary: DraftSummary::default(),
                        reply_text: None,
                        draft_message_id: None,
                    },
                    "adopted",
                )
                .await
                .map_err(store_transient)
                .map(|()| count_drafted("adopted"))
            }
            Ok((inbox, Verdict::Draft(plan))) => self.create(&inbox, &message, &plan).await,
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

    /// Everything up to (not including) creating the draft.
    pub(super) async fn evaluate(
        &self,
        inbox: &Mailbox,
        source_id: &str,
        check_for_ours: bool,
        last_attempt: bool,
    ) -> Result<Verdict, PipelineError> {
        let integration = inbox.integration();
        let source = match inbox.message(source_id).await {
            Ok(source) => source,
            Err(VaultError::Gone) => return Ok(Verdict::Skip(SkipReason::Deleted)),
            Err(error) => return Err(vault_to_pipeline(error)),
        };
        let rfc822_message_id = reply_message_id(integration.id, &source.id);
        let preferences = self
            .store
            .autodraft_mailbox(integration.workspace, integration.id)
            .await
            .map_err(store_transient)?
            .map(|mailbox| (mailbox.instructions, mailbox.rules, mailbox.style))
            .unwrap_or_default();
        let (instructions, rules, style) = preferences;
        let sender_address = source
            .from
            .as_ref()
            .map(|from| from.address.as_str())
            .unwrap_or_default();
        let listed = rules.verdict(sender_address);
        match skip_reason_for(&source, &integration.email) {
            // Our own draft is a draft; only a retry could meet it here.
            Some(reason) if !reason.yields_to_always() => return Ok(Verdict::Skip(reason)),
            _ if listed == Some(RuleVerdict::Never) => {
                return Ok(Verdict::Skip(SkipReason::SenderExcluded));
            }
            Some(reason) if listed != Some(RuleVerdict::Always) => {
                return Ok(Verdict::Skip(reason));
            }
            _ => {}
        }
        // Gmail's thread id is the id of its first message: a message that
        // starts its thread and arrived moments ago has no earlier messages,
        // and nobody has had time to answer it or draft a reply, so (on a
        // first attempt) the thread read is skipped. Older messages (found by
        // a poll) are checked: their owner may have replied meanwhile. IMAP
        // ids never equal thread ids: its conversations are always read (a
        // renumbered folder can show a drafted message again, new id and all).
        let fresh = store::now().timestamp_millis() - source.received_at_millis
            < FRESH_MESSAGE.as_millis() as i64;
        let mut earlier = Vec::new();
        if check_for_ours || source.thread_id != source.id || !fresh {
            let thread = inbox
                .thread(&source.thread_id)
                .await
                .map_err(vault_to_pipeline)?;
            let drafts: Vec<&Message> = thread
                .messages
                .iter()
                .filter(|m| m.placement.draft)
                .collect();
            if drafts
                .iter()
                .any(|draft| draft.header(SOURCE_HEADER) == Some(source.id.as_str()))
            {
                let found = inbox
                    .find_draft(&rfc822_message_id)
                    .await
                    .map_err(vault_to_pipeline)?;
                return match found {
                    Some(provider_draft_id) => Ok(Verdict::Adopt { provider_draft_id }),
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
                .filter(|m| !m.placement.draft)
                .max_by_key(|m| m.received_at_millis);
            if let Some(latest) = latest
                && latest.id != source.id
                && latest.is_from(&integration.email)
            {
                return Ok(Verdict::Skip(SkipReason::ThreadLatestFromOwner));
            }
            earlier = earlier_messages(&thread.messages, &source);
        }
        if rules.skip_cold_outreach
            && earlier.is_empty()
            && source.starts_thread()
            && drafting::rules::looks_like_cold_outreach(
                source.header("Subject").unwrap_or_default(),
                &source.text,
            )
        {
            return Ok(Verdict::Skip(SkipReason::ColdOutreach));
        }
        let detected = drafting::language::detect_or_english(
            source.header("Subject").unwrap_or_default(),
            &source.text,
        );
        if matches!(self.generator, Generator::Builtin) && detected.is_none() {
            return Ok(Verdict::Skip(SkipReason::UnsupportedLanguage));
        }
        // The quote's attribution line in the message's language (a model
        // answers other languages too: their quote says it in English).
        let language = detected.unwrap_or(drafting::language::Language::English);
        let Some(reply) = reply_headers(&source) else {
            return Ok(Verdict::Skip(SkipReason::NoReplyAddress));
        };
        let sender = source.from.clone().unwrap_or_else(|| reply.to.clone());
        let original_subject = source.header("Subject").unwrap_or_default().to_owned();
        // A signature that cannot be read now is left out rather than
        // holding the draft back (it is read again within the hour).
        let signature = match self.signature(inbox).await {
            Ok(signature) => signature,
            Err(PipelineError::Transient { message, .. }) => {
                tracing::warn!(integration = %integration.id, "the signature could not be read ({message}); drafting without it");
                None
            }
            Err(error) => return Err(error),
        };
        let request = DraftRequest {
            sender_name: sender.name.clone(),
            sender_address: sender.address.clone(),
            subject: original_subject.clone(),
            text: source.text.clone(),
            owner_name: integration.display_name.clone(),
            owner_address: integration.email.clone(),
            earlier,
            signature,
            instructions,
            style,
        };
        let mut generated = self.generate(integration, &request, last_attempt).await?;
        if let (Some(minimum), Some(confidence)) = (rules.min_confidence, generated.confidence)
            && confidence < minimum
        {
            return Ok(Verdict::Skip(SkipReason::LowConfidence));
        }
        // As Gmail would add it, whoever wrote the reply.
        generated.body = drafting::with_signature(generated.body, request.signature.as_deref());
        let date = source.header("Date").unwrap_or_default().to_owned();
        let body = format!(
            "{}\n\n{}",
            generated.body.trim_end(),
            drafting::quote_in(language, &sender.display(), &date, &source.text)
        );
        Ok(Verdict::Draft(Box::new(PlannedReply {
            reply_text: generated.body.trim().to_owned(),
            subject: drafting::reply_subject(&original_subject),
            label: generated.label,
            generator: generated.generator,
            to: reply.to_header,
            body,
            in_reply_to: reply.in_reply_to,
            references: reply.references,
            rfc822_message_id,
            source,
        })))
    }

    /// The reply body from the language model, or the built-in drafter when
    /// none is configured, when the model's answer is unusable, or when the
    /// model is still down on the message's last attempt (a draft beats none).
    pub(super) async fn generate(
        &self,
        integration: &Integration,
        request: &DraftRequest,
        last_attempt: bool,
    ) -> Result<GeneratedDraft, PipelineError> {
        let Generator::Llm(llm) = &self.generator else {
            return Ok(drafting::builtin_draft(request));
        };
        let (workspace, id) = (integration.workspace, integration.id);
        let today = store::now().date_naive();
        let spent: i64 = self
            .store
            .llm_usage(workspace, id, today)
            .await
            .map_err(store_transient)?
            .iter()
            .map(|usage| usage.tokens)
            .sum();
        let limit = i64::try_from(self.settings.llm_daily_tokens).unwrap_or(i64::MAX);
        if spent >= limit {
            // The page and the API show the day's use against the limit.
            tracing::info!(integration = %id, spent, limit, "the model's daily budget for this mailbox is used up; the built-in drafter writes the draft");
            metrics::counter!(LLM_OVER_BUDGET).increment(1);
            return Ok(drafting::builtin_draft(request));
        }
        match llm.draft(request).await {
            Ok(generated) => {
                self.record_llm_usage(integration, llm.model(), &generated, spent, limit)
                    .await;
                Ok(generated)
            }
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

    /// Count a model call's tokens for its mailbox and model; the call that
    /// uses up the day's budget says so in the mailbox's events.
    async fn record_llm_usage(
        &self,
        integration: &Integration,
        model: &str,
        generated: &GeneratedDraft,
        spent_before: i64,
        limit: i64,
    ) {
        let tokens = generated
            .tokens
            .and_then(|tokens| i64::try_from(tokens).ok())
            .unwrap_or(0);
        metrics::counter!(LLM_TOKENS, "model" => model.to_owned())
            .increment(u64::try_from(tokens).unwrap_or(0));
        let (workspace, id) = (integration.workspace, integration.id);
        let today = store::now().date_naive();
        match self
            .store
            .add_llm_usage(workspace, id, today, model, tokens)
            .await
        {
            Ok(spent) if spent >= limit && spent_before < limit => {
                let message = format!(
                    "The language model's budget for this mailbox today ({limit} tokens) is used up: the built-in drafter writes its drafts until midnight UTC."
                );
                if let Err(error) = self
                    .store
                    .record_autodraft_event(workspace, id, "llm_budget", &message)
                    .await
                {
                    tracing::error!(integration = %id, error = format!("{error:#}"), "cannot record the budget event");
                }
            }
            Ok(_) => {}
            Err(error) => {
                tracing::error!(integration = %id, error = format!("{error:#}"), "cannot record the model's token use");
            }
        }
    }

    pub(super) async fn create(
        &self,
        inbox: &Mailbox,
        message: &InboundMessage,
        plan: &PlannedReply,
    ) -> Result<(), PipelineError> {
        let integration = inbox.integration();
        let generated = Generated {
            draft_type: plan.label.draft_type().to_owned(),
            draft_type_label: plan.label.label().to_owned(),
            generator: plan.generator.clone(),
        };
        self.store
            .mark_autodraft_creating(message.workspace, message.id, &generated)
            .await
            .map_err(store_transient)?;
        let draft = self.create_draft(inbox, plan).await?;
        self.record_draft(
            integration,
            Answered::from(message),
            MadeDraft {
                provider_draft_id: &draft.id,
                source_rfc822_message_id: plan.in_reply_to.clone(),
                generated: &generated,
                summary: plan.summary(),
                reply_text: Some(plan.reply_text.clone()),
                draft_message_id: draft.message_id.clone(),
            },
            "created",
        )
        .await
        .map_err(store_transient)?;
        count_drafted("created");
        Ok(())
    }

    /// Create the planned reply as a draft in its thread; the draft's id.
    pub(super) async fn create_draft(
        &self,
        inbox: &Mailbox,
        plan: &PlannedReply,
    ) -> Result<crate::mailbox::CreatedDraft, PipelineError> {
        let integration = inbox.integration();
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
        inbox
            .create_draft(&raw, Some(&plan.source.thread_id))
            .await
            .map_err(vault_to_pipeline)
    }

    /// Record the draft created (or adopted) for `answered`; the pipeline
    /// and the test action both record through here.
    pub(super) async fn record_draft(
        &self,
        integration: &Integration,
        answered: Answered<'_>,
        made: MadeDraft<'_>,
        how: &'static str,
    ) -> Result<(), StoreError> {
        let MadeDraft {
            provider_draft_id,
            source_rfc822_message_id,
            generated,
            summary,
            reply_text,
            draft_message_id,
        } = made;
        let record = DraftRecord {
            id: Uuid::now_v7(),
            workspace: integration.workspace,
            integration_id: integration.id,
            source_message_id: answered.gmail_message_id.to_owned(),
            source_rfc822_message_id,
            thread_id: answered.thread_id.to_owned(),
            provider_draft_id: provider_draft_id.to_owned(),
            draft_type: generated.draft_type.clone(),
            draft_type_label: generated.draft_type_label.clone(),
            generator: generated.generator.clone(),
            created_at: store::now(),
            summary,
            reply_text,
            draft_message_id,
            outcome: domain::drafting::outcome::DraftOutcome::Pending
                .as_str()
                .to_owned(),
            outcome_at: None,
            changed_percent: None,
        };
        self.store
            .record_autodraft_draft(answered.row, &record)
            .await?;
        self.events
            .emit(
                integration.workspace,
                domain::webhooks::EventType::AutodraftDraftCreated,
                json!({
                    "integration_id": integration.id.to_string(),
                    "message_id": record.source_message_id,
                    "thread_id": record.thread_id,
                    "draft_id": record.provider_draft_id,
                    "draft_type": record.draft_type,
                    "generator": record.generator,
                }),
            )
            .await;
        tracing::info!(integration = %integration.id, gmail_message = %answered.gmail_message_id, draft_type = %generated.draft_type, how, "auto-draft created a reply draft");
        Ok(())
    }

    pub(super) async fn finish_skipped(
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
        tracing::debug!(integration = %message.integration_id, gmail_message = %message.gmail_message_id, reason = reason.code(), "auto-draft skipped a message");
        Ok(())
    }

    pub(super) async fn finish_failed(
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
        tracing::warn!(integration = %integration.id, gmail_message = %message.gmail_message_id, code, "auto-draft could not draft a reply: {detail}");
        self.message_failed(message, code).await;
        self.check_alert(integration, true).await;
        Ok(())
    }

    /// Announce that `message` ended failed, with its code.
    pub(super) async fn message_failed(&self, message: &InboundMessage, code: &str) {
        self.events
            .emit(
                message.workspace,
                domain::webhooks::EventType::AutodraftMessageFailed,
                json!({
                    "integration_id": message.integration_id.to_string(),
                    "message_id": message.gmail_message_id,
                    "thread_id": message.thread_id,
                    "error_code": code,
                }),
            )
            .await;
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
        let Some(integration) = self
            .existing_integration(workspace, message.integration_id)
            .await?
        else {
            return Ok(());
        };
        let detail = format!("Gmail kept failing; {reason}.");
        self.finish_failed(&integration, &message, "provider_unavailable", &detail)
            .await
            .map_err(|error| StoreError::Other(error.to_string().into()))
    }
}

/// The conversation before `source` as the drafter reads it: the newest
/// [`drafting::EARLIER_MESSAGES`] messages received before it (drafts left
/// out), each without its quoted history.
fn earlier_messages(thread: &[Message], source: &Message) -> Vec<drafting::EarlierMessage> {
    let mut before: Vec<&Message> = thread
        .iter()
        .filter(|message| {
            !message.placement.draft
                && message.id != source.id
                && message.received_at_millis <= source.received_at_millis
        })
        .collect();
    before.sort_by_key(|message| message.received_at_millis);
    let skip = before.len().saturating_sub(drafting::EARLIER_MESSAGES);
    before
        .into_iter()
        .skip(skip)
        .map(|message| drafting::EarlierMessage {
            from: message
                .from
                .as_ref()
                .map(|from| from.display())
                .unwrap_or_default(),
            date: message.header("Date").unwrap_or_default().to_owned(),
            text: drafting::without_quoted_history(&message.text),
        })
        .collect()
}

/// A message the pipeline drafted (`created`) or found drafted by an
/// earlier attempt (`adopted`); the test action's drafts are not counted.
fn count_drafted(how: &'static str) {
    metrics::counter!(MESSAGES, "outcome" => "drafted", "reason" => how).increment(1);
}
