//! Running workflows: a run is a row, executed by a `workflow.run` job; steps
//! run in order and each records its status, output and error. A run
//! executes the copy of its workflow's steps it was created with
//! ([`domain::runs::RunSteps`]), whatever happens to the workflow later.
//!
//! Exactly-once sends: each outgoing message carries a Message-ID derived
//! from the run and step. Every start of a run is counted, durably, by the
//! statement that reads the run for the worker. A start after the first may
//! follow an attempt that sent without recording it (the worker died, or
//! Gmail timed out after perhaps sending), so before sending, such a start
//! asks Gmail for a message with that Message-ID and, if there is one,
//! records it instead of sending again.

use std::sync::Arc;

use domain::IntegrationId;
use domain::retry::RetryPolicy;
use domain::runs::{RunError, RunStatus, StepStatus};
use domain::scopes::Capability;
use domain::workflows::{Action, RenderedStep, Step};
use providers::google::message::{Outgoing, rfc822};
use providers::outbound::OutboundError;
use serde_json::{Value, json};
use store::jobs::ClaimedJob;
use store::system_emails::NewSystemEmail;
use store::workflows::Run;
use store::{Store, StoreError};
use uuid::Uuid;

use crate::mailbox::Mailbox;
use crate::notify::DELIVER_SYSTEM_EMAIL;
use crate::vault::{Vault, VaultError};
use crate::worker::{GiveUpFuture, JobError, JobFuture, JobHandler, Success, next_attempt_at};

use super::{RUN_WORKFLOW, RUNS, STEP_SECONDS};

/// Executes one run.
pub struct RunWorkflow {
    store: Store,
    /// For `http.post` steps (none: they fail saying so).
    outbound: Option<providers::outbound::OutboundClient>,
    events: crate::webhooks::Events,
    /// For the opt-in email when a run fails for good.
    notifier: crate::notify::Notifier,
    vault: Arc<Vault>,
    /// For links in error messages.
    public_url: String,
    /// The worker's: a retrying run shows when its next attempt is.
    retry: RetryPolicy,
}

/// How a step ended when it did not succeed.
/// In a re-run's step output before it runs: the id of the run whose
/// Message-ID the step's message has (the failed run's), so a message that
/// run sent is found instead of sent again.
pub(super) const MESSAGE_ID_SEED: &str = "message_id_seed";

