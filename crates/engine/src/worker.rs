//! Runs jobs from the durable queue: claim one due job, run its handler,
//! record the outcome (done, retry with backoff, or dead). One mechanism for
//! every kind of background work.
//!
//! `run_next` is public so tests (and tools) drain the queue
//! deterministically instead of sleeping.

use std::collections::VecDeque;
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
    /// The handler marked it, in the transaction of its own last write (one
    /// commit instead of two); `lease_held` is false when another worker had
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

/// The most jobs a busy worker claims at once. Claimed jobs wait for the
/// ones before them; one that waited half its lease is given back instead.
pub const MAX_CLAIM_BATCH: u32 = 4;

fn chrono_lease_half(lease: Duration) -> chrono::Duration {
    chrono::Duration::from_std(lease / 2).unwrap_or(chrono::Duration::MAX)
}

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
            // An idle worker checks the queue ten times a second: an indexed
            // query that finds nothing, and a pushed message waits at most
            // this long for its sync to start.
            idle_poll: Duration::from_millis(100),
            last_burial: Arc::default(),
        }
    }

    /// Use another retry policy (tests: short delays).
    pub fn with_policy(mut self, policy: RetryPolicy) -> Worker {
        self.policy = policy;
        self
    }

    pub fn kinds(&self) -> Vec<&'static str> {
        self.handlers.iter().map(|handler| handler.kind()).collect()
    }

    /// Claim and run one due job. `None` when nothing is due.
    pub async fn run_next(&self) -> Result<Option<JobReport>, StoreError> {
        self.bury_if_due().await?;
        let Some(job) = self.store.claim_job(&self.kinds(), self.lease).await? else {
            return Ok(None);
        };
        self.run_claimed(job).await.map(Some)
    }

    async fn bury_if_due(&self) -> Result<(), StoreError> {
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
        Ok(())
    }

    /// Run one job this worker holds and record how it went.
    async fn run_claimed(&self, job: ClaimedJob) -> Result<JobReport, StoreError> {
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
        Ok(report)
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
    /// any, a short poll when idle. A job in progress is finished first;
    /// claimed jobs not yet started are given back.
    ///
    /// A worker that keeps finding work claims several jobs per statement
    /// (doubling up to [`MAX_CLAIM_BATCH`]) and runs them in order; one that
    /// finds fewer than it asked for goes back to claiming what it found,
    /// so a trickle of jobs still spreads over every idle worker.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let kinds = self.kinds();
        let mut claimed: VecDeque<ClaimedJob> = VecDeque::new();
        let mut batch = 1;
        loop {
            if let Some(job) = claimed.pop_front() {
                // Unstarted jobs go back to the queue on shutdown, and when
                // the ones before them took so long that little of the
                // lease is left: another worker starts them fresh.
                let lease_left = job.lease_expires_at - store::now();
                if *shutdown.borrow() || lease_left < chrono_lease_half(self.lease) {
                    if let Err(error) = self.store.release_job(&job).await {
                        tracing::warn!(
                            error = format!("{error:#}"),
                            "the worker cannot give back a job; it runs again when its lease runs out"
                        );
                    }
                    continue;
                }
                if let Err(error) = self.run_claimed(job).await {
                    tracing::warn!(
                        error = format!("{error:#}"),
                        "the worker cannot record a job's outcome; its lease will run out and it will run again"
                    );
                }
                continue;
            }
            if *shutdown.borrow() {
                return;
            }
            let found = match self.bury_if_due().await {
                Ok(()) => self.store.claim_jobs(&kinds, self.lease, batch).await,
                Err(error) => Err(error),
            };
            match found {
                Ok(jobs) if !jobs.is_empty() => {
                    let full = jobs.len() == batch as usize;
                    batch = if full {
                        (batch * 2).min(MAX_CLAIM_BATCH)
                    } else {
                        u32::try_from(jobs.len()).unwrap_or(1)
                    };
                    claimed.extend(jobs);
                    continue;
                }
                Ok(_) => batch = 1,
                Err(error) => tracing::warn!(
                    error = format!("{error:#}"),
                    "the worker cannot reach the job queue; retrying"
                ),
            }
            tokio::select! {
                _ = tokio::time::sleep(self.idle_poll) => {}
                _ = shutdown.changed() => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use serde_json::{Value, json};
    use store::jobs::{JobStatus, NewJob};
    use store::testing::TestDatabase;
    use tokio::sync::Notify;

    use super::*;

    /// Records each job it runs; the second one waits for `gate`.
    struct Recorder {
        ran: Mutex<Vec<Value>>,
        second_started: Notify,
        gate: Notify,
    }

    impl JobHandler for Arc<Recorder> {
        fn kind(&self) -> &'static str {
            "test.record"
        }

        fn run<'a>(&'a self, job: &'a ClaimedJob) -> JobFuture<'a> {
            recorded_by_worker(async move {
                let second = {
                    let mut ran = self.ran.lock().unwrap();
                    ran.push(job.payload["n"].clone());
                    ran.len() == 2
                };
                if second {
                    self.second_started.notify_one();
                    self.gate.notified().await;
                }
                Ok(())
            })
        }
    }

    #[tokio::test]
    async fn a_busy_worker_claims_in_batches_and_gives_back_unstarted_jobs_on_shutdown() {
        let (_db, store) = TestDatabase::migrated().await;
        let mut ids = Vec::new();
        for n in 0..6 {
            let job = NewJob::new("test.record", json!({ "n": n }));
            ids.push(store.enqueue_job(&job).await.unwrap().unwrap());
        }
        let recorder = Arc::new(Recorder {
            ran: Mutex::default(),
            second_started: Notify::new(),
            gate: Notify::new(),
        });
        let worker = Worker::new(store.clone(), vec![Arc::new(recorder.clone())]);
        let (stop, stopped) = watch::channel(false);
        let running = tokio::spawn(worker.run(stopped));

        // Job 0 was claimed alone (a full batch of one), so jobs 1 and 2
        // came together; stop while job 1 runs.
        tokio::time::timeout(Duration::from_secs(10), recorder.second_started.notified())
            .await
            .expect("the second job starts");
        let held = [
            store.job(ids[2]).await.unwrap(),
            store.job(ids[3]).await.unwrap(),
        ];
        assert_eq!(
            held.map(|job| job.status),
            [JobStatus::Running, JobStatus::Queued],
            "job 2 was claimed with job 1, job 3 not yet"
        );
        stop.send(true).unwrap();
        recorder.gate.notify_one();
        tokio::time::timeout(Duration::from_secs(10), running)
            .await
            .expect("the worker stops")
            .unwrap();

        assert_eq!(*recorder.ran.lock().unwrap(), vec![json!(0), json!(1)]);
        let mut statuses = Vec::new();
        for id in &ids {
            let job = store.job(*id).await.unwrap();
            statuses.push((job.status, job.attempts));
        }
        assert_eq!(
            statuses,
            vec![
                (JobStatus::Succeeded, 1),
                (JobStatus::Succeeded, 1),
                // Claimed with job 1, never started: queued again, uncounted.
                (JobStatus::Queued, 0),
                (JobStatus::Queued, 0),
                (JobStatus::Queued, 0),
                (JobStatus::Queued, 0),
            ]
        );
    }
}
