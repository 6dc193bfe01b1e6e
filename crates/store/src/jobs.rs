//! The durable job queue: every piece of background work (workflow runs,
//! mailbox syncs, system email) is a row here, so nothing is lost when a
//! process dies.
//!
//! A worker *claims* a due job, which takes a lease (a fresh token and an
//! expiry). Finishing or failing a job names the lease token, so a worker
//! whose lease expired and was taken over cannot overwrite the new owner's
//! result. A job whose lease expires is claimable again (its worker is
//! presumed dead). Transient failures are retried at the time the worker
//! chooses ([`domain::retry::RetryPolicy`]: backoff, within a horizon counted
//! from the job's `created_at`), permanent ones end the job at once. A job
//! whose worker keeps dying is dead after a backstop number of attempts.

use std::time::Duration;

use chrono::{DateTime, Utc};
use domain::retry::MAX_ATTEMPTS_BACKSTOP;
use domain::{JobId, WorkspaceId};
use serde_json::Value;
use sqlx::types::Json;
use uuid::Uuid;

use crate::{Backend, Pool, Store, StoreError, now, on_pool};

/// A job to enqueue.
#[derive(Debug, Clone)]
pub struct NewJob {
    pub kind: String,
    pub payload: Value,
    pub workspace: Option<WorkspaceId>,
    /// Not before this time (default: now).
    pub run_at: Option<DateTime<Utc>>,
    pub max_attempts: u32,
    /// While a job with this key is queued or running, enqueueing another
    /// with the same key does nothing.
    pub dedupe_key: Option<String>,
}

impl NewJob {
    pub fn new(kind: impl Into<String>, payload: Value) -> NewJob {
        NewJob {
            kind: kind.into(),
            payload,
            workspace: None,
            run_at: None,
            max_attempts: MAX_ATTEMPTS_BACKSTOP,
            dedupe_key: None,
        }
    }

    pub fn in_workspace(mut self, workspace: WorkspaceId) -> NewJob {
        self.workspace = Some(workspace);
        self
    }

    pub fn run_at(mut self, at: DateTime<Utc>) -> NewJob {
        self.run_at = Some(at);
        self
    }

    pub fn max_attempts(mut self, attempts: u32) -> NewJob {
        self.max_attempts = attempts.max(1);
        self
    }

    pub fn dedupe_key(mut self, key: impl Into<String>) -> NewJob {
        self.dedupe_key = Some(key.into());
        self
    }
}

/// A job this worker holds a lease on.
#[derive(Debug, Clone)]
pub struct ClaimedJob {
    pub id: JobId,
    pub kind: String,
    pub payload: Value,
    pub workspace: Option<WorkspaceId>,
    /// Which attempt this is (1 for the first run).
    pub attempt: u32,
    pub max_attempts: u32,
    /// When it was queued: retry horizons count from here.
    pub created_at: DateTime<Utc>,
    pub lease_expires_at: DateTime<Utc>,
    lease_token: Uuid,
}

impl ClaimedJob {
    /// Proves the lease when the job's outcome is recorded elsewhere.
    pub(crate) fn lease_token(&self) -> Uuid {
        self.lease_token
    }
}

/// Record a job's success if this worker's lease still holds: `$1` the time,
/// `$2` the job, `$3` the lease token.
const COMPLETE_JOB_SQL: &str = "UPDATE jobs SET status = 'succeeded', lease_token = NULL, \
     lease_expires_at = NULL, last_error = NULL, updated_at = $1, finished_at = $1 \
     WHERE id = $2 AND lease_token = $3 AND status = 'running'";

/// [`COMPLETE_JOB_SQL`] for a job of one workspace (`$4`), for a repository
/// function that ends a job with a write of that workspace's data.
pub(crate) const COMPLETE_WORKSPACE_JOB_SQL: &str = "UPDATE jobs SET status = 'succeeded', \
     lease_token = NULL, lease_expires_at = NULL, last_error = NULL, updated_at = $1, finished_at = $1 \
     WHERE id = $2 AND lease_token = $3 AND status = 'running' AND workspace_id = $4";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobStatus {
    Queued,
    Running,
    Succeeded,
    Dead,
}

impl JobStatus {
    fn parse(text: &str) -> Result<JobStatus, StoreError> {
        match text {
            "queued" => Ok(JobStatus::Queued),
            "running" => Ok(JobStatus::Running),
            "succeeded" => Ok(JobStatus::Succeeded),
            "dead" => Ok(JobStatus::Dead),
            other => Err(StoreError::Other(
                format!("unknown job status `{other}`").into(),
            )),
        }
    }
}