pub(super) enum StepFailure {
    /// The run fails now, with this code and message.
    Final { code: &'static str, message: String },
    /// The step does nothing and the run goes on: it is `skipped` (output
    /// null), its `error` saying why.
    Skip { code: &'static str, message: String },
    /// Try again later (the job retries).
    Retry {
        message: String,
        retry_after: Option<std::time::Duration>,
    },
}

impl RunWorkflow {
    pub fn new(
        store: Store,
        vault: Arc<Vault>,
        public_url: String,
        retry: RetryPolicy,
    ) -> RunWorkflow {
        RunWorkflow {
            outbound: None,
            events: crate::webhooks::Events::new(store.clone()),
            notifier: crate::notify::Notifier::new(store.clone(), public_url.clone()),
            store,
            vault,
            public_url: public_url.trim_end_matches('/').to_owned(),
            retry,
        }
    }

    /// Make `http.post` steps with this client (the operator's outbound
    /// rules).
    pub fn with_outbound(mut self, client: providers::outbound::OutboundClient) -> RunWorkflow {
        self.outbound = Some(client);
        self
    }

    /// `earlier_starts`: how often this run was started before (see the
    /// module's note on exactly-once sends).
    async fn run_steps(
        &self,
        job: &ClaimedJob,
        run: &mut Run,
        workflow_steps: &Value,
        earlier_starts: u32,
    ) -> Result<Success, JobError> {
        let workflow_now: Option<Vec<Step>> = serde_json::from_value(workflow_steps.clone()).ok();
        let definition = match run.steps.definition(workflow_now.as_deref()) {
            Ok(definition) => definition,
            Err(changed) => {
                let error = RunError::new("validation_failed", changed.to_string());
                return self.finish(job, run, RunStatus::Failed, Some(error)).await;
            }
        };
        for (index, step) in definition.iter().enumerate() {
            let Some(record) = run.steps.get(index) else {
                break;
            };
            if record.status.is_done() {
                continue;
            }
            let may_have_reached_provider = record.status == StepStatus::Running
                || record.output.get(MESSAGE_ID_SEED).is_some();
            // The earlier steps' outputs, which this step's condition and
            // templates see as `steps`.
            let outputs: Vec<Value> = run
                .steps
                .iter()
                .take(index)
                .map(|record| record.output.clone())
                .collect();
            let last = index + 1 == definition.len();
            match decide(step, index, &run.input, &outputs).await {
                Ok(true) => {}
                Ok(false) => {
                    if let Some(record) = run.steps.get_mut(index) {
                        record.status = StepStatus::Skipped;
                        record.output = Value::Null;
                        record.error = None;
                    }
                    if last {
                        return self.finish(job, run, RunStatus::Succeeded, None).await;
                    }
                    self.save(run, RunStatus::Running, None).await?;
                    continue;
                }
                Err(failure) => {
                    let (code, message) = match failure {
                        StepFailure::Final { code, message }
                        | StepFailure::Skip { code, message } => (code, message),
                        StepFailure::Retry { message, .. } => ("internal", message),
                    };
                    let error = RunError::new(code, message);
                    if let Some(record) = run.steps.get_mut(index) {
                        record.status = StepStatus::Failed;
                        record.error = Some(error.clone());
                    }
                    return self.finish(job, run, RunStatus::Failed, Some(error)).await;
                }
            }
            let started = std::time::Instant::now();
            let outcome = match render_step(step, index, &run.input, &outputs).await {
                Err(failure) => Err(failure),
                Ok(rendered) => {
                    let earlier = earlier_starts + u32::from(may_have_reached_provider);
                    self.execute_step(run, index, &rendered, earlier).await
                }
            };
            metrics::histogram!(STEP_SECONDS, "action" => step.action.as_str())
                .record(started.elapsed().as_secs_f64());
            let Some(record) = run.steps.get_mut(index) else {
                break;
            };
            // A skipped step's output is null, as for a false condition;
            // why it was skipped is its `error` (the run still succeeds).
            let done = match outcome {
                Err(StepFailure::Skip { code, message }) => {
                    tracing::info!(run = %run.id, step = index, code, "a step was skipped: {message}");
                    Ok((
                        StepStatus::Skipped,
                        Value::Null,
                        Some(RunError::new(code, message)),
                    ))
                }
                Ok(output) => Ok((StepStatus::Succeeded, output, None)),
                Err(failure) => Err(failure),
            };
            match done {
                Ok((status, output, note)) => {
                    record.status = status;
                    record.output = output;
                    record.error = note;
                    // The last step's result, the run's end and the job's: one write.
                    if last {
                        return self.finish(job, run, RunStatus::Succeeded, None).await;
                    }
                    self.save(run, RunStatus::Running, None).await?;
                }
                Err(StepFailure::Final { code, message } | StepFailure::Skip { code, message }) => {
                    let error = RunError::new(code, message);
                    record.status = StepStatus::Failed;
                    record.error = Some(error.clone());
                    return self.finish(job, run, RunStatus::Failed, Some(error)).await;
                }
                Err(StepFailure::Retry {
                    message,
                    retry_after,
                }) => {
                    record.error = Some(RunError::new("provider_unavailable", message.clone()));
                    let at = next_attempt_at(&self.retry, job, retry_after);
                    self.save(run, RunStatus::Retrying, Some(at)).await?;
                    return Err(JobError::RetryAt { message, at });
                }
            }
        }
        self.finish(job, run, RunStatus::Succeeded, None).await
    }

    /// Record the run's end (`succeeded` or `failed`) with its job's success.
    async fn finish(
        &self,
        job: &ClaimedJob,
        run: &mut Run,
        status: RunStatus,
        error: Option<RunError>,
    ) -> Result<Success, JobError> {
        run.status = status;
        run.error = error;
        let lease_held = self
            .store
            .finish_run(
                run.workspace,
                run.id,
                status,
                &run.steps,
                run.error.as_ref(),
                job,
            )
            .await
            .map_err(|error| JobError::Transient {
                message: format!("the run cannot be saved ({error})"),
                retry_after: None,
            })?;
        metrics::counter!(RUNS, "outcome" => status.as_str()).increment(1);
        if lease_held {
            self.announce_end(run).await;
        }
        Ok(Success::Recorded { lease_held })
    }

    /// The run ended (`run.status`): the webhook event, and for a failure
    /// the owner's email when the workflow asks. Every end goes through
    /// here: a step's, and the retry horizon's (`give_up`).
    async fn announce_end(&self, run: &Run) {
        let event = if run.status == RunStatus::Succeeded {
            domain::webhooks::EventType::WorkflowRunSucceeded
        } else {
            domain::webhooks::EventType::WorkflowRunFailed
        };
        self.events
            .emit(
                run.workspace,
                event,
                serde_json::json!({
                    "run_id": run.id.to_string(),
                    "workflow_id": run.workflow_id.to_string(),
                    "status": run.status.as_str(),
                    "error_code": run.error.as_ref().map(|error| error.code.clone()),
                }),
            )
            .await;
        if run.status == RunStatus::Failed {
            self.tell_owner_if_asked(run).await;
        }
    }

    /// A run failed for good: email the workspace's owner when its
    /// workflow asks for it (once per run).
    async fn tell_owner_if_asked(&self, run: &Run) {
        match self.store.workflow(run.workspace, run.workflow_id).await {
            Ok(workflow) if workflow.notify_on_failure => {
                self.notifier.run_failed(&workflow, run).await;
            }
            Ok(_) | Err(store::StoreError::NotFound) => {}
            Err(error) => {
                tracing::error!(run = %run.id, error = format!("{error:#}"), "cannot read the workflow to tell its owner")
            }
        }
    }

    /// Record progress: `Running` after a step, or `Retrying` until `next_attempt_at`.
    async fn save(
        &self,
        run: &mut Run,
        status: RunStatus,
        next_attempt_at: Option<chrono::DateTime<chrono::Utc>>,
    ) -> Result<(), JobError> {
        run.status = status;
        run.next_attempt_at = next_attempt_at;
        self.store
            .update_run(
                run.workspace,
                run.id,
                status,
                &run.steps,
                None,
                next_attempt_at,
            )
            .await
            .map_err(|error| JobError::Transient {
                message: format!("the run cannot be saved ({error})"),
                retry_after: None,
            })
    }

    async fn execute_step(
        &self,
        run: &mut Run,
        index: usize,
        step: &RenderedStep,
        earlier_starts: u32,
    ) -> Result<Value, StepFailure> {
        match step.action {
            Action::EmailSendSystem => {
                let email = NewSystemEmail {
                    workspace: run.workspace,
                    kind: "workflow".into(),
                    dedupe_key: Some(format!("run:{}:{index}", run.id)),
                    to: step.to.first().cloned(),
                    subject: step.subject.clone(),
                    text: step.body.clone(),
                    html: None,
                };
                let internal = |error: StoreError| internal_failure(&error);
                match self
                    .store
                    .queue_system_email(&email, DELIVER_SYSTEM_EMAIL)
                    .await
                    .map_err(internal)?
                {
                    Some(id) => Ok(json!({ "email_id": id })),
                    None => Ok(
                        json!({ "email_id": null, "note": "already queued by an earlier attempt" }),
                    ),
                }
            }
            Action::GmailSendEmail
            | Action::GmailCreateDraft
            | Action::GmailReply
            | Action::GmailAddLabel
            | Action::GmailRemoveLabel => self.gmail_step(run, index, step, earlier_starts).await,
            Action::HttpPost => self.http_post(run, index, step).await,
        }
    }

    /// POST the step's JSON body to its URL, with an `Idempotency-Key`
    /// that is the same on every attempt (the receiver dedupes with it: a
    /// POST whose answer was lost is sent again).
    async fn http_post(
        &self,
        run: &Run,
        index: usize,
        step: &RenderedStep,
    ) -> Result<Value, StepFailure> {
        let (Some(client), Some(url)) = (&self.outbound, &step.url) else {
            return Err(StepFailure::Final {
                code: "internal",
                message: "this server makes no outbound calls (http.post)".into(),
            });
        };
        let key = format!("run-{}.{index}", run.id);
        match client
            .post_json(url, &[("idempotency-key", key)], step.body.clone())
            .await
        {
            Ok(answer) if answer.is_success() => Ok(json!({ "status": answer.status })),
            Ok(answer) if answer.status == 408 || answer.status == 429 || answer.status >= 500 => {
                Err(StepFailure::Retry {
                    message: format!("{url} answered {}; trying again", answer.status),
                    retry_after: None,
                })
            }
            // The status only: the answer's body is the receiver's, not
            // something to show in a run.
            Ok(answer) => Err(StepFailure::Final {
                code: "http_error",
                message: format!("{url} answered {}", answer.status),
            }),
            Err(OutboundError::Refused(reason)) => Err(StepFailure::Final {
                code: "http_refused",
                message: reason,
            }),
            Err(OutboundError::NoAnswer(reason)) => Err(StepFailure::Retry {
                message: format!("{url}: {reason}; trying again"),
                retry_after: None,
            }),
        }
    }

    async fn gmail_step(
        &self,
        run: &mut Run,
        index: usize,
        step: &RenderedStep,
        earlier_starts: u32,
    ) -> Result<Value, StepFailure> {
        let workspace = run.workspace;
        let integration_id = step
            .integration_id
            .as_deref()
            .and_then(|id| IntegrationId::parse(id).ok())
            .ok_or_else(|| StepFailure::Final {
                code: "validation_failed",
                message: "the step names no valid integration".into(),
            })?;
        let gone = || StepFailure::Final {
            code: "not_found",
            message: "the Gmail connection this step uses no longer exists; edit the workflow"
                .into(),
        };
        // The mailbox, opened once for the step; its address is the From.
        let inbox = match Mailbox::open(&self.vault, workspace, integration_id).await {
            Ok(inbox) => inbox,
            Err(VaultError::NotFound) => return Err(gone()),
            Err(error) => {
                let integration = self.store.integration(workspace, integration_id).await;
                return Err(match integration {
                    Ok(integration) if integration.integration_type.is_mailbox() => {
                        self.gmail_failure(&integration, error)
                    }
                    Ok(_) | Err(StoreError::NotFound) => gone(),
                    Err(read) => internal_failure(&read),
                });
            }
        };
        let integration = inbox.integration();
        if step.action.is_label() {
            return self.label_step(run, &inbox, step).await;
        }
        let seed = run
            .steps
            .get(index)
            .and_then(|record| record.output.get(MESSAGE_ID_SEED))
            .and_then(Value::as_str)
            .and_then(|seed| Uuid::parse_str(seed).ok())
            .unwrap_or(run.id);
        let rfc822_id = format!("<run-{seed}.{index}@mailwright>");
        let is_draft = step.action == Action::GmailCreateDraft;

        // A previous attempt may have sent it: ask the mailbox before sending
        // again. (`run_steps` counts a step left `running` by versions
        // without the start count as an earlier start.)
        if earlier_starts > 0 {
            let found = if is_draft {
                inbox
                    .find_draft(&rfc822_id)
                    .await
                    .map(|draft| draft.map(|id| json!({"draft_id": id})))
            } else {
                inbox.find_message(&rfc822_id).await.map(|message| {
                    message.map(
                        |message| json!({"message_id": message.id, "thread_id": message.thread_id}),
                    )
                })
            };
            match found {
                Ok(Some(mut output)) => {
                    output["rfc822_message_id"] = json!(rfc822_id);
                    tracing::info!(run = %run.id, step = index, "found the message of an earlier attempt; not sending again");
                    return Ok(output);
                }
                Ok(None) => {}
                Err(error) => return Err(self.gmail_failure(integration, error)),
            }
        }
        // A reply answers a message: the one that started the run, or the
        // newest one of the thread the step names (read after the lookup
        // above: a reply that went out is found even if its original is
        // gone since).
        let (answered, reply) = if step.action == Action::GmailReply {
            let source = self.message_to_answer(run, &inbox, step).await?;
            let reply = ReplyTo::of(&source, step, &integration.email)?;
            (Some(source), Some(reply))
        } else {
            (None, None)
        };
        let raw = rfc822(&Outgoing {
            from: &integration.email,
            to: reply.as_ref().map_or(&step.to, |reply| &reply.to),
            cc: &step.cc,
            bcc: &step.bcc,
            subject: reply
                .as_ref()
                .map_or(step.subject.as_str(), |reply| reply.subject.as_str()),
            body: &step.body,
            message_id: &rfc822_id,
            in_reply_to: reply
                .as_ref()
                .and_then(|reply| reply.in_reply_to.as_deref()),
            references: reply
                .as_ref()
                .map_or(&[][..], |reply| reply.references.as_slice()),
            auto_replied: reply.is_some(),
        })
        .map_err(|problem| StepFailure::Final {
            code: "validation_failed",
            message: problem,
        })?;
        let sent = |message: domain::mail::MessageRef| json!({"message_id": message.id, "thread_id": message.thread_id});
        let result = match (&answered, is_draft) {
            (Some(source), _) => inbox.send_reply(&raw, &source.thread_id).await.map(sent),
            (None, true) => inbox
                .create_draft(&raw, None)
                .await
                .map(|draft| json!({"draft_id": draft.id})),
            (None, false) => inbox.send(&raw).await.map(sent),
        };
        match result {
            Ok(mut output) => {
                output["rfc822_message_id"] = json!(rfc822_id);
                Ok(output)
            }
            Err(error) => Err(self.gmail_failure(integration, error)),
        }
    }

    /// The message a `gmail.reply` step answers, read whole (its
    /// Message-ID, References, Reply-To and subject thread the reply).
    async fn message_to_answer(
        &self,
        run: &Run,
        inbox: &Mailbox,
        step: &RenderedStep,
    ) -> Result<domain::mail::Message, StepFailure> {
        let integration = inbox.integration();
        let gone = |what: &str| StepFailure::Final {
            code: "not_found",
            message: format!("{what} no longer exists in {}", integration.email),
        };
        let id = match &step.thread_id {
            Some(thread_id) => {
                let thread = match inbox.thread(thread_id).await {
                    Ok(thread) => thread,
                    Err(VaultError::Gone) => {
                        return Err(gone(&format!("Thread {thread_id}")));
                    }
                    Err(error) => return Err(self.gmail_failure(integration, error)),
                };
                // The newest message someone else wrote; with the step's own
                // `to`, else the newest (answering only one's own messages
                // would reply to oneself).
                let received = thread.messages.iter().filter(|m| !m.placement.draft);
                let theirs = received
                    .clone()
                    .filter(|m| !m.is_from(&integration.email))
                    .max_by_key(|m| m.received_at_millis);
                let newest = match theirs {
                    Some(message) => Some(message),
                    None if step.to.is_empty() => {
                        return Err(StepFailure::Final {
                            code: "no_reply_address",
                            message: format!(
                                "Thread {thread_id} holds only messages from {}; give the step a `to`",
                                integration.email
                            ),
                        });
                    }
                    None => received.max_by_key(|m| m.received_at_millis),
                };
                match newest {
                    Some(message) => message.id.clone(),
                    None => return Err(gone(&format!("Thread {thread_id}"))),
                }
            }
            None => triggering_message(&run.input).ok_or_else(|| StepFailure::Final {
                code: "validation_failed",
                message: "gmail.reply answers the message that started the run, and this run has none (no input.message.id); give the step a thread_id".into(),
            })?,
        };
        match inbox.message(&id).await {
            Ok(message) => Ok(message),
            Err(VaultError::Gone) => Err(gone(&format!("Message {id}"))),
            Err(error) => Err(self.gmail_failure(integration, error)),
        }
    }

    /// Add or remove a label (`gmail.add_label` creates a label the mailbox
    /// lacks). Repeating it changes nothing more, so a retry needs no lookup.
    async fn label_step(
        &self,
        run: &Run,
        inbox: &Mailbox,
        step: &RenderedStep,
    ) -> Result<Value, StepFailure> {
        let integration = inbox.integration();
        if integration.integration_type.provider() != "google" {
            return Err(StepFailure::Final {
                code: "validation_failed",
                message: format!(
                    "Labels are Gmail's: {} is not a Gmail mailbox, so this step has no label to add or remove.",
                    integration.email
                ),
            });
        }
        // Asked before any call: a refusal from Google would mark the whole
        // connection as missing a scope, pausing its auto-draft too.
        if !integration.allows(Capability::Labels) {
            let scope = Capability::Labels.preferred_scope().to_owned();
            return Err(self.gmail_failure(integration, VaultError::MissingScopes(vec![scope])));
        }
        let name = step.label.clone().unwrap_or_default();
        let message_id = match &step.message_id {
            Some(id) => id.clone(),
            None => triggering_message(&run.input).ok_or_else(|| StepFailure::Final {
                code: "validation_failed",
                message: format!(
                    "{} labels the message that started the run, and this run has none (no input.message.id); give the step a message_id",
                    step.action.as_str()
                ),
            })?,
        };
        let adding = step.action == Action::GmailAddLabel;
        let label_id = match inbox.label_id(&name, adding).await {
            Ok(Some(id)) => id,
            Ok(None) if !adding => {
                return Ok(json!({"message_id": message_id, "label": name, "changed": false}));
            }
            Ok(None) => {
                return Err(StepFailure::Final {
                    code: "provider_error",
                    message: format!("Gmail would not create the label “{name}”"),
                });
            }
            Err(error) => return Err(self.gmail_failure(integration, error)),
        };
        let (add, remove): (&[&str], &[&str]) = if adding {
            (&[label_id.as_str()], &[])
        } else {
            (&[], &[label_id.as_str()])
        };
        match inbox.change_labels(&message_id, add, remove).await {
            Ok(()) => Ok(json!({
                "message_id": message_id,
                "label": name,
                "label_id": label_id,
                "changed": true,
            })),
            Err(VaultError::Gone) => Err(StepFailure::Final {
                code: "not_found",
                message: format!(
                    "Message {message_id} no longer exists in {}",
                    integration.email
                ),
            }),
            Err(error) => Err(self.gmail_failure(integration, error)),
        }
    }

    fn gmail_failure(
        &self,
        integration: &store::integrations::Integration,
        error: VaultError,
    ) -> StepFailure {
        let facing = error.user_facing(Some(&integration.email));
        if let Some(retry_after) = facing.retry {
            return StepFailure::Retry {
                message: format!("{} Retrying.", facing.problem),
                retry_after,
            };
        }
        let connection = matches!(
            facing.code,
            "missing_scopes" | "needs_reauth" | "disconnected"
        );
        let message = if facing.remedy.is_empty() {
            facing.problem
        } else if connection {
            // Where to fix the connection, and that the run can then be
            // started again.
            format!(
                "{} Reconnect it at {}/api/integrations/{}/reconnect, then run again.",
                facing.problem, self.public_url, integration.id
            )
        } else {
            facing.message()
        };
        StepFailure::Final {
            code: facing.code,
            message,
        }
    }
}

/// The Gmail id of the message that started the run (`input.message.id`
/// of a new-mail trigger), if there is one.
fn triggering_message(input: &Value) -> Option<String> {
    let id = input.get("message")?.get("id")?.as_str()?;
    domain::workflows::check_provider_id(id).ok()?;
    Some(id.to_owned())
}

/// How a `gmail.reply` is addressed: to the step's recipients or else the
/// original's Reply-To/From; the step's subject or else `Re:` the original's.
struct ReplyTo {
    to: Vec<String>,
    subject: String,
    in_reply_to: Option<String>,
    references: Vec<String>,
}

impl ReplyTo {
    /// A reply to the sender of automatic mail (an auto-reply, a list, bulk
    /// mail, a no-reply address) or of the mailbox's own message is not
    /// sent: the step is skipped, saying why, so two programs never answer
    /// each other for ever. With its own `to`, the step replies anyway.
    fn of(
        source: &domain::mail::Message,
        step: &RenderedStep,
        owner: &str,
    ) -> Result<ReplyTo, StepFailure> {
        let (in_reply_to, references) = providers::google::message::threading(source);
        let subject = if step.subject.trim().is_empty() {
            domain::drafting::reply_subject(source.header("Subject").unwrap_or_default())
        } else {
            step.subject.clone()
        };
        let to = if step.to.is_empty() {
            use domain::mail::SkipReason;
            if let Some(reason) = domain::mail::skip_reason_for(source, owner).filter(|reason| {
                matches!(
                    reason,
                    SkipReason::OwnMessage
                        | SkipReason::AutoSubmitted
                        | SkipReason::MailingList
                        | SkipReason::Bulk
                        | SkipReason::NoReplySender
                )
            }) {
                return Err(StepFailure::Skip {
                    code: reason.code(),
                    message: format!(
                        "Not answered: {} (give the step a `to` to reply anyway)",
                        reason.describe().trim_end_matches('.')
                    ),
                });
            }
            let Some(headers) = providers::google::message::reply_headers(source) else {
                return Err(StepFailure::Final {
                    code: "no_reply_address",
                    message: format!(
                        "Message {} has no address to reply to; give the step a `to`",
                        source.id
                    ),
                });
            };
            vec![headers.to_header]
        } else {
            step.to.clone()
        };
        Ok(ReplyTo {
            to,
            subject,
            in_reply_to,
            references,
        })
    }
}

/// Templates rendering at once, each on a blocking thread: half the cores (at
/// least one), so tenants' templates never take every core, nor a thread of
/// the async runtime, from the requests of other workspaces.
static RENDERING: std::sync::LazyLock<tokio::sync::Semaphore> = std::sync::LazyLock::new(|| {
    let cores = std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get);
    tokio::sync::Semaphore::new((cores / 2).max(1))
});
/// Past the render's own deadline (which it checks as it goes), how long to
/// wait before failing the run without it.
const RENDER_GRACE: std::time::Duration = std::time::Duration::from_secs(1);

/// Fill a step's templates from the input (and the earlier steps'
/// `outputs`) off the async runtime, within the render budget
/// ([`domain::workflows::TEMPLATE_FUEL`] and the limits after it). A template
/// that exceeds it fails the run at once (`validation_failed`, naming the
/// field and the limit): rendering it again would exceed it again.
pub(super) async fn render_step(
    step: &Step,
    index: usize,
    input: &Value,
    outputs: &[Value],
) -> Result<RenderedStep, StepFailure> {
    let (step, input, outputs) = (step.clone(), input.clone(), outputs.to_vec());
    off_runtime(index, move |deadline| {
        step.render_after(index, &input, &outputs, deadline)
    })
    .await
}

/// Whether step `index` runs: its condition, judged like its templates.
async fn decide(
    step: &Step,
    index: usize,
    input: &Value,
    outputs: &[Value],
) -> Result<bool, StepFailure> {
    if step.condition.is_none() {
        return Ok(true);
    }
    let (step, input, outputs) = (step.clone(), input.clone(), outputs.to_vec());
    off_runtime(index, move |deadline| {
        step.condition_holds(index, &input, &outputs, deadline)
    })
    .await
}

/// Run template work on a blocking thread (at most as many at once as the
/// render semaphore allows), with the render time limit.
async fn off_runtime<T: Send + 'static>(
    index: usize,
    work: impl FnOnce(std::time::Instant) -> Result<T, domain::workflows::Invalid> + Send + 'static,
) -> Result<T, StepFailure> {
    let invalid = |invalid: domain::workflows::Invalid| StepFailure::Final {
        code: "validation_failed",
        message: invalid.in_words(),
    };
    // The permit goes with the thread: it is free again only when the render
    // has really stopped, even after this gave up waiting for it.
    let permit = RENDERING
        .acquire()
        .await
        .expect("the render semaphore is never closed");
    let limit = domain::workflows::RENDER_TIME_LIMIT;
    let rendering = tokio::task::spawn_blocking(move || {
        let _permit = permit;
        work(std::time::Instant::now() + limit)
    });
    match tokio::time::timeout(limit + RENDER_GRACE, rendering).await {
        Ok(Ok(rendered)) => rendered.map_err(invalid),
        Ok(Err(panicked)) => {
            tracing::error!(error = %panicked, step = index, "rendering a step's templates failed");
            Err(StepFailure::Final {
                code: "internal",
                message: "Mailwright could not render this step (details in the server log)".into(),
            })
        }
        Err(_) => Err(invalid(domain::workflows::Invalid {
            field: format!("steps[{index}]"),
            message: format!(
                "took longer than {} s to render, the most a step may take",
                limit.as_secs()
            ),
        })),
    }
}

