//! Runs jobs from the durable queue: claim one due job, run its handler,
//! record the outcome (done, retry with backoff, or dead). One mechanism for
//! every kind of background work.
//!
//! `run_next` is public so tests (and tools) drain the queue
//! deterministically instead of sleeping.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use domain::retry::RetryPolicy;
use store::jobs::{ClaimedJob, FailOutcome, Failure};
use store::{Store, StoreError};
use tokio::sync::watch;

/// How a job attempt ended badly. Messages are stored for people to read:
/// no secrets, no upstream bodies.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JobError {
    /// Worth another attempt later (timeouts, 429, 5xx).
    #[error("{message}")]
    Transient {
        message: String,
        retry_after: Option<Duration>,
    },
    /// Retrying cannot help.
    #[error("{0}")]
    Permanent(String),
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

/// How often a worker records jobs whose worker died on their last attempt as
/// dead (a write; not needed on every claim).
const BURY_INTERVAL: Duration = Duration::from_secs(5);

#[derive(Clone)]
pub struct Worker {
    store: Store,
    handlers: Arc<Vec<Arc<dyn JobHandler>>>,
    lease: Duration,
    policy: RetryPolicy,
    idle_poll: Duration,
    last_burial: Arc<std::sync::Mutex<Option<std::time::Instant>>>,
}

impl Worker {
    pub fn new(store: Store, handlers: Vec<Arc<dyn JobHandler>>) -> Worker {
        Worker {
            store,
            handlers: Arc::new(handlers),
            lease: Duration::from_secs(120),
            policy: RetryPolicy::DEFAULT,
            // An idle worker wakes at once for a job this process added
            // (`Store::job_added`), and checks the queue ten times a second
            // for jobs that come due or that another process added: an
            // indexed query that finds nothing.
            idle_poll: Duration::from_millis(100),
            last_burial: Arc::default(),
        }
    }

    /// Use another retry policy (tests: short delays).
    pub fn with_policy(mut self, policy: RetryPolicy) -> Worker {
        self.policy = policy;
        self
    }

    /// Poll an idle queue this often instead of ten times a second.
    pub fn with_idle_poll(mut self, idle_poll: Duration) -> Worker {
        self.idle_poll = idle_poll;
        self
    }

    pub fn kinds(&self) -> Vec<&'static str> {
        self.handlers.iter().map(|handler| handler.kind()).collect()
    }

    /// Claim and run one due job. `None` when nothing is due.
    pub async fn run_next(&self) -> Result<Option<JobReport>, StoreError> {
        let kinds = self.kinds();
        let bury_due = {
            let mut last = self.last_burial.lock().expect("burial clock");
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
        let handler = self
            .handlers
            .iter()
            .find(|handler| handler.kind() == job.kind)
            .expect("claimed only kinds we handle");
        let kind = job.kind.clone();
        let outcome = handler.run(&job).await;
        let report = match outcome {
            Ok(success) => {
                let lease_held = match success {
                    Success::ToRecord => self.store.complete_job(&job).await?,
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
                    JobError::Transient { retry_after, .. } => Failure::Transient {
                        retry_after: *retry_after,
                    },
                    JobError::Permanent(_) => Failure::Permanent,
                };
                let message = error.to_string();
                match self
                    .store
                    .fail_job(&job, &message, failure, &self.policy)
                    .await?
                {
                    FailOutcome::RetryAt(_) => JobReport::Retrying {
                        kind,
                        error: message,
                    },
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
    /// poll. A job in progress is finished first.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        loop {
            if *shutdown.borrow() {
                return;
            }
            match self.run_next().await {
                Ok(Some(_)) => continue,
                Ok(None) => {}
                Err(error) => tracing::warn!(
                    error = format!("{error:#}"),
                    "the worker cannot reach the job queue; retrying"
                ),
            }
            tokio::select! {
                _ = tokio::time::sleep(self.idle_poll) => {}
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
