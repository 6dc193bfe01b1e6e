//! Workflows: the service behind `/api/workflows` and the workflow pages
//! (definitions checked and stored, webhook tokens, runs started and waited
//! for), the runner that executes a run ([`runner`]) and the scheduler that
//! starts scheduled runs ([`scheduler`]).

mod new_mail;
mod runner;
mod scheduler;

use std::sync::Arc;
use std::time::Duration;

use domain::explain::explain;
use domain::runs::{RunStatus, RunSteps};
use domain::workflows::{Definition, Invalid, Schedule, Step, Trigger};
use domain::{IntegrationId, WorkspaceId};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};
use store::jobs::NewJob;
use store::{Store, StoreError};
use uuid::Uuid;

pub use new_mail::{NEW_MAIL, StartNewMailRuns, new_mail_job};
pub use runner::RunWorkflow;
pub use scheduler::Scheduler;
pub use store::workflows::{Run, Workflow};

use crate::error::ServiceError;
use crate::keyring::Keyring;
use crate::secrets;

pub const RUN_WORKFLOW: &str = store::workflows::RUN_JOB_KIND;
pub const RUNS: &str = "mailwright_workflow_runs_total";
pub const STEP_SECONDS: &str = "mailwright_workflow_step_duration_seconds";

/// How many runs of a workflow its history shows.
pub const RUN_HISTORY: i64 = 100;

/// How often a waiting caller reads its run (a run another process ended is
/// not announced in this one).
const OTHER_PROCESS_POLL: Duration = Duration::from_millis(100);

/// The associated data that binds a webhook token ciphertext to its workflow.
pub fn webhook_context(workflow: Uuid) -> String {
    format!("workflows:{workflow}:webhook")
}

/// A workflow or run id as a client gives it; a malformed one names nothing.
pub fn parse_id(text: &str) -> Result<Uuid, ServiceError> {
    Uuid::try_parse(text).map_err(|_| ServiceError::NotFound)
}

/// Defines, starts and reports workflows, for one workspace per call.
pub struct Workflows {
    store: Store,
    keyring: Arc<Keyring>,
    /// Syncs the mailboxes new-mail triggers wait on (none: such
    /// workflows cannot be saved).
    mailboxes: Option<Arc<crate::autodraft::AutoDraft>>,
}

impl Workflows {
    pub fn new(store: Store, keyring: Arc<Keyring>) -> Workflows {
        Workflows {
            store,
            keyring,
            mailboxes: None,
        }
    }

    /// Let new-mail triggers sync their mailboxes through auto-draft's sync
    /// (one sync per mailbox feeds both).
    pub fn with_mailboxes(mut self, mailboxes: Arc<crate::autodraft::AutoDraft>) -> Workflows {
        self.mailboxes = Some(mailboxes);
        self
    }

    pub async fn list(&self, workspace: WorkspaceId) -> Result<Vec<Workflow>, ServiceError> {
        Ok(self.store.workflows(workspace).await?)
    }

    pub async fn get(&self, workspace: WorkspaceId, id: Uuid) -> Result<Workflow, ServiceError> {
        Ok(self.store.workflow(workspace, id).await?)
    }

    /// Check `definition` and store it as a new workflow of `workspace`.
    pub async fn create(
        &self,
        workspace: WorkspaceId,
        definition: Definition,
    ) -> Result<Workflow, ServiceError> {
        self.validate(workspace, &definition).await?;
        let sync = self.prepare_sync(workspace, &definition).await?;
        let workflow = self.assemble(workspace, Uuid::now_v7(), definition, None);
        self.store.create_workflow(&workflow).await?;
        self.start_sync(sync, workflow.id).await?;
        Ok(workflow)
    }