/// A job as stored.
#[derive(Debug, Clone)]
pub struct JobRecord {
    pub id: JobId,
    pub kind: String,
    pub status: JobStatus,
    pub attempts: u32,
    pub max_attempts: u32,
    pub run_at: DateTime<Utc>,
    pub last_error: Option<String>,
    pub finished_at: Option<DateTime<Utc>>,
}

/// What to do with a job whose attempt failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// Try again at this time (the caller applied the retry policy).
    RetryAt(DateTime<Utc>),
    /// Retrying cannot help (missing scopes, invalid input, gave up).
    Permanent,
}

/// What became of a failed job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailOutcome {
    RetryAt(DateTime<Utc>),
    Dead,
    /// The lease had already been taken over; nothing was written.
    LeaseLost,
}

#[derive(sqlx::FromRow)]
struct ClaimedRow {
    id: Uuid,
    kind: String,
    payload: Json<Value>,
    workspace_id: Option<Uuid>,
    attempts: i32,
    max_attempts: i32,
    created_at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
struct JobRow {
    id: Uuid,
    kind: String,
    status: String,
    attempts: i32,
    max_attempts: i32,
    run_at: DateTime<Utc>,
    last_error: Option<String>,
    finished_at: Option<DateTime<Utc>>,
}

/// The head of a job insert; the values follow, in this order.
pub(crate) const INSERT_JOB_COLUMNS: &str = "INSERT INTO jobs (id, workspace_id, kind, payload, status, attempts, \
     max_attempts, run_at, dedupe_key, created_at, updated_at)";
/// A job insert's tail: an unfinished job with the same dedupe key wins.
pub(crate) const ON_UNFINISHED_DEDUPE_KEY: &str = "ON CONFLICT (dedupe_key) \
     WHERE dedupe_key IS NOT NULL AND status IN ('queued', 'running') DO NOTHING";

/// Insert `$job` (a `&NewJob`) with id `$id` through `$executor` (a pool or
/// a transaction, so a job can be written atomically with the row it works
/// on); evaluates to the rows inserted (0 when the dedupe key is taken).
macro_rules! insert_job {
    ($executor:expr, $id:expr, $job:expr) => {{
        let job: &$crate::jobs::NewJob = $job;
        let created_at = $crate::now();
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "{} VALUES ($1, $2, $3, $4, 'queued', 0, $5, $6, $7, $8, $8) {}",
            $crate::jobs::INSERT_JOB_COLUMNS,
            $crate::jobs::ON_UNFINISHED_DEDUPE_KEY,
        )))
        .bind($id.as_uuid())
        .bind(job.workspace.map(|workspace| workspace.as_uuid()))
        .bind(&job.kind)
        .bind(sqlx::types::Json(&job.payload))
        .bind(i32::try_from(job.max_attempts).unwrap_or(i32::MAX))
        .bind(job.run_at.unwrap_or(created_at))
        .bind(&job.dedupe_key)
        .bind(created_at)
        .execute($executor)
        .await?
        .rows_affected()
    }};
}
pub(crate) use insert_job;

/// Bring a queued job (`$2`: its dedupe key) forward to `$1`. The terms of
/// `jobs_unfinished_dedupe_key`'s predicate are repeated so SQLite uses that
/// index (it does not infer them from `status = 'queued'`, and would scan
/// every job, holding the write lock, for each poll or push).
pub(crate) const HASTEN_JOB_SQL: &str = "UPDATE jobs SET run_at = $1 \
     WHERE dedupe_key = $2 AND dedupe_key IS NOT NULL AND status IN ('queued', 'running') \
       AND status = 'queued' AND run_at > $1";

/// [`insert_job!`] for work that is wanted *now*: when an unfinished job with
/// the same dedupe key is already queued for later (a retry backing off),
/// it is brought forward to now instead, so a poll or push that finds the
/// provider answering again does not wait out the backoff.
macro_rules! insert_or_hasten_job {
    ($conn:expr, $job:expr) => {{
        let job: &$crate::jobs::NewJob = $job;
        let inserted = $crate::jobs::insert_job!(&mut *$conn, domain::JobId::new(), job);
        if inserted == 0
            && let Some(key) = &job.dedupe_key
        {
            sqlx::query($crate::jobs::HASTEN_JOB_SQL)
                .bind($crate::now())
                .bind(key)
                .execute(&mut *$conn)
                .await?;
        }
    }};
}
pub(crate) use insert_or_hasten_job;

