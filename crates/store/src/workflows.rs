//! Workflows and their runs.

use chrono::{DateTime, Utc};
use domain::runs::{RunError, RunStatus, RunSteps};
use domain::{JobId, WorkspaceId};
use serde_json::Value;
use sqlx::types::Json;
use uuid::Uuid;

use crate::integrations::Sealed;
use crate::jobs::{COMPLETE_WORKSPACE_JOB_SQL, ClaimedJob, NewJob};
use crate::{Backend, Pool, Store, StoreError, across_workspaces, in_workspace, now, on_pool};

#[derive(Debug, Clone, PartialEq)]
pub struct Workflow {
    pub id: Uuid,
    pub workspace: WorkspaceId,
    pub name: String,
    pub enabled: bool,
    pub trigger: Value,
    pub steps: Value,
    pub webhook_secret: Option<Sealed>,
    /// Scheduled workflows: when the next run is due.
    pub next_run_at: Option<DateTime<Utc>>,
    /// Email the workspace's owner when a run fails for good.
    pub notify_on_failure: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
struct WorkflowRow {
    id: Uuid,
    workspace_id: Uuid,
    name: String,
    enabled: bool,
    trigger_spec: Json<Value>,
    steps: Json<Value>,
    webhook_key_id: Option<String>,
    webhook_secret: Option<Vec<u8>>,
    next_run_at: Option<DateTime<Utc>>,
    notify_on_failure: bool,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl From<WorkflowRow> for Workflow {
    fn from(row: WorkflowRow) -> Self {
        Workflow {
            id: row.id,
            workspace: WorkspaceId::from_uuid(row.workspace_id),
            name: row.name,
            enabled: row.enabled,
            trigger: row.trigger_spec.0,
            steps: row.steps.0,
            webhook_secret: match (row.webhook_key_id, row.webhook_secret) {
                (Some(key_id), Some(bytes)) => Some(Sealed { key_id, bytes }),
                _ => None,
            },
            next_run_at: row.next_run_at,
            notify_on_failure: row.notify_on_failure,
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }
}

/// The mailbox a new-mail trigger watches (its `integration_id`), kept in
/// its own column so mailbox syncs can ask "is any enabled workflow
/// watching?" with an index.
fn watched_integration(trigger: &Value) -> Option<Uuid> {
    let trigger: domain::workflows::Trigger = serde_json::from_value(trigger.clone()).ok()?;
    Uuid::parse_str(trigger.watched_integration()?).ok()
}

const WORKFLOW_COLUMNS: &str = "id, workspace_id, name, enabled, trigger_spec, steps, webhook_key_id, webhook_secret, \
     next_run_at, notify_on_failure, created_at, updated_at";

#[derive(Debug, Clone, PartialEq)]
pub struct Run {
    pub id: Uuid,
    pub workspace: WorkspaceId,
    pub workflow_id: Uuid,
    pub status: RunStatus,
    pub trigger: String,
    pub input: Value,
    /// Each step's record, with the definition the run executes.
    pub steps: RunSteps,
    pub error: Option<RunError>,
    /// While `Retrying`: when the next attempt is due.
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    /// A re-run: the failed run it re-runs.
    pub rerun_of: Option<Uuid>,
}

/// A run's row.
#[derive(sqlx::FromRow)]
pub(crate) struct RunRow {
    id: Uuid,
    workspace_id: Uuid,
    workflow_id: Uuid,
    status: String,
    trigger_kind: String,
    input: Json<Value>,
    steps: Json<Value>,
    error_code: Option<String>,
    error_message: Option<String>,
    /// Absent from the rows of the PostgreSQL functions that predate it.
    #[sqlx(default)]
    next_attempt_at: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
    finished_at: Option<DateTime<Utc>>,
    /// Absent from the rows of the PostgreSQL functions (which predate it).
    #[sqlx(default)]
    rerun_of: Option<Uuid>,
}

impl TryFrom<RunRow> for Run {
    type Error = StoreError;

    fn try_from(row: RunRow) -> Result<Self, StoreError> {
        let corrupt = |what: &str| {
            StoreError::Other(format!("run {} has an unreadable {what}", row.id).into())
        };
        let status = RunStatus::parse(&row.status).ok_or_else(|| corrupt("status"))?;
        let steps: RunSteps =
            serde_json::from_value(row.steps.0.clone()).map_err(|_| corrupt("step record"))?;
        Ok(Run {
            id: row.id,
            workspace: WorkspaceId::from_uuid(row.workspace_id),
            workflow_id: row.workflow_id,
            status,
            trigger: row.trigger_kind,
            input: row.input.0,
            steps,
            error: row
                .error_code
                .zip(row.error_message)
                .map(|(code, message)| RunError { code, message }),
            next_attempt_at: row
                .next_attempt_at
                .filter(|_| status == RunStatus::Retrying),
            created_at: row.created_at,
            finished_at: row.finished_at,
            rerun_of: row.rerun_of,
        })
    }
}

/// A run just started, with its workflow's steps: a row of
/// `begin_run_attempt`.
#[derive(sqlx::FromRow)]
struct StartedRunRow {
    #[sqlx(flatten)]
    run: RunRow,
    starts: i32,
    workflow_steps: Option<Json<Value>>,
}

impl StartedRunRow {
    /// `None` when the workflow is gone (its runs go with it).
    fn into_attempt(self) -> Result<Option<RunAttempt>, StoreError> {
        let Some(workflow_steps) = self.workflow_steps else {
            return Ok(None);
        };
        Ok(Some(RunAttempt {
            earlier_starts: u32::try_from(self.starts - 1).unwrap_or(0),
            workflow_steps: workflow_steps.0,
            run: Run::try_from(self.run)?,
        }))
    }
}

/// A run a worker has just started, with its workflow's current steps.
#[derive(Debug, Clone)]
pub struct RunAttempt {
    pub run: Run,
    /// The workflow's steps now. A run executes its own copy
    /// ([`RunSteps::definition`]); these only stand in for runs queued by
    /// versions that kept no copy.
    pub workflow_steps: Value,
    /// Starts before this one: when not zero, an earlier attempt may have
    /// reached Gmail without recording it.
    pub earlier_starts: u32,
}

/// The kind of the job that executes a run.
pub const RUN_JOB_KIND: &str = "workflow.run";

const RUN_COLUMNS: &str = "id, workspace_id, workflow_id, status, trigger_kind, input, steps, error_code, error_message, created_at, finished_at";
/// [`RUN_COLUMNS`] and the columns added since the PostgreSQL functions that
/// return runs were written (what reads of the table select).
pub(crate) const RUN_VIEW_COLUMNS: &str = "id, workspace_id, workflow_id, status, trigger_kind, input, steps, error_code, error_message, created_at, finished_at, next_attempt_at, rerun_of";

fn existing_run_sql() -> String {
    format!(
        "SELECT {RUN_VIEW_COLUMNS} FROM workflow_runs WHERE workspace_id = $1 AND workflow_id = $2 AND idempotency_key = $3"
    )
}

/// SQLite's run insert for [`Store::create_run`]: the run (only while its
/// workflow exists; nothing when its idempotency key was used before),
/// returning a row when inserted; with `with_job`, then its job when the
/// run was inserted (`changes()` is the run insert's count). One trip to
/// the connection's thread for both, since the write lock is held from
/// `BEGIN IMMEDIATE` to `COMMIT` and every other writer waits meanwhile.
/// Binds: the run's nine columns, then the job's eight (as `insert_job!`).
fn insert_run_sql(with_job: bool) -> String {
    let run = "INSERT INTO workflow_runs (id, workspace_id, workflow_id, status, trigger_kind, input, steps, \
                                       idempotency_key, created_at) \
         SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9 \
         WHERE EXISTS (SELECT 1 FROM workflows WHERE workspace_id = $2 AND id = $3) \
         ON CONFLICT (workflow_id, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING \
         RETURNING 1";
    if with_job {
        format!(
            "{run}; {} SELECT $10, $11, $12, $13, 'queued', 0, $14, $15, $16, $17, $17 WHERE changes() = 1 {}",
            crate::jobs::INSERT_JOB_COLUMNS,
            crate::jobs::ON_UNFINISHED_DEDUPE_KEY,
        )
    } else {
        run.to_owned()
    }
}

impl Store {
    pub async fn create_workflow(&self, workflow: &Workflow) -> Result<(), StoreError> {
        in_workspace!(self, workflow.workspace, conn => {
            sqlx::query(
                "INSERT INTO workflows (id, workspace_id, name, enabled, trigger_spec, steps, webhook_key_id, \
                                        webhook_secret, created_at, updated_at, next_run_at, notify_on_failure, \
                                        watched_integration_id) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
            )
            .bind(workflow.id)
            .bind(workflow.workspace.as_uuid())
            .bind(&workflow.name)
            .bind(workflow.enabled)
            .bind(Json(&workflow.trigger))
            .bind(Json(&workflow.steps))
            .bind(workflow.webhook_secret.as_ref().map(|sealed| sealed.key_id.clone()))
            .bind(workflow.webhook_secret.as_ref().map(|sealed| sealed.bytes.clone()))
            .bind(workflow.created_at)
            .bind(workflow.updated_at)
            .bind(workflow.next_run_at)
            .bind(workflow.notify_on_failure)
            .bind(watched_integration(&workflow.trigger))
            .execute(&mut *conn)
            .await?;
        });
        Ok(())
    }

    /// Replace name, enabled, trigger, steps and webhook secret.
    pub async fn update_workflow(&self, workflow: &Workflow) -> Result<(), StoreError> {
        let updated = in_workspace!(self, workflow.workspace, conn => {
            sqlx::query(
                "UPDATE workflows SET name = $1, enabled = $2, trigger_spec = $3, steps = $4, webhook_key_id = $5, \
                     webhook_secret = $6, updated_at = $7, next_run_at = $10, notify_on_failure = $11, \
                     watched_integration_id = $12 \
                 WHERE workspace_id = $8 AND id = $9",
            )
            .bind(&workflow.name)
            .bind(workflow.enabled)
            .bind(Json(&workflow.trigger))
            .bind(Json(&workflow.steps))
            .bind(workflow.webhook_secret.as_ref().map(|sealed| sealed.key_id.clone()))
            .bind(workflow.webhook_secret.as_ref().map(|sealed| sealed.bytes.clone()))
            .bind(workflow.updated_at)
            .bind(workflow.workspace.as_uuid())
            .bind(workflow.id)
            .bind(workflow.next_run_at)
            .bind(workflow.notify_on_failure)
            .bind(watched_integration(&workflow.trigger))
            .execute(&mut *conn)
            .await?
            .rows_affected()
        });
        if updated == 1 {
            Ok(())
        } else {
            Err(StoreError::NotFound)
        }
    }

    /// One round trip on PostgreSQL (a function that scopes it, in the baseline migration).
    pub async fn workflow(&self, workspace: WorkspaceId, id: Uuid) -> Result<Workflow, StoreError> {
        let sql = match self.backend() {
            Backend::Postgres => {
                format!("SELECT {WORKFLOW_COLUMNS} FROM mailwright_workflow($1, $2)")
            }
            Backend::Sqlite => {
                format!(
                    "SELECT {WORKFLOW_COLUMNS} FROM workflows WHERE workspace_id = $1 AND id = $2"
                )
            }
        };
        let row: Option<WorkflowRow> = on_pool!(self, pool => {
            sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str()))
                .bind(workspace.as_uuid())
                .bind(id)
                .fetch_optional(pool)
                .await?
        });
        Ok(row.ok_or(StoreError::NotFound)?.into())
    }

