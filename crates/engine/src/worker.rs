//! Runs jobs from the durable queue: claim one due job, run its handler,
//! record the outcome (done, retry at the policy's time, or dead). One
//! mechanism for every kind of background work.
//!
//! Supervised: a handler that panics fails that attempt (reason
//! `internal`, logged with the job's id and kind, counted) and the job
//! follows the normal retry path; the worker goes on. Work past its retry
//! horizon is handed to its handler's [`JobHandler::give_up`], which records
//! the failure where people see it (a run, a message, an email), so nothing
//! is left waiting forever.
//!
//! `run_next` is public so tests (and tools) drain the queue
//! deterministically instead of sleeping.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use domain::retry::RetryPolicy;
use futures_util::FutureExt;
use store::jobs::{ClaimedJob, FailOutcome, Failure};
use store::{Store, StoreError};
use tokio::sync::watch;

/// How a job attempt ended badly. Messages are stored for people to read:
/// no secrets, no upstream bodies.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JobError {
    /// Worth another attempt later (timeouts, 429, 5xx); the worker picks
    /// the time from its retry policy and `retry_after` (the provider's hint).
    #[error("{message}")]
    Transient {
        message: String,
        retry_after: Option<Duration>,
    },
    /// Worth another attempt at `at`, which the handler chose with the same
    /// policy ([`next_attempt_at`]) and already showed to people.
    #[error("{message}")]
    RetryAt { message: String, at: DateTime<Utc> },
    /// Retrying cannot help.
    #[error("{0}")]
    Permanent(String),
}

/// When a job whose attempt failed at `now` is tried again (the policy's
/// backoff, `retry_after` when longer, never past the horizon).
pub fn next_attempt_at(
    policy: &RetryPolicy,
    job: &ClaimedJob,
    retry_after: Option<Duration>,
) -> DateTime<Utc> {
    policy.next_attempt_at(job.created_at, job.attempt, store::now(), retry_after)
}

/// A job attempt that went well, and who records that.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Success {
    /// The worker marks the job succeeded.
    ToRecord,
    /// The handler marked it together with its own last write (one round
    /// trip instead of two); `lease_held` is false when another worker had
    /// taken the job over.
    Recorded { lease_held: bool },
}

pub type JobFuture<'a> = Pin<Box<dyn Future<Output = Result<Success, JobError>> + Send + 'a>>;
pub type GiveUpFuture<'a> = Pin<Box<dyn Future<Output = Result<(), StoreError>> + Send + 'a>>;

/// A handler's attempt whose success the worker records.
pub fn recorded_by_worker<'a>(
    attempt: impl Future<Output = Result<(), JobError>> + Send + 'a,
) -> JobFuture<'a> {
    Box::pin(async move { attempt.await.map(|()| Success::ToRecord) })
}

/// Runs the jobs of one kind.
pub trait JobHandler: Send + Sync {
    fn kind(&self) -> &'static str;
    fn run<'a>(&'a self, job: &'a ClaimedJob) -> JobFuture<'a>;

    /// The job is past its retry horizon (its last attempts failed, its
    /// workers died or it panicked): record that its work failed for good,
    /// saying `reason`. The job is then dead. Default: nothing to record.
    fn give_up<'a>(&'a self, _job: &'a ClaimedJob, _reason: &'a str) -> GiveUpFuture<'a> {
        Box::pin(async { Ok(()) })
    }
}

/// What became of one job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobReport {
    Succeeded {
        kind: String,
    },
    Retrying {
        kind: String,
        error: String,
        at: DateTime<Utc>,
    },
    Dead {
        kind: String,
        error: String,
    },
    /// The lease expired while it ran; another worker owns it now.
    LeaseLost {
        kind: String,
    },
}

pub const JOBS: &str = "mailwright_jobs_total";
pub const JOB_PANICS: &str = "mailwright_job_panics_total";

/// How often a worker records jobs whose worker died on their last attempt as
/// dead (a write; not needed on every claim).
const BURY_INTERVAL: Duration = Duration::from_secs(5);
/// The lease of a claimed job unless configured otherwise.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(120);