    /// For an enabled new-mail trigger: check its mailbox can be read and,
    /// when nothing syncs it yet, read where it is (before the workflow is
    /// saved, so a mailbox that cannot be read saves nothing).
    async fn prepare_sync(
        &self,
        workspace: WorkspaceId,
        definition: &Definition,
    ) -> Result<Option<crate::autodraft::WorkflowSync>, ServiceError> {
        let Some(id) = definition.trigger.watched_integration() else {
            return Ok(None);
        };
        let Some(mailboxes) = &self.mailboxes else {
            return Err(ServiceError::Conflict(
                "This server reads no mailboxes, so a workflow cannot start on new mail.".into(),
            ));
        };
        if !definition.enabled {
            return Ok(None);
        }
        let id = IntegrationId::parse(id).map_err(|_| ServiceError::NotFound)?;
        mailboxes.prepare_workflow_sync(workspace, id).await
    }

    async fn start_sync(
        &self,
        sync: Option<crate::autodraft::WorkflowSync>,
        workflow: Uuid,
    ) -> Result<(), ServiceError> {
        match (sync, &self.mailboxes) {
            (Some(sync), Some(mailboxes)) => {
                mailboxes.start_workflow_sync(sync, Some(workflow)).await
            }
            _ => Ok(()),
        }
    }

    /// Check `definition` and make it the definition of `previous` (its
    /// webhook token is kept).
    pub async fn replace(
        &self,
        previous: &Workflow,
        definition: Definition,
    ) -> Result<Workflow, ServiceError> {
        self.validate(previous.workspace, &definition).await?;
        let sync = self.prepare_sync(previous.workspace, &definition).await?;
        let workflow = self.assemble(previous.workspace, previous.id, definition, Some(previous));
        self.store.update_workflow(&workflow).await?;
        self.start_sync(sync, workflow.id).await?;
        Ok(workflow)
    }

    /// Delete a workflow and its runs: a queued or retrying run never sends.
    pub async fn delete(&self, workspace: WorkspaceId, id: Uuid) -> Result<(), ServiceError> {
        Ok(self.store.delete_workflow(workspace, id).await?)
    }

    /// Where a webhook-triggered workflow takes its input, relative to the
    /// public URL (the token is part of it).
    pub fn webhook_path(&self, workflow: &Workflow) -> Option<String> {
        let token = self.webhook_token(workflow)?;
        Some(format!(
            "/api/hooks/{}?token={}",
            workflow.id,
            token.expose_secret()
        ))
    }

    fn webhook_token(&self, workflow: &Workflow) -> Option<SecretString> {
        let sealed = workflow.webhook_secret.as_ref()?;
        self.keyring
            .open_secret(sealed, &webhook_context(workflow.id))
            .ok()
    }

    /// Everything wrong with `definition` in `workspace`, by field: the
    /// definition's own rules, then each Gmail step's connection.
    async fn validate(
        &self,
        workspace: WorkspaceId,
        definition: &Definition,
    ) -> Result<(), ServiceError> {
        let mut problems = definition.validate();
        let trigger = definition
            .trigger
            .watched_integration()
            .map(|id| ("trigger.integration_id".to_owned(), id));
        let steps = definition
            .steps
            .iter()
            .enumerate()
            .filter_map(|(index, step)| {
                let id = step
                    .integration_id
                    .as_deref()
                    .filter(|_| step.action.uses_gmail())?;
                Some((format!("steps[{index}].integration_id"), id))
            });
        for (field, id) in trigger.into_iter().chain(steps) {
            let problem = match IntegrationId::parse(id) {
                Err(_) => Some("is not an integration id"),
                Ok(id) => match self.store.integration(workspace, id).await {
                    Ok(integration) if integration.integration_type.is_mailbox() => None,
                    Ok(_) => Some("is not a mailbox connection (Gmail or IMAP)"),
                    Err(StoreError::NotFound) => {
                        Some("no mailbox connection with this id in this workspace")
                    }
                    Err(other) => return Err(other.into()),
                },
            };
            problems.extend(problem.map(|message| Invalid::new(field, message)));
        }
        if problems.is_empty() {
            Ok(())
        } else {
            // The definition's own problems first, in field order as found.
            problems.sort_by_key(|problem| field_rank(&problem.field));
            Err(ServiceError::Invalid(problems))
        }
    }

