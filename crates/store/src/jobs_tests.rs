//! The queue's guarantees, on the backend under test (SQLite, or PostgreSQL
//! when `MAILWRIGHT_TEST_POSTGRES_URL` is set).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;

use super::*;
use crate::testing::{TestDatabase, take_job_announcement};

const KIND: &str = "test.echo";
const LEASE: Duration = Duration::from_secs(60);

/// Claim until a job comes back or the deadline passes.
async fn claim_within(store: &Store, lease: Duration, deadline: Duration) -> Option<ClaimedJob> {
    let give_up = Instant::now() + deadline;
    loop {
        if let Some(job) = store.claim_job(&[KIND], lease).await.unwrap() {
            return Some(job);
        }
        if Instant::now() > give_up {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn an_added_job_wakes_one_waiting_worker_and_a_duplicate_wakes_none() {
    let (_db, store) = TestDatabase::migrated().await;
    assert!(!take_job_announcement(&store).await, "nothing added yet");

    let waiting = tokio::spawn({
        let store = store.clone();
        async move { store.job_added().await }
    });
    let job = NewJob::new(KIND, json!({})).dedupe_key("once");
    store.enqueue_job(&job).await.unwrap().expect("added");
    tokio::time::timeout(Duration::from_secs(10), waiting)
        .await
        .expect("the waiting worker woke")
        .unwrap();
    assert!(!take_job_announcement(&store).await, "one job, one wake-up");

    assert!(store.enqueue_job(&job).await.unwrap().is_none());
    assert!(
        !take_job_announcement(&store).await,
        "a duplicate adds no job and wakes no worker"
    );

    // Clones of a store (the server's, the workers') share the signal.
    let clone = store.clone();
    clone
        .enqueue_job(&NewJob::new(KIND, json!({})))
        .await
        .unwrap()
        .expect("added");
    assert!(take_job_announcement(&store).await);
}

#[tokio::test]
async fn a_job_runs_once_and_is_recorded_as_succeeded() {
    let (_db, store) = TestDatabase::migrated().await;
    let id = store
        .enqueue_job(&NewJob::new(KIND, json!({"n": 1})))
        .await
        .unwrap()
        .unwrap();

    let job = store
        .claim_job(&[KIND], LEASE)
        .await
        .unwrap()
        .expect("the job is due");
    assert_eq!(
        (job.id, job.attempt, job.payload.clone()),
        (id, 1, json!({"n": 1}))
    );
    assert!(
        store.claim_job(&[KIND], LEASE).await.unwrap().is_none(),
        "a leased job is not handed out twice"
    );

    assert!(store.complete_job(&job).await.unwrap());
    let record = store.job(id).await.unwrap();
    assert_eq!(record.status, JobStatus::Succeeded);
    assert!(record.finished_at.is_some());
    assert!(store.claim_job(&[KIND], LEASE).await.unwrap().is_none());
}

#[tokio::test]
async fn claims_only_due_jobs_of_the_asked_kinds() {
    let (_db, store) = TestDatabase::migrated().await;
    let later = now() + chrono::Duration::hours(1);
    store
        .enqueue_job(&NewJob::new(KIND, json!({})).run_at(later))
        .await
        .unwrap();
    store
        .enqueue_job(&NewJob::new("other.kind", json!({})))
        .await
        .unwrap();

    assert!(store.claim_job(&[KIND], LEASE).await.unwrap().is_none());
    assert!(store.claim_job(&[], LEASE).await.unwrap().is_none());
    let other = store
        .claim_job(&["other.kind", KIND], LEASE)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(other.kind, "other.kind");
}

#[tokio::test]
async fn a_failed_job_is_queued_again_at_the_time_given_until_its_attempts_run_out() {
    let (_db, store) = TestDatabase::migrated().await;
    let id = store
        .enqueue_job(&NewJob::new(KIND, json!({})).max_attempts(2))
        .await
        .unwrap()
        .unwrap();

    let first = store.claim_job(&[KIND], LEASE).await.unwrap().unwrap();
    let retry_at = now() + chrono::Duration::milliseconds(20);
    let outcome = store
        .fail_job(&first, "Gmail answered 503", Failure::RetryAt(retry_at))
        .await
        .unwrap();
    assert_eq!(outcome, FailOutcome::RetryAt(retry_at));
    let record = store.job(id).await.unwrap();
    assert_eq!(
        (record.status, record.last_error.as_deref()),
        (JobStatus::Queued, Some("Gmail answered 503"))
    );
    // (PostgreSQL keeps microseconds.)
    assert!((record.run_at - retry_at).num_milliseconds().abs() < 1);

    let second = claim_within(&store, LEASE, Duration::from_secs(5))
        .await
        .expect("claimable once its time came");
    assert_eq!(second.attempt, 2);
    let outcome = store
        .fail_job(
            &second,
            "still 503",
            Failure::RetryAt(now() + chrono::Duration::milliseconds(20)),
        )
        .await
        .unwrap();
    assert_eq!(
        outcome,
        FailOutcome::Dead,
        "no attempts left (the backstop)"
    );
    let record = store.job(id).await.unwrap();
    assert_eq!((record.status, record.attempts), (JobStatus::Dead, 2));
    assert_eq!(record.last_error.as_deref(), Some("still 503"));
}

/// Retry horizons count from when the job was queued, across its attempts.
#[tokio::test]
async fn each_claim_says_when_its_job_was_queued() {
    let (_db, store) = TestDatabase::migrated().await;
    let before = now();
    store
        .enqueue_job(&NewJob::new(KIND, json!({})))
        .await
        .unwrap();
    let after = now();
    let job = store.claim_job(&[KIND], LEASE).await.unwrap().unwrap();
    assert!(job.created_at >= before && job.created_at <= after);
    store
        .fail_job(&job, "503", Failure::RetryAt(now()))
        .await
        .unwrap();
    let again = claim_within(&store, LEASE, Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!((again.attempt, again.created_at), (2, job.created_at));
}

#[tokio::test]
async fn permanent_failures_end_the_job_at_once() {
    let (_db, store) = TestDatabase::migrated().await;
    let id = store
        .enqueue_job(&NewJob::new(KIND, json!({})))
        .await
        .unwrap()
        .unwrap();
    let job = store.claim_job(&[KIND], LEASE).await.unwrap().unwrap();
    let outcome = store
        .fail_job(&job, "missing scope", Failure::Permanent)
        .await
        .unwrap();
    assert_eq!(outcome, FailOutcome::Dead);
    assert_eq!(store.job(id).await.unwrap().attempts, 1);
}

#[tokio::test]
async fn a_job_whose_worker_died_is_taken_over_and_the_dead_worker_cannot_finish_it() {
    let db = TestDatabase::new().await;
    let first_process = db.connect().await;
    first_process.migrate().await.unwrap();
    let second_process = db.connect().await;
    let id = first_process
        .enqueue_job(&NewJob::new(KIND, json!({})))
        .await
        .unwrap()
        .unwrap();

    // The first worker claims with a short lease, then "dies" (never reports).
    let abandoned = first_process
        .claim_job(&[KIND], Duration::from_millis(50))
        .await
        .unwrap()
        .unwrap();

    let taken_over = claim_within(&second_process, LEASE, Duration::from_secs(5))
        .await
        .expect("the job comes back once the lease expires");
    assert_eq!((taken_over.id, taken_over.attempt), (id, 2));

    // The first worker wakes up late: its results no longer count.
    assert!(!first_process.complete_job(&abandoned).await.unwrap());
    assert_eq!(
        first_process
            .fail_job(&abandoned, "late", Failure::Permanent)
            .await
            .unwrap(),
        FailOutcome::LeaseLost
    );
    let mut abandoned = abandoned;
    assert!(
        !first_process
            .extend_job_lease(&mut abandoned, LEASE)
            .await
            .unwrap()
    );

    assert!(second_process.complete_job(&taken_over).await.unwrap());
    assert_eq!(
        second_process.job(id).await.unwrap().status,
        JobStatus::Succeeded
    );
}

#[tokio::test]
async fn a_lease_that_expires_on_the_last_attempt_makes_the_job_dead_with_a_reason() {
    let (_db, store) = TestDatabase::migrated().await;
    let id = store
        .enqueue_job(&NewJob::new(KIND, json!({})).max_attempts(1))
        .await
        .unwrap()
        .unwrap();
    store
        .claim_job(&[KIND], Duration::from_millis(20))
        .await
        .unwrap()
        .unwrap();

    let give_up = Instant::now() + Duration::from_secs(5);
    let record = loop {
        assert!(
            store.claim_job(&[KIND], LEASE).await.unwrap().is_none(),
            "no attempts left to hand out"
        );
        store
            .bury_jobs_with_expired_last_attempt(now())
            .await
            .unwrap();
        let record = store.job(id).await.unwrap();
        if record.status == JobStatus::Dead || Instant::now() > give_up {
            break record;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert_eq!(record.status, JobStatus::Dead);
    assert!(
        record
            .last_error
            .unwrap()
            .contains("stopped before finishing")
    );
}

#[tokio::test]
async fn extending_a_lease_keeps_the_job() {
    let (_db, store) = TestDatabase::migrated().await;
    store
        .enqueue_job(&NewJob::new(KIND, json!({})))
        .await
        .unwrap();
    let mut job = store
        .claim_job(&[KIND], Duration::from_millis(200))
        .await
        .unwrap()
        .unwrap();
    let before = job.lease_expires_at;
    assert!(store.extend_job_lease(&mut job, LEASE).await.unwrap());
    assert!(job.lease_expires_at > before);
}

#[tokio::test]
async fn a_dedupe_key_allows_one_unfinished_job() {
    let (_db, store) = TestDatabase::migrated().await;
    let job = NewJob::new(KIND, json!({})).dedupe_key("sync:mailbox-1");
    assert!(store.enqueue_job(&job).await.unwrap().is_some());
    assert!(
        store.enqueue_job(&job).await.unwrap().is_none(),
        "still queued"
    );
    let claimed = store.claim_job(&[KIND], LEASE).await.unwrap().unwrap();
    assert!(
        store.enqueue_job(&job).await.unwrap().is_none(),
        "still running"
    );
    store.complete_job(&claimed).await.unwrap();
    assert!(
        store.enqueue_job(&job).await.unwrap().is_some(),
        "finished jobs free the key"
    );
}

/// Two processes (two pools), several workers each, draining one queue:
/// every job runs exactly once and none is left behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_workers_in_two_processes_run_every_job_exactly_once() {
    const JOBS: usize = 200;
    const WORKERS_PER_PROCESS: usize = 4;
    let db = TestDatabase::new().await;
    let process_a = db.connect().await;
    process_a.migrate().await.unwrap();
    let process_b = db.connect().await;
    for n in 0..JOBS {
        process_a
            .enqueue_job(&NewJob::new(KIND, json!({ "n": n })))
            .await
            .unwrap();
    }

    let runs: Arc<Mutex<HashMap<JobId, usize>>> = Arc::default();
    let mut workers = Vec::new();
    for store in [process_a.clone(), process_b.clone()] {
        for _ in 0..WORKERS_PER_PROCESS {
            let store = store.clone();
            let runs = Arc::clone(&runs);
            workers.push(tokio::spawn(async move {
                while let Some(job) = store.claim_job(&[KIND], LEASE).await.unwrap() {
                    *runs.lock().unwrap().entry(job.id).or_default() += 1;
                    assert!(store.complete_job(&job).await.unwrap(), "our own lease");
                }
            }));
        }
    }
    for worker in workers {
        worker.await.unwrap();
    }

    let runs = runs.lock().unwrap().clone();
    assert_eq!(runs.len(), JOBS, "every job ran");
    assert!(
        runs.values().all(|&count| count == 1),
        "no job ran twice: {runs:?}"
    );
    let unfinished: i64 = on_pool!(&process_a, pool => {
        sqlx::query_scalar("SELECT COUNT(*) FROM jobs WHERE status <> 'succeeded'").fetch_one(pool).await.unwrap()
    });
    assert_eq!(unfinished, 0);
}

/// A claim reads the head of the due index, not the whole backlog, even when
/// the planner's statistics are wrong about the queue's size. Otherwise each
/// claim sorts the backlog, claims slow down as it grows, and it grows faster
/// (measured: 1-5 ms per claim with 1,000-3,000 queued jobs on PostgreSQL,
/// the largest share of the database's time in the workflow benchmark).
#[tokio::test]
async fn a_claim_reads_the_head_of_a_large_backlog_even_with_stale_statistics() {
    let (_db, store) = TestDatabase::migrated().await;
    let sql = claim_sql(store.backend(), 2);
    match &store.pool {
        Pool::Sqlite(pool) => {
            let plan: Vec<(i64, i64, i64, String)> =
                sqlx::query_as(sqlx::AssertSqlSafe(format!("EXPLAIN QUERY PLAN {sql}")))
                    .fetch_all(pool)
                    .await
                    .unwrap();
            let plan: Vec<String> = plan.into_iter().map(|(_, _, _, step)| step).collect();
            assert!(
                plan.iter().any(|step| step.contains("jobs_due"))
                    && !plan.iter().any(|step| step.contains("TEMP B-TREE")),
                "the claim walks jobs_due in order without sorting: {plan:?}"
            );
        }
        Pool::Postgres(pool) => {
            // Right after the migrations the planner's statistics say the
            // index is empty (it was built on an empty table) until a vacuum.
            sqlx::query(
                "INSERT INTO jobs (id, kind, payload, status, attempts, max_attempts, run_at, created_at, updated_at) \
                 SELECT gen_random_uuid(), $1, '{}', 'queued', 0, 3, now() - n * interval '1 ms', now(), now() \
                 FROM generate_series(1, 3000) AS n",
            )
            .bind(KIND)
            .execute(pool)
            .await
            .unwrap();

            let mut tx = pool.begin().await.unwrap();
            let at = now();
            let claimed: Option<ClaimedRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str()))
                .bind(Uuid::new_v4())
                .bind(at + chrono::Duration::seconds(60))
                .bind(at)
                .bind([KIND, "test.other"])
                .fetch_optional(&mut *tx)
                .await
                .unwrap();
            assert!(claimed.is_some(), "a queued job is claimed");
            let (read,): (i64,) =
                sqlx::query_as("SELECT pg_stat_get_xact_tuples_returned('jobs_due'::regclass)")
                    .fetch_one(&mut *tx)
                    .await
                    .unwrap();
            assert!(
                read <= 10,
                "the claim read {read} entries of jobs_due for one job of 3,000 queued"
            );
        }
    }
}

/// Bringing a backing-off job forward looks it up by the unfinished-dedupe
/// index, not by reading the whole queue (SQLite would otherwise scan, with
/// its one write lock held, on every poll and push). On PostgreSQL, with
/// sequential scans priced out, the plan shows an index serves it (the
/// planner may as well walk `jobs_due` from now: few jobs are due later).
#[tokio::test]
async fn hastening_a_job_finds_it_through_the_dedupe_index() {
    let (_db, store) = TestDatabase::migrated().await;
    let plan: Vec<String> = match &store.pool {
        Pool::Sqlite(pool) => {
            let rows: Vec<(i64, i64, i64, String)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "EXPLAIN QUERY PLAN {HASTEN_JOB_SQL}"
            )))
            .bind(now())
            .bind("k")
            .fetch_all(pool)
            .await
            .unwrap();
            rows.into_iter().map(|row| row.3).collect()
        }
        Pool::Postgres(pool) => {
            let mut tx = pool.begin().await.unwrap();
            sqlx::query("SET LOCAL enable_seqscan = off")
                .execute(&mut *tx)
                .await
                .unwrap();
            sqlx::query_scalar(sqlx::AssertSqlSafe(format!("EXPLAIN {HASTEN_JOB_SQL}")))
                .bind(now())
                .bind("k")
                .fetch_all(&mut *tx)
                .await
                .unwrap()
        }
    };
    let by_index = match store.backend() {
        Backend::Sqlite => plan
            .iter()
            .any(|step| step.contains("USING INDEX jobs_unfinished_dedupe_key")),
        Backend::Postgres => {
            plan.iter().any(|step| step.contains("Index Scan"))
                && !plan.iter().any(|step| step.contains("Seq Scan"))
        }
    };
    assert!(by_index, "{plan:?}");
}