/// A fault of our own (database, decryption): retried; its details go to the
/// log, since a step's error is shown to API clients.
fn internal_failure(error: &(dyn std::error::Error + 'static)) -> StepFailure {
    tracing::warn!(error = %error, "a workflow step hit an internal error; retrying");
    StepFailure::Retry {
        message: "Mailwright hit an internal error (details in the server log); retrying".into(),
        retry_after: None,
    }
}

/// The run a `workflow.run` job names, if its payload is well formed.
fn job_run(job: &ClaimedJob) -> Option<(domain::WorkspaceId, Uuid)> {
    let run_id = job
        .payload
        .get("run_id")
        .and_then(Value::as_str)
        .and_then(|id| Uuid::parse_str(id).ok())?;
    Some((job.workspace?, run_id))
}

impl JobHandler for RunWorkflow {
    fn kind(&self) -> &'static str {
        RUN_WORKFLOW
    }

    fn run<'a>(&'a self, job: &'a ClaimedJob) -> JobFuture<'a> {
        Box::pin(async move {
            let Some((workspace, run_id)) = job_run(job) else {
                return Err(JobError::Permanent("the job names no run".into()));
            };
            let started = self
                .store
                .begin_run_attempt(workspace, run_id)
                .await
                .map_err(|error| JobError::Transient {
                    message: format!("the run cannot be read ({error})"),
                    retry_after: None,
                })?;
            // Deleted with its workflow, or already ended.
            let Some(attempt) = started else {
                return Ok(Success::ToRecord);
            };
            let mut run = attempt.run;
            self.run_steps(
                job,
                &mut run,
                &attempt.workflow_steps,
                attempt.earlier_starts,
            )
            .await
        })
    }

    /// The run fails with its step's last error and why it stopped trying.
    fn give_up<'a>(&'a self, job: &'a ClaimedJob, reason: &'a str) -> GiveUpFuture<'a> {
        Box::pin(async move {
            let Some((workspace, run_id)) = job_run(job) else {
                return Ok(());
            };
            let mut run = match self.store.run(workspace, run_id).await {
                Ok(run) => run,
                Err(StoreError::NotFound) => return Ok(()),
                Err(error) => return Err(error),
            };
            if run.status.is_ended() {
                return Ok(());
            }
            let index = run.steps.first_unfinished();
            let last_error = index
                .and_then(|index| run.steps.get(index))
                .and_then(|record| record.error.clone());
            let error = match last_error {
                Some(last) => RunError::new(last.code, format!("{} ({reason})", last.message)),
                None => RunError::new(
                    "internal",
                    format!(
                        "Mailwright could not finish this run ({reason}); details are in the server log"
                    ),
                ),
            };
            if let Some(record) = index.and_then(|index| run.steps.get_mut(index)) {
                record.status = StepStatus::Failed;
                record.error = Some(error.clone());
            }
            self.store
                .update_run(
                    workspace,
                    run_id,
                    RunStatus::Failed,
                    &run.steps,
                    Some(&error),
                    None,
                )
                .await?;
            metrics::counter!(RUNS, "outcome" => "failed").increment(1);
            run.status = RunStatus::Failed;
            run.error = Some(error);
            self.announce_end(&run).await;
            Ok(())
        })
    }
}