    /// The stored workflow for a checked definition, keeping (or making)
    /// the webhook token.
    fn assemble(
        &self,
        workspace: WorkspaceId,
        id: Uuid,
        definition: Definition,
        previous: Option<&Workflow>,
    ) -> Workflow {
        let webhook_secret = match definition.trigger {
            Trigger::Webhook => previous
                .and_then(|workflow| workflow.webhook_secret.clone())
                .or_else(|| {
                    let token = secrets::random_token(32);
                    Some(self.keyring.seal(token.as_bytes(), &webhook_context(id)))
                }),
            _ => None,
        };
        let now = store::now();
        let next_run_at = match &definition.trigger {
            Trigger::Schedule { cron } => Schedule::parse(cron)
                .ok()
                .and_then(|schedule| schedule.next_after(now)),
            _ => None,
        };
        Workflow {
            id,
            workspace,
            name: definition.name.trim().to_owned(),
            enabled: definition.enabled,
            trigger: serde_json::to_value(&definition.trigger).unwrap_or(Value::Null),
            steps: serde_json::to_value(&definition.steps).unwrap_or(Value::Null),
            webhook_secret,
            next_run_at,
            notify_on_failure: definition.notify_on_failure,
            created_at: previous.map_or(now, |workflow| workflow.created_at),
            updated_at: now,
        }
    }

    /// Start a manual run of workflow `id` (read just before the run is
    /// written; a disabled workflow starts nothing). The same
    /// idempotency key on the same workflow returns the run it started.
    pub async fn start(
        &self,
        workspace: WorkspaceId,
        id: Uuid,
        input: Value,
        idempotency_key: Option<&str>,
    ) -> Result<Run, ServiceError> {
        let created = self
            .store
            .create_run_of_workflow(workspace, id, idempotency_key, |workflow| {
                if workflow.enabled {
                    new_run(workflow, input, "manual").map(Some)
                } else {
                    Ok(None)
                }
            })
            .await?;
        match created {
            Some((run, _)) => Ok(run),
            None => Err(disabled()),
        }
    }

    /// Queue a run of `workflow` with `input`, started by `trigger`. The
    /// same idempotency key on the same workflow returns the run it started
    /// (`false`: not new).
    pub async fn execute(
        &self,
        workflow: &Workflow,
        input: Value,
        trigger: &str,
        idempotency_key: Option<&str>,
    ) -> Result<(Run, bool), StoreError> {
        let (run, job) = new_run(workflow, input, trigger)?;
        self.store
            .create_run(&run, idempotency_key, Some(&job))
            .await
    }

    /// The webhook-triggered workflow `id`, if `token` is its webhook token.
    /// A wrong token and an unknown workflow answer alike (not found).
    pub async fn webhook_workflow(&self, id: &str, token: &str) -> Result<Workflow, ServiceError> {
        let workflow = self.store.workflow_for_webhook(parse_id(id)?).await?;
        let matches = self.webhook_token(&workflow).is_some_and(|expected| {
            secrets::constant_time_eq(expected.expose_secret().as_bytes(), token.as_bytes())
        });
        if matches {
            Ok(workflow)
        } else {
            Err(ServiceError::NotFound)
        }
    }

    /// Start a run of `workflow` (found by [`Workflows::webhook_workflow`])
    /// with the webhook's body as input.
    pub async fn start_from_webhook(
        &self,
        workflow: &Workflow,
        input: Value,
        idempotency_key: Option<&str>,
    ) -> Result<Run, ServiceError> {
        if !workflow.enabled {
            return Err(ServiceError::Conflict("This workflow is disabled.".into()));
        }
        let (run, _) = self
            .execute(workflow, input, "webhook", idempotency_key)
            .await?;
        Ok(run)
    }