fn to_u32(value: i32) -> u32 {
    u32::try_from(value).unwrap_or(0)
}

fn chrono_duration(duration: Duration) -> chrono::Duration {
    chrono::Duration::from_std(duration).unwrap_or(chrono::Duration::MAX)
}

/// The claim statement. SQLite binds: lease token, lease expiry, now, then
/// each of `kinds` kinds; PostgreSQL binds the kinds as one array.
fn claim_sql(backend: Backend, kinds: usize) -> String {
    match backend {
        // The same statement, in a function that keeps the planner on the
        // ordered index walk (decision 0009 says why).
        Backend::Postgres => {
            "SELECT id, kind, payload, workspace_id, attempts, max_attempts, created_at \
                              FROM mailwright_claim_job($1, $2, $3, $4)"
                .to_owned()
        }
        Backend::Sqlite => {
            let kind_placeholders = (0..kinds)
                .map(|index| format!("${}", index + 4))
                .collect::<Vec<_>>()
                .join(", ");
            // `status IN (...)` and `run_at <= now` match the partial index
            // `jobs_due (run_at, id)`, so the claim walks it in order and
            // stops at the first takeable row (a running job's run_at is in
            // the past too). An UPDATE takes SQLite's single write lock
            // before it reads, so the subquery and the update are atomic.
            // (PostgreSQL's version adds FOR UPDATE SKIP LOCKED: concurrent
            // claimers skip rows another claimer holds instead of waiting.)
            format!(
                "UPDATE jobs SET status = 'running', attempts = attempts + 1, lease_token = $1, \
                                 lease_expires_at = $2, updated_at = $3 \
                 WHERE id = ( \
                     SELECT id FROM jobs \
                     WHERE status IN ('queued', 'running') AND run_at <= $3 \
                       AND (status = 'queued' OR (lease_expires_at < $3 AND attempts < max_attempts)) \
                       AND kind IN ({kind_placeholders}) \
                     ORDER BY run_at, id \
                     LIMIT 1) \
                 RETURNING id, kind, payload, workspace_id, attempts, max_attempts, created_at"
            )
        }
    }
}

impl Store {
    /// Add a job. Returns `None` when an unfinished job with the same dedupe
    /// key already exists.
    pub async fn enqueue_job(&self, job: &NewJob) -> Result<Option<JobId>, StoreError> {
        let id = JobId::new();
        let inserted = on_pool!(self, pool => insert_job!(pool, id, job));
        if inserted == 1 {
            self.announce_jobs(1);
        }
        Ok((inserted == 1).then_some(id))
    }