    /// A workflow by id in any workspace: for the webhook, whose token
    /// (checked by the caller) is what authenticates it.
    pub async fn workflow_for_webhook(&self, id: Uuid) -> Result<Workflow, StoreError> {
        let sql = format!("SELECT {WORKFLOW_COLUMNS} FROM workflows WHERE id = $1");
        let row: Option<WorkflowRow> = across_workspaces!(self, conn => {
            sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str())).bind(id).fetch_optional(&mut *conn).await?
        });
        Ok(row.ok_or(StoreError::NotFound)?.into())
    }

    pub async fn workflows(&self, workspace: WorkspaceId) -> Result<Vec<Workflow>, StoreError> {
        let sql = format!(
            "SELECT {WORKFLOW_COLUMNS} FROM workflows WHERE workspace_id = $1 ORDER BY created_at"
        );
        let rows: Vec<WorkflowRow> = in_workspace!(self, workspace, conn => {
            sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str())).bind(workspace.as_uuid()).fetch_all(&mut *conn).await?
        });
        Ok(rows.into_iter().map(Workflow::from).collect())
    }

    /// Enabled scheduled workflows whose next run is due, in any workspace
    /// (the scheduler serves them all).
    pub async fn due_scheduled_workflows(
        &self,
        at: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<Workflow>, StoreError> {
        let sql = format!(
            "SELECT {WORKFLOW_COLUMNS} FROM workflows WHERE next_run_at IS NOT NULL AND next_run_at <= $1 AND enabled \
             ORDER BY next_run_at LIMIT $2"
        );
        let rows: Vec<WorkflowRow> = across_workspaces!(self, conn => {
            sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str())).bind(at).bind(limit).fetch_all(&mut *conn).await?
        });
        Ok(rows.into_iter().map(Workflow::from).collect())
    }

    /// Move a schedule from the tick `due` to `next`. `false` when another
    /// scheduler moved it first (so only one of them starts the run).
    pub async fn advance_schedule(
        &self,
        workspace: WorkspaceId,
        id: Uuid,
        due: DateTime<Utc>,
        next: Option<DateTime<Utc>>,
    ) -> Result<bool, StoreError> {
        let moved = in_workspace!(self, workspace, conn => {
            sqlx::query("UPDATE workflows SET next_run_at = $1 WHERE workspace_id = $2 AND id = $3 AND next_run_at = $4")
                .bind(next)
                .bind(workspace.as_uuid())
                .bind(id)
                .bind(due)
                .execute(&mut *conn)
                .await?
                .rows_affected()
        });
        Ok(moved == 1)
    }

    /// Every webhook token ciphertext, for re-encryption under a new key.
    pub async fn webhook_secrets(&self) -> Result<Vec<(WorkspaceId, Uuid, Sealed)>, StoreError> {
        let rows: Vec<(Uuid, Uuid, String, Vec<u8>)> = across_workspaces!(self, conn => {
            sqlx::query_as(
                "SELECT workspace_id, id, webhook_key_id, webhook_secret FROM workflows \
                 WHERE webhook_key_id IS NOT NULL AND webhook_secret IS NOT NULL",
            )
            .fetch_all(&mut *conn)
            .await?
        });
        Ok(rows
            .into_iter()
            .map(|(workspace, id, key_id, bytes)| {
                (
                    WorkspaceId::from_uuid(workspace),
                    id,
                    Sealed { key_id, bytes },
                )
            })
            .collect())
    }

    /// Replace a webhook token's ciphertext (same token, new key) if it is
    /// still the one that was read.
    pub async fn reencrypt_webhook_secret(
        &self,
        workspace: WorkspaceId,
        id: Uuid,
        old: &Sealed,
        new: &Sealed,
    ) -> Result<bool, StoreError> {
        let written = in_workspace!(self, workspace, conn => {
            sqlx::query(
                "UPDATE workflows SET webhook_key_id = $1, webhook_secret = $2 \
                 WHERE workspace_id = $3 AND id = $4 AND webhook_secret = $5",
            )
            .bind(&new.key_id)
            .bind(&new.bytes)
            .bind(workspace.as_uuid())
            .bind(id)
            .bind(&old.bytes)
            .execute(&mut *conn)
            .await?
            .rows_affected()
        });
        Ok(written == 1)
    }

    /// The enabled workflows that start when mail arrives in `integration`.
    pub async fn new_mail_workflows(
        &self,
        workspace: WorkspaceId,
        integration: domain::IntegrationId,
    ) -> Result<Vec<Workflow>, StoreError> {
        let sql = format!(
            "SELECT {WORKFLOW_COLUMNS} FROM workflows \
             WHERE workspace_id = $1 AND watched_integration_id = $2 AND enabled ORDER BY id"
        );
        let rows: Vec<WorkflowRow> = in_workspace!(self, workspace, conn => {
            sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str()))
                .bind(workspace.as_uuid())
                .bind(integration.as_uuid())
                .fetch_all(&mut *conn)
                .await?
        });
        Ok(rows.into_iter().map(Workflow::from).collect())
    }

    pub async fn delete_workflow(
        &self,
        workspace: WorkspaceId,
        id: Uuid,
    ) -> Result<(), StoreError> {
        let deleted = in_workspace!(self, workspace, conn => {
            sqlx::query("DELETE FROM workflows WHERE workspace_id = $1 AND id = $2")
                .bind(workspace.as_uuid())
                .bind(id)
                .execute(&mut *conn)
                .await?
                .rows_affected()
        });
        if deleted == 1 {
            Ok(())
        } else {
            Err(StoreError::NotFound)
        }
    }

    /// Create a run and, in the same transaction, its job (`job`, if given):
    /// a queued run always has its job. With an idempotency key already used
    /// on this workflow, return that run instead. The flag says whether it is
    /// new. `NotFound` when the workflow does not exist (it cannot be deleted
    /// while its run is written). One round trip on PostgreSQL (a function,
    /// the baseline migration).
    pub async fn create_run(
        &self,
        run: &Run,
        idempotency_key: Option<&str>,
        job: Option<&NewJob>,
    ) -> Result<(Run, bool), StoreError> {
        match &self.pool {
            Pool::Postgres(pool) => {
                let row = create_run_query(run, idempotency_key, job)
                    .fetch_optional(pool)
                    .await?;
                let row = row.ok_or(StoreError::NotFound)?;
                if row.is_new && job.is_some() {
                    self.announce_jobs(1);
                }
                Ok((Run::try_from(row.run)?, row.is_new))
            }
            Pool::Sqlite(pool) => {
                let mut conn = pool.begin_with("BEGIN IMMEDIATE").await?;
                let mut insert = sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(insert_run_sql(
                    job.is_some(),
                )))
                .bind(run.id)
                .bind(run.workspace.as_uuid())
                .bind(run.workflow_id)
                .bind(run.status.as_str())
                .bind(&run.trigger)
                .bind(Json(&run.input))
                .bind(Json(&run.steps))
                .bind(idempotency_key)
                .bind(run.created_at);
                if let Some(job) = job {
                    let created_at = now();
                    insert = insert
                        .bind(JobId::new().as_uuid())
                        .bind(job.workspace.map(|workspace| workspace.as_uuid()))
                        .bind(&job.kind)
                        .bind(Json(&job.payload))
                        .bind(i32::try_from(job.max_attempts).unwrap_or(i32::MAX))
                        .bind(job.run_at.unwrap_or(created_at))
                        .bind(&job.dedupe_key)
                        .bind(created_at);
                }
                let inserted = !insert.fetch_all(&mut *conn).await?.is_empty();
                let created = if inserted {
                    (run.clone(), true)
                } else {
                    // The key was used before, or the workflow is gone (its
                    // runs went with it): no run then.
                    let existing: RunRow =
                        sqlx::query_as(sqlx::AssertSqlSafe(existing_run_sql().as_str()))
                            .bind(run.workspace.as_uuid())
                            .bind(run.workflow_id)
                            .bind(idempotency_key)
                            .fetch_optional(&mut *conn)
                            .await?
                            .ok_or(StoreError::NotFound)?;
                    (Run::try_from(existing)?, false)
                };
                conn.commit().await?;
                if created.1 && job.is_some() {
                    self.announce_jobs(1);
                }
                Ok(created)
            }
        }
    }

    /// [`Store::create_run`] for `execute`: the workflow is read first and
    /// `make_run` builds the run and its job from it, or refuses (`None`,
    /// e.g. when it is disabled; then nothing is written). Two round trips on
    /// PostgreSQL; on SQLite the write lock is taken for the writes alone.
    pub async fn create_run_of_workflow<F>(
        &self,
        workspace: WorkspaceId,
        workflow_id: Uuid,
        idempotency_key: Option<&str>,
        make_run: F,
    ) -> Result<Option<(Run, bool)>, StoreError>
    where
        F: FnOnce(&Workflow) -> Result<Option<(Run, NewJob)>, StoreError>,
    {
        let workflow = self.workflow(workspace, workflow_id).await?;
        let Some((run, job)) = make_run(&workflow)? else {
            return Ok(None);
        };
        let run = Run {
            workspace,
            workflow_id,
            ..run
        };
        self.create_run(&run, idempotency_key, Some(&job))
            .await
            .map(Some)
    }

    /// A worker starts (or restarts) a run: the run is marked `running`, its
    /// start counted, and it is read with its workflow's steps, in one
    /// statement (on PostgreSQL a function: one round trip, in the baseline migration).
    /// `None` when the run (or its workflow) no longer exists or the run has
    /// ended.
    pub async fn begin_run_attempt(
        &self,
        workspace: WorkspaceId,
        id: Uuid,
    ) -> Result<Option<RunAttempt>, StoreError> {
        let sql = begin_run_attempt_sql(self.backend());
        let row: Option<StartedRunRow> = on_pool!(self, pool => {
            sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str()))
                .bind(workspace.as_uuid())
                .bind(id)
                .fetch_optional(pool)
                .await?
        });
        match row {
            Some(row) => row.into_attempt(),
            None => Ok(None),
        }
    }

    pub async fn run(&self, workspace: WorkspaceId, id: Uuid) -> Result<Run, StoreError> {
        let sql = format!(
            "SELECT {RUN_VIEW_COLUMNS} FROM workflow_runs WHERE workspace_id = $1 AND id = $2"
        );
        let row: Option<RunRow> = in_workspace!(self, workspace, conn => {
            sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str())).bind(workspace.as_uuid()).bind(id).fetch_optional(&mut *conn).await?
        });
        Run::try_from(row.ok_or(StoreError::NotFound)?)
    }

    pub async fn runs(
        &self,
        workspace: WorkspaceId,
        workflow_id: Uuid,
        limit: i64,
    ) -> Result<Vec<Run>, StoreError> {
        let sql = format!(
            "SELECT {RUN_VIEW_COLUMNS} FROM workflow_runs WHERE workspace_id = $1 AND workflow_id = $2 \
             ORDER BY created_at DESC LIMIT $3"
        );
        let rows: Vec<RunRow> = in_workspace!(self, workspace, conn => {
            sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str()))
                .bind(workspace.as_uuid())
                .bind(workflow_id)
                .bind(limit)
                .fetch_all(&mut *conn)
                .await?
        });
        rows.into_iter().map(Run::try_from).collect()
    }

    /// Link a re-run to the run it re-runs.
    pub async fn set_rerun_of(
        &self,
        workspace: WorkspaceId,
        run: Uuid,
        rerun_of: Uuid,
    ) -> Result<(), StoreError> {
        in_workspace!(self, workspace, conn => {
            sqlx::query("UPDATE workflow_runs SET rerun_of = $1 WHERE workspace_id = $2 AND id = $3")
                .bind(rerun_of)
                .bind(workspace.as_uuid())
                .bind(run)
                .execute(&mut *conn)
                .await?;
        });
        Ok(())
    }

    /// Record a run's progress: status, per-step results, (when it ended)
    /// its error and end time, and (while `Retrying`) when it tries again.
    pub async fn update_run(
        &self,
        workspace: WorkspaceId,
        id: Uuid,
        status: RunStatus,
        steps: &RunSteps,
        error: Option<&RunError>,
        next_attempt_at: Option<DateTime<Utc>>,
    ) -> Result<(), StoreError> {
        let finished = status.is_ended().then(now);
        in_workspace!(self, workspace, conn => {
            sqlx::query(
                "UPDATE workflow_runs SET status = $1, steps = $2, error_code = $3, error_message = $4, finished_at = $5, \
                                          next_attempt_at = $8 \
                 WHERE workspace_id = $6 AND id = $7",
            )
            .bind(status.as_str())
            .bind(Json(steps))
            .bind(error.map(|error| error.code.as_str()))
            .bind(error.map(|error| error.message.as_str()))
            .bind(finished)
            .bind(workspace.as_uuid())
            .bind(id)
            .bind(next_attempt_at.filter(|_| status == RunStatus::Retrying))
            .execute(&mut *conn)
            .await?;
        });
        if finished.is_some() {
            self.announce_run_end(id);
        }
        Ok(())
    }

    /// Record a run's end (`succeeded` or `failed`) and its job's success:
    /// on PostgreSQL atomically, in one round trip (a function in the baseline migration); on
    /// SQLite one right after the other (see below).
    /// `false` when the job's lease had been taken over (or the job is not
    /// this workspace's); the run is recorded either way, as
    /// [`Store::update_run`] would.
    pub async fn finish_run(
        &self,
        workspace: WorkspaceId,
        id: Uuid,
        status: RunStatus,
        steps: &RunSteps,
        error: Option<&RunError>,
        job: &ClaimedJob,
    ) -> Result<bool, StoreError> {
        let at = now();
        let completed = match &self.pool {
            Pool::Postgres(pool) => {
                let completed = sqlx::query_scalar(
                    "SELECT mailwright_finish_run($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                )
                .bind(workspace.as_uuid())
                .bind(id)
                .bind(status.as_str())
                .bind(Json(steps))
                .bind(error.map(|error| error.code.as_str()))
                .bind(error.map(|error| error.message.as_str()))
                .bind(at)
                .bind(job.id.as_uuid())
                .bind(job.lease_token())
                .fetch_one(pool)
                .await?;
                self.announce_run_end(id);
                completed
            }
            Pool::Sqlite(pool) => {
                // Two short writes rather than one transaction (the first,
                // `update_run`, announces the run's end): a transaction
                // holds SQLite's single write lock across both (and the await
                // between), and the other workers' writes queue behind it.
                // A crash between them leaves the job to be taken again,
                // which finds the run ended and completes it.
                self.update_run(workspace, id, status, steps, error, None)
                    .await?;
                sqlx::query(COMPLETE_WORKSPACE_JOB_SQL)
                    .bind(at)
                    .bind(job.id.as_uuid())
                    .bind(job.lease_token())
                    .bind(workspace.as_uuid())
                    .execute(pool)
                    .await?
                    .rows_affected()
                    == 1
            }
        };
        Ok(completed)
    }
}