#[derive(Clone)]
pub struct Worker {
    store: Store,
    handlers: Arc<Vec<Arc<dyn JobHandler>>>,
    lease: Duration,
    policy: RetryPolicy,
    idle_poll: Duration,
    last_burial: Arc<std::sync::Mutex<Option<std::time::Instant>>>,
}

/// An error and what caused it, for the log ("database error: database
/// disk image is malformed").
fn with_causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// "24 hours", "90 minutes", "2 seconds".
fn horizon_words(horizon: Duration) -> String {
    let seconds = horizon.as_secs();
    match seconds {
        0..=119 => format!("{} seconds", horizon.as_secs_f64().round()),
        120..=7199 => format!("{} minutes", seconds / 60),
        _ => format!("{} hours", seconds / 3600),
    }
}

/// The text of a panic, for the log (our own code's message: an index, an
/// `expect`), cut short.
fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    let text = payload
        .downcast_ref::<&str>()
        .map(|text| (*text).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_owned());
    text.chars().take(300).collect()
}

impl Worker {
    pub fn new(store: Store, handlers: Vec<Arc<dyn JobHandler>>) -> Worker {
        Worker {
            store,
            handlers: Arc::new(handlers),
            lease: DEFAULT_LEASE,
            policy: RetryPolicy::DEFAULT,
            // An idle worker wakes at once for a job this process added
            // (`Store::job_added`), and checks the queue ten times a second
            // for jobs that come due or that another process added: an
            // indexed query that finds nothing.
            idle_poll: Duration::from_millis(100),
            last_burial: Arc::default(),
        }
    }

    /// Use another retry policy (configuration; tests: short delays).
    pub fn with_policy(mut self, policy: RetryPolicy) -> Worker {
        self.policy = policy;
        self
    }

    /// Hold claimed jobs this long: a job whose worker died is taken again
    /// when it runs out.
    pub fn with_lease(mut self, lease: Duration) -> Worker {
        self.lease = lease;
        self
    }

    /// Poll an idle queue this often instead of ten times a second.
    pub fn with_idle_poll(mut self, idle_poll: Duration) -> Worker {
        self.idle_poll = idle_poll;
        self
    }

    pub fn policy(&self) -> &RetryPolicy {
        &self.policy
    }

