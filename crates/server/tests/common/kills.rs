//! What the kill -9 tests of the real binary share (`reliability.rs` for
//! Gmail, `outlook_binary.rs` for Outlook): the sandbox in the test process
//! (so the mailboxes outlive every kill), a database, the environment every
//! `mailwright serve` child is given, a seeded random schedule, and the API
//! calls and waits the tests make.

use std::time::{Duration, Instant};

use sandbox::Sandbox;
use serde_json::{Value, json};
use store::testing::TestDatabase;

use super::process::{ProcessEnv, ServeProcess, google_sandbox, test_client};

/// What differs between the kill tests.
pub struct KillSettings {
    pub test: &'static str,
    /// Replays the schedule: `<seed_var>=<seed>`.
    pub seed_var: &'static str,
    pub workspace: &'static str,
    /// `MAILWRIGHT_JOB_LEASE_SECONDS`: a killed process's job is taken
    /// over this long after it was claimed.
    pub job_lease: Duration,
    /// `MAILWRIGHT_RETRY_BASE_MILLIS`: the first retry delay.
    pub retry_base_millis: u64,
    /// How long the last process has to finish everything, once the kills
    /// are over (with `job_lease`; a longer effective lease is added).
    pub finish_deadline: Duration,
}

/// The sandbox, the database, and what every `mailwright` child is given.
pub struct KillHarness {
    pub test: &'static str,
    pub started: Instant,
    pub sandbox: Sandbox,
    pub env: ProcessEnv,
    pub client: reqwest::Client,
    /// An API key of the workspace, made with `mailwright admin`.
    pub key: String,
    /// The seed of `rng` (printed; the settings' `seed_var` replays it).
    pub seed: u64,
    pub rng: fastrand::Rng,
    job_lease: Duration,
    finish_deadline: Duration,
    /// Kept for its lifetime: the database is dropped with it.
    _db: TestDatabase,
}

/// A run queued by a test: its order number and the subject its email must
/// have.
pub struct QueuedRun {
    pub id: String,
    pub order: String,
    pub subject: String,
}

impl KillHarness {
    /// The sandbox and a fresh database; `providers` points the children's
    /// environment at the sandbox (given its URL) and may prepare it.
    pub async fn new(
        settings: KillSettings,
        providers: impl FnOnce(&Sandbox, ProcessEnv, &str) -> ProcessEnv,
    ) -> KillHarness {
        mailwright::app::install_crypto_provider();
        let seed_var = settings.seed_var;
        let seed = match std::env::var(seed_var) {
            Ok(seed) => seed
                .parse()
                .unwrap_or_else(|_| panic!("{seed_var}={seed}: not a u64")),
            Err(_) => fastrand::u64(..),
        };
        eprintln!(
            "{}: seed {seed} (replay the kill schedule with {seed_var}={seed})",
            settings.test
        );
        let (sandbox, sandbox_url) = google_sandbox().await;
        let db = TestDatabase::new().await;
        let env = ProcessEnv::new(&db)
            .with("MAILWRIGHT_AUTODRAFT_POLL_SECONDS", "1")
            .with(
                "MAILWRIGHT_JOB_LEASE_SECONDS",
                settings.job_lease.as_secs().to_string(),
            )
            .with(
                "MAILWRIGHT_RETRY_BASE_MILLIS",
                settings.retry_base_millis.to_string(),
            );
        let env = providers(&sandbox, env, &sandbox_url);
        // The admin commands are short-lived children; they also migrate.
        let key = env.owner_key(settings.workspace);
        KillHarness {
            test: settings.test,
            started: Instant::now(),
            sandbox,
            env,
            client: test_client(),
            key,
            seed,
            rng: fastrand::Rng::with_seed(seed),
            job_lease: settings.job_lease,
            finish_deadline: settings.finish_deadline,
            _db: db,
        }
    }

    pub fn say(&self, what: impl std::fmt::Display) {
        eprintln!(
            "{} [{:>6.2}s] {what}",
            self.test,
            self.started.elapsed().as_secs_f64()
        );
    }

    pub async fn start(&self, name: &str) -> ServeProcess {
        let process = self.env.serve(name, &self.client).await;
        self.say(format_args!(
            "{name} (pid {}) ready on {}",
            process.pid, process.address
        ));
        process
    }

    /// The lease the processes really run with, and the deadline for
    /// finishing the work that follows from it.
    pub fn lease_and_deadline(&self, process: &ServeProcess) -> (Duration, Duration) {
        let lease = process.effective_job_lease(self.job_lease);
        if lease != self.job_lease {
            self.say(format_args!(
                "NOTE: the binary ignores MAILWRIGHT_JOB_LEASE_SECONDS (ignored: {:?}); \
                 killed jobs wait for the default {lease:?} lease, so this test is slow",
                process.ignored_settings()
            ));
        }
        (
            lease,
            self.finish_deadline + lease.saturating_sub(self.job_lease),
        )
    }