/// A run created by `mailwright_create_run`, and whether it is new.
#[derive(sqlx::FromRow)]
struct CreatedRow {
    #[sqlx(flatten)]
    run: RunRow,
    is_new: bool,
}

/// [`Store::create_run`]'s one PostgreSQL statement (a function in the baseline migration), for any
/// executor (tests run it inside a transaction to read its statistics).
fn create_run_query<'q>(
    run: &'q Run,
    idempotency_key: Option<&'q str>,
    job: Option<&'q NewJob>,
) -> sqlx::query::QueryAs<'q, sqlx::Postgres, CreatedRow, sqlx::postgres::PgArguments> {
    let sql = format!(
        "SELECT {RUN_COLUMNS}, is_new FROM mailwright_create_run(\
         $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)"
    );
    sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(run.workspace.as_uuid())
        .bind(run.workflow_id)
        .bind(run.id)
        .bind(run.status.as_str())
        .bind(&run.trigger)
        .bind(Json(&run.input))
        .bind(Json(&run.steps))
        .bind(idempotency_key)
        .bind(run.created_at)
        .bind(job.map(|_| Uuid::now_v7()))
        .bind(
            job.and_then(|job| job.workspace)
                .map(|workspace| workspace.as_uuid()),
        )
        .bind(job.map(|job| job.kind.as_str()))
        .bind(job.map(|job| Json(&job.payload)))
        .bind(job.map(|job| i32::try_from(job.max_attempts).unwrap_or(i32::MAX)))
        .bind(job.map(|job| job.run_at.unwrap_or(run.created_at)))
        .bind(job.and_then(|job| job.dedupe_key.as_deref()))
}

/// One statement that starts a run and reads it with its workflow's steps.
/// (SQLite's `RETURNING` may not name another table, but a subquery in it
/// may; PostgreSQL wraps the same statement in a function that scopes it.)
fn begin_run_attempt_sql(backend: Backend) -> String {
    match backend {
        Backend::Postgres => {
            format!(
                "SELECT {RUN_COLUMNS}, starts, workflow_steps FROM mailwright_begin_run_attempt($1, $2)"
            )
        }
        Backend::Sqlite => format!(
            "UPDATE workflow_runs SET status = 'running', starts = starts + 1 \
             WHERE workspace_id = $1 AND id = $2 AND status NOT IN ('succeeded', 'failed') \
             RETURNING {RUN_COLUMNS}, starts, \
                       (SELECT w.steps FROM workflows w \
                        WHERE w.workspace_id = workflow_runs.workspace_id AND w.id = workflow_runs.workflow_id) \
                       AS workflow_steps"
        ),
    }
}

#[cfg(test)]
#[path = "workflows_tests.rs"]
mod tests;