    /// The run once it has ended, or as it is after `limit`. Woken by this
    /// process's workers when they end it; read again every
    /// [`OTHER_PROCESS_POLL`] in case another process's worker ran it.
    pub async fn wait_for_end(&self, run: Run, limit: Duration) -> Result<Run, ServiceError> {
        if run.status.is_ended() {
            return Ok(run);
        }
        // Listen first, then read: an end recorded in between is not missed.
        let mut run_ends = self.store.run_ends();
        let give_up = tokio::time::Instant::now() + limit;
        loop {
            let run = self.store.run(run.workspace, run.id).await?;
            let now = tokio::time::Instant::now();
            if run.status.is_ended() || now >= give_up {
                return Ok(run);
            }
            let _ = tokio::time::timeout_at(
                give_up.min(now + OTHER_PROCESS_POLL),
                end_of(&mut run_ends, run.id),
            )
            .await;
        }
    }

    /// The parts of `workflow` (its new-mail trigger, its steps) whose
    /// connection cannot be used now, each with what is wrong and what fixes
    /// it: shown before anyone runs the workflow, not learnt when it sends.
    pub async fn connection_problems(
        &self,
        workflow: &Workflow,
    ) -> Result<Vec<ConnectionProblem>, ServiceError> {
        let steps: Vec<Step> = serde_json::from_value(workflow.steps.clone()).unwrap_or_default();
        let trigger: Option<Trigger> = serde_json::from_value(workflow.trigger.clone()).ok();
        let watched = trigger
            .as_ref()
            .and_then(Trigger::watched_integration)
            .map(|id| ("The trigger cannot read new mail".to_owned(), id, false));
        let used = steps.iter().enumerate().filter_map(|(index, step)| {
            let id = step.integration_id.as_deref()?;
            Some((
                format!("Step {} cannot run", index + 1),
                id,
                step.action.is_label(),
            ))
        });
        let mut problems = Vec::new();
        for (part, id, labels) in watched.into_iter().chain(used) {
            let Ok(id) = IntegrationId::parse(id) else {
                continue;
            };
            let problem = match self.store.integration(workflow.workspace, id).await {
                Ok(integration) => {
                    let mut missing = integration
                        .granted_scopes
                        .missing_for(integration.integration_type);
                    // Label steps need a permission connections do not ask
                    // for by default.
                    let capability = domain::scopes::Capability::Labels;
                    if labels
                        && integration.integration_type.provider() == "google"
                        && !integration.allows(capability)
                    {
                        missing.push(capability.preferred_scope().to_owned());
                    }
                    let status = match integration.status {
                        domain::scopes::IntegrationStatus::Connected if !missing.is_empty() => {
                            domain::scopes::IntegrationStatus::MissingScopes
                        }
                        status => status,
                    };
                    let explanation = explain(status, Some(&integration.email), &missing);
                    if !explanation.needs_reconnect() {
                        continue;
                    }
                    ConnectionProblem {
                        part,
                        message: explanation.message(),
                        reconnect: Some(id),
                    }
                }
                Err(StoreError::NotFound) => ConnectionProblem {
                    part,
                    message: "The connection it uses no longer exists; edit the workflow.".into(),
                    reconnect: None,
                },
                Err(other) => return Err(other.into()),
            };
            problems.push(problem);
        }
        Ok(problems)
    }

    /// The newest `limit` runs of workflow `id`.
    pub async fn runs(
        &self,
        workspace: WorkspaceId,
        id: Uuid,
        limit: i64,
    ) -> Result<Vec<Run>, ServiceError> {
        let workflow = self.store.workflow(workspace, id).await?;
        Ok(self.store.runs(workspace, workflow.id, limit).await?)
    }