    pub async fn post(&self, process: &ServeProcess, path: &str, body: Value) -> Value {
        let answer = self
            .client
            .post(process.url(path))
            .bearer_auth(&self.key)
            .json(&body)
            .send()
            .await
            .unwrap_or_else(|error| {
                panic!(
                    "POST {path} to {}: {error}\n{}",
                    process.name,
                    process.tail(30)
                )
            });
        let status = answer.status();
        let body: Value = answer.json().await.unwrap();
        assert!(status.is_success(), "POST {path}: {status} {body}");
        body
    }

    pub async fn get(&self, process: &ServeProcess, path: &str) -> Value {
        let answer = self
            .client
            .get(process.url(path))
            .bearer_auth(&self.key)
            .send()
            .await
            .unwrap_or_else(|error| {
                panic!(
                    "GET {path} from {}: {error}\n{}",
                    process.name,
                    process.tail(30)
                )
            });
        let status = answer.status();
        let body: Value = answer.json().await.unwrap();
        assert_eq!(status, 200, "GET {path}: {body}");
        body
    }

    /// A manual workflow with one step: send one email from `integration`
    /// to `to`, the run's order number in the subject.
    pub async fn create_send_workflow(
        &self,
        process: &ServeProcess,
        integration: &str,
        to: &str,
    ) -> String {
        let workflow = self
            .post(
                process,
                "/api/workflows",
                json!({
                    "name": "Shipping notice",
                    "trigger": {"type": "manual"},
                    "steps": [{
                        "action": "gmail.send_email",
                        "integration_id": integration,
                        "to": [to],
                        "subject": "Order {{ input.order }} shipped",
                        "body": "Hello, your order {{ input.order }} is on its way.",
                    }],
                }),
            )
            .await;
        workflow["id"].as_str().unwrap().to_owned()
    }

    /// Queue run number `n` without waiting for it.
    pub async fn queue_run(&self, process: &ServeProcess, workflow: &str, n: usize) -> QueuedRun {
        let answer = self
            .post(
                process,
                &format!("/api/workflows/{workflow}/execute?wait=false"),
                json!({"input": {"order": format!("R-{n}")}}),
            )
            .await;
        QueuedRun {
            id: answer["run"]["id"].as_str().unwrap().to_owned(),
            order: format!("R-{n}"),
            subject: format!("Order R-{n} shipped"),
        }
    }

    /// The auto-draft API counts one draft for each of the messages
    /// `delivered` (by id), none failed or pending, and lists exactly
    /// them; the drafts it lists.
    pub async fn assert_the_api_counts_each_draft_once(
        &self,
        process: &ServeProcess,
        integration: &str,
        delivered: &[&str],
    ) -> Vec<Value> {
        let state = self
            .get(
                process,
                &format!("/api/integrations/{integration}/auto-draft"),
            )
            .await;
        let stats = &state["stats"];
        assert_eq!(
            stats["drafts_created"],
            delivered.len(),
            "drafts counted: {stats}"
        );
        assert_eq!(stats["failed"], 0, "failed: {stats}");
        assert_eq!(stats["pending"], 0, "pending: {stats}");

        let listed = self
            .get(process, &format!("/api/integrations/{integration}/drafts"))
            .await;
        let listed = listed["drafts"].as_array().unwrap().clone();
        let mut sources: Vec<&str> = listed
            .iter()
            .map(|draft| draft["source_message_id"].as_str().unwrap())
            .collect();
        sources.sort_unstable();
        let mut expected = delivered.to_vec();
        expected.sort_unstable();
        assert_eq!(
            sources, expected,
            "the drafts the API lists, by source message"
        );
        listed
    }

    /// Poll `done` until it answers `Ok`, or fail with its last complaint
    /// and `process`'s last lines.
    pub async fn wait_for<F, Fut>(
        &self,
        what: &str,
        deadline: Duration,
        process: &ServeProcess,
        done: F,
    ) where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<(), String>>,
    {
        let started = Instant::now();
        loop {
            let complaint = match done().await {
                Ok(()) => {
                    self.say(format_args!(
                        "{what}: done after {:.1}s",
                        started.elapsed().as_secs_f64()
                    ));
                    return;
                }
                Err(complaint) => complaint,
            };
            assert!(
                started.elapsed() < deadline,
                "{what}: not done within {deadline:?}: {complaint}\n--- last lines of {} ---\n{}",
                process.name,
                process.tail(60)
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// How long to watch for late effects after the work is done.
pub fn quiet_window(lease: Duration) -> Duration {
    lease.min(Duration::from_secs(5)) + Duration::from_secs(1)
}