    /// Take the next due job of one of `kinds`, holding it for `lease`.
    /// Jobs whose worker's lease ran out are due again while they have
    /// attempts left (see `bury_jobs_with_expired_last_attempt` for the rest).
    pub async fn claim_job(
        &self,
        kinds: &[&str],
        lease: Duration,
    ) -> Result<Option<ClaimedJob>, StoreError> {
        if kinds.is_empty() {
            return Ok(None);
        }
        let claimed_at = now();

        let lease_token = Uuid::new_v4();
        let lease_expires_at = claimed_at + chrono_duration(lease);
        let sql = claim_sql(self.backend(), kinds.len());
        let row: Option<ClaimedRow> = match &self.pool {
            Pool::Sqlite(pool) => {
                let mut query = sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str()))
                    .bind(lease_token)
                    .bind(lease_expires_at)
                    .bind(claimed_at);
                for kind in kinds {
                    query = query.bind(*kind);
                }
                query.fetch_optional(pool).await?
            }
            Pool::Postgres(pool) => {
                sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str()))
                    .bind(lease_token)
                    .bind(lease_expires_at)
                    .bind(claimed_at)
                    .bind(kinds)
                    .fetch_optional(pool)
                    .await?
            }
        };
        Ok(row.map(|row| ClaimedJob {
            id: JobId::from_uuid(row.id),
            kind: row.kind,
            payload: row.payload.0,
            workspace: row.workspace_id.map(WorkspaceId::from_uuid),
            attempt: to_u32(row.attempts),
            max_attempts: to_u32(row.max_attempts),
            created_at: row.created_at,
            lease_expires_at,
            lease_token,
        }))
    }

    /// A running job whose worker vanished during its last allowed attempt
    /// will never be claimed again: record it as dead, with the reason.
    /// Workers call this every few seconds (not on every claim: it is a write).
    pub async fn bury_jobs_with_expired_last_attempt(
        &self,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        on_pool!(self, pool => {
            sqlx::query(
                "UPDATE jobs SET status = 'dead', lease_token = NULL, lease_expires_at = NULL, \
                                 updated_at = $1, finished_at = $1, \
                                 last_error = 'the worker running the last attempt stopped before finishing it' \
                 WHERE status = 'running' AND lease_expires_at < $1 AND attempts >= max_attempts",
            )
            .bind(at)
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// Keep holding a job that takes longer than its lease. `false` when the
    /// lease was already lost.
    pub async fn extend_job_lease(
        &self,
        job: &mut ClaimedJob,
        lease: Duration,
    ) -> Result<bool, StoreError> {
        let at = now();
        let expires_at = at + chrono_duration(lease);
        let updated = on_pool!(self, pool => {
            sqlx::query(
                "UPDATE jobs SET lease_expires_at = $1, updated_at = $2 \
                 WHERE id = $3 AND lease_token = $4 AND status = 'running'",
            )
            .bind(expires_at)
            .bind(at)
            .bind(job.id.as_uuid())
            .bind(job.lease_token)
            .execute(pool)
            .await?
            .rows_affected()
        });
        if updated == 1 {
            job.lease_expires_at = expires_at;
        }
        Ok(updated == 1)
    }

    /// Record success. `false` when the lease had been taken over (the job
    /// is then another worker's to finish).
    pub async fn complete_job(&self, job: &ClaimedJob) -> Result<bool, StoreError> {
        let at = now();
        let updated = on_pool!(self, pool => {
            sqlx::query(COMPLETE_JOB_SQL)
            .bind(at)
            .bind(job.id.as_uuid())
            .bind(job.lease_token)
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(updated == 1)
    }

    /// Record a failed attempt: queued again at the time given, or dead.
    /// `error` is kept for people to read, so it must not contain secrets.
    pub async fn fail_job(
        &self,
        job: &ClaimedJob,
        error: &str,
        failure: Failure,
    ) -> Result<FailOutcome, StoreError> {
        let at = now();
        let retry_at = match failure {
            Failure::RetryAt(retry_at) if job.attempt < job.max_attempts => Some(retry_at),
            _ => None,
        };
        let (status, run_at, finished_at) = match retry_at {
            Some(retry_at) => ("queued", retry_at, None),
            None => ("dead", at, Some(at)),
        };
        let updated = on_pool!(self, pool => {
            sqlx::query(
                "UPDATE jobs SET status = $1, run_at = $2, finished_at = $3, last_error = $4, \
                                 lease_token = NULL, lease_expires_at = NULL, updated_at = $5 \
                 WHERE id = $6 AND lease_token = $7 AND status = 'running'",
            )
            .bind(status)
            .bind(run_at)
            .bind(finished_at)
            .bind(error)
            .bind(at)
            .bind(job.id.as_uuid())
            .bind(job.lease_token)
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(match (updated, retry_at) {
            (0, _) => FailOutcome::LeaseLost,
            (_, Some(retry_at)) => FailOutcome::RetryAt(retry_at),
            (_, None) => FailOutcome::Dead,
        })
    }

    pub async fn job(&self, id: JobId) -> Result<JobRecord, StoreError> {
        let row: JobRow = on_pool!(self, pool => {
            sqlx::query_as(
                "SELECT id, kind, status, attempts, max_attempts, run_at, last_error, finished_at \
                 FROM jobs WHERE id = $1",
            )
            .bind(id.as_uuid())
            .fetch_optional(pool)
            .await?
        })
        .ok_or(StoreError::NotFound)?;
        Ok(JobRecord {
            id: JobId::from_uuid(row.id),
            kind: row.kind,
            status: JobStatus::parse(&row.status)?,
            attempts: to_u32(row.attempts),
            max_attempts: to_u32(row.max_attempts),
            run_at: row.run_at,
            last_error: row.last_error,
            finished_at: row.finished_at,
        })
    }
}

#[cfg(test)]
#[path = "jobs_tests.rs"]
mod tests;