    pub fn kinds(&self) -> Vec<&'static str> {
        self.handlers.iter().map(|handler| handler.kind()).collect()
    }

    /// This worker with only the handlers `keep` accepts: a lane of the
    /// queue. Work that waits on tenants' servers (webhook deliveries) runs
    /// in its own lane, so it can never take every worker from the rest.
    pub fn lane(&self, keep: impl Fn(&str) -> bool) -> Worker {
        Worker {
            handlers: Arc::new(
                self.handlers
                    .iter()
                    .filter(|handler| keep(handler.kind()))
                    .cloned()
                    .collect(),
            ),
            ..self.clone()
        }
    }

    /// Claim and run one due job. `None` when nothing is due.
    pub async fn run_next(&self) -> Result<Option<JobReport>, StoreError> {
        let kinds = self.kinds();
        let bury_due = {
            let mut last = self
                .last_burial
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let due = last.is_none_or(|at| at.elapsed() >= BURY_INTERVAL);
            if due {
                *last = Some(std::time::Instant::now());
            }
            due
        };
        if bury_due {
            self.store
                .bury_jobs_with_expired_last_attempt(store::now())
                .await?;
        }
        let Some(job) = self.store.claim_job(&kinds, self.lease).await? else {
            return Ok(None);
        };
        let Some(handler) = self
            .handlers
            .iter()
            .find(|handler| handler.kind() == job.kind)
        else {
            // Claimed only kinds we handle; a mismatch is a bug, not a crash.
            self.store
                .fail_job(&job, "no handler for this kind of job", Failure::Permanent)
                .await?;
            return Ok(Some(JobReport::Dead {
                kind: job.kind.clone(),
                error: "no handler".into(),
            }));
        };
        let report = if self.policy.has_given_up(job.created_at, store::now()) {
            let attempts = job.attempt.saturating_sub(1);
            let reason = format!(
                "gave up after {attempts} attempt{} over {}",
                if attempts == 1 { "" } else { "s" },
                horizon_words(self.policy.horizon)
            );
            self.give_up(handler.as_ref(), &job, reason).await?
        } else {
            self.attempt(handler.as_ref(), &job).await?
        };
        let outcome = match &report {
            JobReport::Succeeded { .. } => "succeeded",
            JobReport::Retrying { .. } => "retrying",
            JobReport::Dead { .. } => "dead",
            JobReport::LeaseLost { .. } => "lease_lost",
        };
        metrics::counter!(JOBS, "kind" => job.kind.clone(), "outcome" => outcome).increment(1);
        Ok(Some(report))
    }

    /// Run the handler once; a panic is a failed attempt.
    async fn attempt(
        &self,
        handler: &dyn JobHandler,
        job: &ClaimedJob,
    ) -> Result<JobReport, StoreError> {
        let kind = job.kind.clone();
        let running = AssertUnwindSafe(handler.run(job)).catch_unwind();
        tokio::pin!(running);
        // A job may take longer than its lease (a slow model, a slow
        // provider): renew it every third of the lease while it runs, so
        // only a job whose process died is taken over.
        let mut renewal = job.clone();
        let finished = loop {
            tokio::select! {
                finished = &mut running => break finished,
                () = tokio::time::sleep(self.lease / 3) => {
                    match self.store.extend_job_lease(&mut renewal, self.lease).await {
                        Ok(true) => {}
                        Ok(false) => tracing::warn!(job = %job.id, kind = %job.kind, "the job's lease was taken over while it ran"),
                        Err(error) => tracing::warn!(job = %job.id, error = format!("{error:#}"), "cannot renew a job's lease"),
                    }
                }
            }
        };
        let outcome = match finished {
            Ok(outcome) => outcome,
            Err(payload) => {
                metrics::counter!(JOB_PANICS, "kind" => job.kind.clone()).increment(1);
                tracing::error!(
                    job = %job.id,
                    kind = %job.kind,
                    attempt = job.attempt,
                    panic = %panic_text(payload.as_ref()),
                    "a job handler panicked; the attempt failed and the job will be retried"
                );
                Err(JobError::Transient {
                    message:
                        "internal: Mailwright hit an internal error (details in the server log)"
                            .into(),
                    retry_after: None,
                })
            }
        };
        Ok(match outcome {
            Ok(success) => {
                let lease_held = match success {
                    Success::ToRecord => self.store.complete_job(job).await?,
                    Success::Recorded { lease_held } => lease_held,
                };
                if lease_held {
                    JobReport::Succeeded { kind }
                } else {
                    JobReport::LeaseLost { kind }
                }
            }
            Err(error) => {
                let failure = match &error {
                    JobError::Transient { retry_after, .. } => {
                        Failure::RetryAt(next_attempt_at(&self.policy, job, *retry_after))
                    }
                    JobError::RetryAt { at, .. } => {
                        Failure::RetryAt((*at).min(self.policy.gives_up_at(job.created_at)))
                    }
                    JobError::Permanent(_) => Failure::Permanent,
                };
                let message = error.to_string();
                if matches!(failure, Failure::RetryAt(_)) && job.attempt >= job.max_attempts {
                    // Out of attempts before the horizon (the backstop, or a
                    // job queued by a version that counted attempts): its
                    // handler still records the failure.
                    let reason = format!("gave up after {} attempts", job.attempt);
                    return self.give_up(handler, job, reason).await;
                }
                match self.store.fail_job(job, &message, failure).await? {
                    FailOutcome::RetryAt(at) => {
                        tracing::info!(job = %job.id, kind = %job.kind, attempt = job.attempt, next_attempt_at = %at, error = %message, "job failed; retrying");
                        JobReport::Retrying {
                            kind,
                            error: message,
                            at,
                        }
                    }
                    FailOutcome::Dead => {
                        tracing::warn!(job = %job.id, kind = %job.kind, attempts = job.attempt, error = %message, "job failed for good");
                        JobReport::Dead {
                            kind,
                            error: message,
                        }
                    }
                    FailOutcome::LeaseLost => JobReport::LeaseLost { kind },
                }
            }
        })
    }

    /// The job's horizon has passed: its handler records the failure, the
    /// job is dead.
    async fn give_up(
        &self,
        handler: &dyn JobHandler,
        job: &ClaimedJob,
        reason: String,
    ) -> Result<JobReport, StoreError> {
        match AssertUnwindSafe(handler.give_up(job, &reason))
            .catch_unwind()
            .await
        {
            Ok(Ok(())) => {}
            // Not recorded: the job stays due and the next claim tries again.
            Ok(Err(error)) => return Err(error),
            Err(payload) => {
                metrics::counter!(JOB_PANICS, "kind" => job.kind.clone()).increment(1);
                tracing::error!(job = %job.id, kind = %job.kind, panic = %panic_text(payload.as_ref()), "giving up a job panicked; the job is dead");
            }
        }
        tracing::warn!(job = %job.id, kind = %job.kind, attempts = job.attempt, reason = %reason, "job given up");
        Ok(
            match self
                .store
                .fail_job(job, &reason, Failure::Permanent)
                .await?
            {
                FailOutcome::LeaseLost => JobReport::LeaseLost {
                    kind: job.kind.clone(),
                },
                _ => JobReport::Dead {
                    kind: job.kind.clone(),
                    error: reason,
                },
            },
        )
    }

    /// Run every job that is due now; how many ran.
    pub async fn drain(&self) -> Result<usize, StoreError> {
        let mut ran = 0;
        while self.run_next().await?.is_some() {
            ran += 1;
        }
        Ok(ran)
    }

    /// Work until `shutdown` turns true: jobs back to back while there are
    /// any; when idle, wait for a job added in this process or the next
    /// poll. A job in progress is finished first. A queue that cannot be
    /// reached is logged once per outage, with backoff (not on every poll).
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let mut failing_since: Option<std::time::Instant> = None;
        let mut failures: u32 = 0;
        loop {
            if *shutdown.borrow() {
                return;
            }
            let mut pause = self.idle_poll;
            match self.run_next().await {
                Ok(Some(_)) => {
                    failing_since = None;
                    failures = 0;
                    continue;
                }
                Ok(None) => {
                    if let Some(since) = failing_since.take() {
                        tracing::info!(
                            after_ms = since.elapsed().as_millis() as u64,
                            "the worker reaches the job queue again"
                        );
                    }
                    failures = 0;
                }
                Err(error) => {
                    failures = failures.saturating_add(1);
                    if failing_since.is_none() {
                        failing_since = Some(std::time::Instant::now());
                        tracing::warn!(
                            error = with_causes(&error),
                            "the worker cannot reach the job queue; retrying with backoff"
                        );
                    }
                    pause = self
                        .idle_poll
                        .saturating_mul(1u32 << failures.min(6))
                        .min(Duration::from_secs(5));
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(pause) => {}
                _ = self.store.job_added() => {}
                _ = shutdown.changed() => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use serde_json::{Value, json};
    use store::jobs::{JobStatus, NewJob};
    use store::testing::TestDatabase;
    use tokio::sync::mpsc;

    use super::*;

    const KIND: &str = "test.report";

    /// Tells the test each job it ran.
    struct Report(mpsc::UnboundedSender<Value>);

    impl JobHandler for Report {
        fn kind(&self) -> &'static str {
            KIND
        }

        fn run<'a>(&'a self, job: &'a ClaimedJob) -> JobFuture<'a> {
            recorded_by_worker(async move {
                self.0.send(job.payload.clone()).expect("the test listens");
                Ok(())
            })
        }
    }

    async fn ran(reports: &mut mpsc::UnboundedReceiver<Value>) -> Value {
        tokio::time::timeout(Duration::from_secs(10), reports.recv())
            .await
            .expect("the job ran within 10 s")
            .expect("the worker is running")
    }

    /// Panics on its first attempt at each job, succeeds on the second;
    /// records each job it gave up.
    struct PanicsOnce {
        attempts: std::sync::Mutex<std::collections::HashMap<String, u32>>,
        given_up: mpsc::UnboundedSender<String>,
    }

    impl JobHandler for PanicsOnce {
        fn kind(&self) -> &'static str {
            "test.panics"
        }

        fn run<'a>(&'a self, job: &'a ClaimedJob) -> JobFuture<'a> {
            recorded_by_worker(async move {
                let attempt = {
                    let mut attempts = self.attempts.lock().unwrap();
                    let count = attempts.entry(job.id.to_string()).or_default();
                    *count += 1;
                    *count
                };
                if attempt == 1 {
                    let steps: Vec<u32> = vec![1];
                    // The kind of bug the report found: an index past the end.
                    let _ = steps[attempt as usize];
                }
                Ok(())
            })
        }

        fn give_up<'a>(&'a self, job: &'a ClaimedJob, reason: &'a str) -> GiveUpFuture<'a> {
            Box::pin(async move {
                self.given_up
                    .send(format!("{}: {reason}", job.id))
                    .expect("the test listens");
                Ok(())
            })
        }
    }

    /// A lane claims only its own kinds: a job of another kind waits for
    /// the worker that has it.
    #[tokio::test]
    async fn a_lane_runs_only_its_kinds() {
        let (_db, store) = TestDatabase::migrated().await;
        let (reports, mut reported) = mpsc::unbounded_channel();
        let (given_up, _) = mpsc::unbounded_channel();
        let worker = Worker::new(
            store.clone(),
            vec![
                Arc::new(Report(reports)),
                Arc::new(PanicsOnce {
                    attempts: Default::default(),
                    given_up,
                }),
            ],
        );
        let panics_lane = worker.lane(|kind| kind == "test.panics");
        assert_eq!(panics_lane.kinds(), vec!["test.panics"]);
        store
            .enqueue_job(&NewJob::new(KIND, json!({"n": 1})))
            .await
            .unwrap();
        assert!(
            panics_lane.run_next().await.unwrap().is_none(),
            "not its kind"
        );
        assert!(
            worker
                .lane(|kind| kind == KIND)
                .run_next()
                .await
                .unwrap()
                .is_some()
        );
        assert_eq!(ran(&mut reported).await, json!({"n": 1}));
    }

    /// A worker of [`PanicsOnce`], and what it reports of the jobs it gave up.
    fn worker_of_panics_once(store: &Store) -> (Worker, mpsc::UnboundedReceiver<String>) {
        let (given_up, gave_up) = mpsc::unbounded_channel();
        let handler = PanicsOnce {
            attempts: Default::default(),
            given_up,
        };
        (Worker::new(store.clone(), vec![Arc::new(handler)]), gave_up)
    }

    #[tokio::test]
    async fn a_handler_that_panics_fails_that_attempt_as_internal_and_the_worker_goes_on() {
        let (_db, store) = TestDatabase::migrated().await;
        let (worker, _) = worker_of_panics_once(&store);
        let id = store
            .enqueue_job(&NewJob::new("test.panics", json!({})))
            .await
            .unwrap()
            .unwrap();
        let report = worker.run_next().await.unwrap().expect("a job ran");
        let JobReport::Retrying { error, .. } = report else {
            panic!("a panic is a failed attempt, retried: {report:?}");
        };
        assert!(error.starts_with("internal"), "{error}");
        let record = store.job(id).await.unwrap();
        assert_eq!(record.status, JobStatus::Queued);
        assert!(
            !record.last_error.unwrap().contains("index"),
            "no panic text for clients"
        );

        store::testing::make_jobs_due(&store).await;
        assert_eq!(
            worker.run_next().await.unwrap(),
            Some(JobReport::Succeeded {
                kind: "test.panics".into()
            }),
            "the same worker runs it again"
        );
        assert_eq!(store.job(id).await.unwrap().status, JobStatus::Succeeded);
    }

    #[tokio::test]
    async fn a_job_past_its_horizon_is_given_up_by_its_handler_and_dead() {
        let (_db, store) = TestDatabase::migrated().await;
        let (worker, mut gave_up) = worker_of_panics_once(&store);
        let worker = worker.with_policy(RetryPolicy {
            horizon: Duration::from_millis(600),
            ..RetryPolicy::DEFAULT
        });
        let id = store
            .enqueue_job(&NewJob::new("test.panics", json!({})))
            .await
            .unwrap()
            .unwrap();
        // The first attempt panics; its retry is due at the horizon at the latest.
        let report = worker.run_next().await.unwrap().unwrap();
        let JobReport::Retrying { at, .. } = report else {
            panic!("{report:?}")
        };
        assert!(at <= store::now() + chrono::Duration::milliseconds(600));
        tokio::time::sleep(Duration::from_millis(650)).await;
        store::testing::make_jobs_due(&store).await;
        let report = worker.run_next().await.unwrap().unwrap();
        assert!(matches!(report, JobReport::Dead { .. }), "{report:?}");
        let reason = gave_up
            .try_recv()
            .expect("the handler was asked to give up");
        assert!(reason.contains("gave up after 1 attempt over"), "{reason}");
        let record = store.job(id).await.unwrap();
        assert_eq!(record.status, JobStatus::Dead);
    }

    /// A job that runs out of attempts before its horizon (the backstop, or
    /// a job queued by a version that counted attempts) is given up by its
    /// handler too, not left for the handler's records to wait forever.
    #[tokio::test]
    async fn a_job_out_of_attempts_is_given_up_by_its_handler() {
        let (_db, store) = TestDatabase::migrated().await;
        let (worker, mut gave_up) = worker_of_panics_once(&store);
        let id = store
            .enqueue_job(&NewJob::new("test.panics", json!({})).max_attempts(1))
            .await
            .unwrap()
            .unwrap();
        let report = worker.run_next().await.unwrap().unwrap();
        assert!(matches!(report, JobReport::Dead { .. }), "{report:?}");
        let reason = gave_up
            .try_recv()
            .expect("the handler was asked to give up");
        assert!(reason.ends_with("gave up after 1 attempts"), "{reason}");
        assert_eq!(store.job(id).await.unwrap().status, JobStatus::Dead);
    }

    #[tokio::test]
    async fn an_idle_worker_takes_a_job_added_in_its_process_at_once_not_at_its_next_poll() {
        let (_db, store) = TestDatabase::migrated().await;
        let (reports, mut ran_jobs) = mpsc::unbounded_channel();
        // A poll an hour away: only the wake-up can get a job run in time.
        let worker = Worker::new(store.clone(), vec![Arc::new(Report(reports))])
            .with_idle_poll(Duration::from_secs(3600));
        let (stop, stopped) = watch::channel(false);
        let working = tokio::spawn(worker.run(stopped));

        let first = store
            .enqueue_job(&NewJob::new(KIND, json!({"n": 1})))
            .await
            .unwrap()
            .expect("added");
        assert_eq!(ran(&mut ran_jobs).await, json!({"n": 1}));
        // Once the first job is recorded the worker claims again, finds
        // nothing and waits; the second job is added after that (as far as
        // the test can tell without reaching into the worker).
        let deadline = Instant::now() + Duration::from_secs(10);
        while store.job(first).await.unwrap().status != JobStatus::Succeeded {
            assert!(Instant::now() < deadline, "the first job is recorded");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        store
            .enqueue_job(&NewJob::new(KIND, json!({"n": 2})))
            .await
            .unwrap()
            .expect("added");
        assert_eq!(ran(&mut ran_jobs).await, json!({"n": 2}));

        stop.send(true).unwrap();
        tokio::time::timeout(Duration::from_secs(10), working)
            .await
            .expect("the worker stops")
            .unwrap();
    }
}