    pub async fn run(&self, workspace: WorkspaceId, id: Uuid) -> Result<Run, ServiceError> {
        Ok(self.store.run(workspace, id).await?)
    }

    /// What a run of `workflow` with `input` would fail on at once (a
    /// template that does not render, an address that is empty or not an
    /// address), in the form's words; said before the run starts, so the
    /// UI's run form can ask for a better input instead of making a failed
    /// run.
    pub async fn check_input(&self, workflow: &Workflow, input: &Value) -> Result<(), String> {
        let steps: Vec<Step> = serde_json::from_value(workflow.steps.clone())
            .map_err(|_| "The workflow's steps cannot be read; edit and save it.".to_owned())?;
        for (index, step) in steps.iter().enumerate() {
            // What uses an earlier step's output, or runs only on a
            // condition, is judged when the run gets there.
            let text = serde_json::to_string(step).unwrap_or_default();
            if step.condition.is_some() || text.contains("steps") {
                continue;
            }
            if let Err(
                runner::StepFailure::Final { message, .. }
                | runner::StepFailure::Retry { message, .. },
            ) = runner::render_step(step, index, input, &[]).await
            {
                return Err(message);
            }
        }
        Ok(())
    }

    /// Re-run failed run `id` from its first failed step: a new run, linked
    /// to it, with the same input, that keeps the steps it already did (so
    /// nothing they sent is sent again) and runs the rest as the workflow
    /// now defines them. Asked twice, it answers the same re-run.
    pub async fn rerun(&self, workspace: WorkspaceId, id: Uuid) -> Result<Run, ServiceError> {
        let failed = self.store.run(workspace, id).await?;
        if failed.status != RunStatus::Failed {
            return Err(ServiceError::Conflict(format!(
                "Only a failed run can be re-run; this one is {}.",
                failed.status.as_str()
            )));
        }
        let workflow = match self.store.workflow(workspace, failed.workflow_id).await {
            Ok(workflow) => workflow,
            Err(StoreError::NotFound) => {
                return Err(ServiceError::Conflict(
                    "This run's workflow was deleted, so it cannot be re-run.".into(),
                ));
            }
            Err(error) => return Err(error.into()),
        };
        if !workflow.enabled {
            return Err(disabled());
        }
        let (mut run, job) = new_run(&workflow, failed.input.clone(), "rerun")?;
        let done = failed
            .steps
            .iter()
            .take_while(|record| record.status.is_done())
            .count();
        for index in 0..done {
            let (Some(kept), Some(now)) = (failed.steps.get(index), run.steps.get(index)) else {
                return Err(ServiceError::Conflict(format!(
                    "The workflow has fewer steps than this run had done ({done}); run it anew instead."
                )));
            };
            if kept.definition != now.definition {
                return Err(ServiceError::Conflict(format!(
                    "Step {} changed since this run did it, so its result cannot be kept; run the workflow anew instead.",
                    index + 1
                )));
            }
            if let Some(record) = run.steps.get_mut(index) {
                *record = kept.clone();
            }
        }
        // The step that failed may have reached Gmail before it failed (an
        // answer lost, then a refusal): the re-run looks its message up
        // under the Message-ID the failed run used before sending again.
        if let (Some(record), Some(before)) = (run.steps.get_mut(done), failed.steps.get(done))
            && record.action.uses_gmail()
        {
            let seed = before
                .output
                .get(runner::MESSAGE_ID_SEED)
                .cloned()
                .unwrap_or_else(|| json!(failed.id));
            record.output = json!({ runner::MESSAGE_ID_SEED: seed });
        }
        run.rerun_of = Some(failed.id);
        let key = format!("mailwright:rerun:{}", failed.id);
        let (run, _) = self.store.create_run(&run, Some(&key), Some(&job)).await?;
        // A second step: the hot path's insert does not take the link. A
        // repeated request finds the run by its key and links it again.
        self.store
            .set_rerun_of(workspace, run.id, failed.id)
            .await?;
        Ok(Run {
            rerun_of: Some(failed.id),
            ..run
        })
    }

    /// The workspace's newest `limit` runs, of any workflow.
    pub async fn recent_runs(
        &self,
        workspace: WorkspaceId,
        limit: i64,
    ) -> Result<Vec<Run>, ServiceError> {
        Ok(self.store.recent_runs(workspace, limit).await?)
    }

    /// How many of the workspace's runs started since `since` have failed.
    pub async fn failed_runs_since(
        &self,
        workspace: WorkspaceId,
        since: chrono::DateTime<chrono::Utc>,
    ) -> Result<i64, ServiceError> {
        Ok(self.store.failed_runs_since(workspace, since).await?)
    }

    /// Workflow `id`'s runs per UTC day and status from `since` on, with
    /// how long the finished ones took.
    pub async fn run_days(
        &self,
        workspace: WorkspaceId,
        id: Uuid,
        since: chrono::DateTime<chrono::Utc>,
    ) -> Result<Vec<store::daily::DayCount>, ServiceError> {
        Ok(self.store.run_days(workspace, id, since).await?)
    }
}

/// A part of a workflow whose connection cannot be used now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionProblem {
    /// "Step 2 cannot run", "The trigger cannot read new mail".
    pub part: String,
    /// What is wrong and what fixes it.
    pub message: String,
    /// The connection whose reconnect fixes it (none: it is gone).
    pub reconnect: Option<IntegrationId>,
}

fn disabled() -> ServiceError {
    ServiceError::Conflict("This workflow is disabled; enable it to run it.".into())
}

/// Problems of the definition come in the order the API has always listed
/// them: name, trigger, steps, then each step's fields in step order.
fn field_rank(field: &str) -> (u8, usize) {
    if field == "name" {
        (0, 0)
    } else if field.starts_with("trigger") {
        (1, 0)
    } else if field == "steps" {
        (2, 0)
    } else {
        let index = field
            .strip_prefix("steps[")
            .and_then(|rest| rest.split(']').next())
            .and_then(|index| index.parse().ok())
            .unwrap_or(usize::MAX);
        (3, index)
    }
}

/// Completes when run `id` ended in this process, or when some ends were
/// missed (the receiver lagged) and the run should be read.
async fn end_of(run_ends: &mut tokio::sync::broadcast::Receiver<Uuid>, id: Uuid) {
    use tokio::sync::broadcast::error::RecvError;
    loop {
        match run_ends.recv().await {
            Ok(ended) if ended == id => return,
            Ok(_) => {}
            Err(RecvError::Lagged(_)) => return,
            // The store outlives every caller; until then, the poll.
            Err(RecvError::Closed) => std::future::pending::<()>().await,
        }
    }
}

/// A queued run of `workflow` (every step pending, each with a copy of its
/// definition) and the job that runs it.
fn new_run(workflow: &Workflow, input: Value, trigger: &str) -> Result<(Run, NewJob), StoreError> {
    // Stored steps were validated when the workflow was saved.
    let steps: Vec<Step> = serde_json::from_value(workflow.steps.clone()).map_err(|error| {
        StoreError::Other(format!("workflow {} has unreadable steps: {error}", workflow.id).into())
    })?;
    let run = Run {
        id: Uuid::now_v7(),
        workspace: workflow.workspace,
        workflow_id: workflow.id,
        status: RunStatus::Queued,
        trigger: trigger.into(),
        input,
        steps: RunSteps::pending(&steps),
        error: None,
        next_attempt_at: None,
        created_at: store::now(),
        finished_at: None,
        rerun_of: None,
    };
    let job = NewJob::new(RUN_WORKFLOW, json!({ "run_id": run.id }))
        .in_workspace(run.workspace)
        .dedupe_key(format!("run:{}", run.id));
    Ok((run, job))
}
