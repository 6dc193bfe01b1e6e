//! The real `mailwright` binary as child processes: `serve` started on port 0
//! against a test database and killed with SIGKILL when a test says so, and
//! the `admin` commands that give it a user and an API key.
//!
//! Each child gets a cleared environment (PATH and the settings given here
//! only), logs JSON, and has its stdout and stderr drained by threads into a
//! log kept for failure messages: a test that fails shows what the process
//! said last.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use store::testing::TestDatabase;

use super::TEST_ENCRYPTION_KEYS;

/// How long a start may take until the `listening` line, and then until
/// `/api/ready` answers 200 (the first start applies migrations).
pub const START_DEADLINE: Duration = Duration::from_secs(60);

/// The end of the warning a process logs for each `MAILWRIGHT_*` variable it
/// does not read: `NAME is set but is not a setting this version ...`.
const IGNORED_SETTING: &str = " is not a setting this version of Mailwright reads; it is ignored";

/// The job lease of a binary that does not read
/// `MAILWRIGHT_JOB_LEASE_SECONDS` (it logs the setting as ignored).
pub const DEFAULT_JOB_LEASE: Duration = Duration::from_secs(120);

/// The topic and push service account of [`ProcessEnv::with_gmail_push`].
pub const PUSH_TOPIC: &str = "projects/mailwright-test/topics/gmail";
pub const PUSH_SERVICE_ACCOUNT: &str = "gmail-push@mailwright-test.iam.gserviceaccount.com";

/// The Google sandbox with Ann's mailbox, served by this test process (so
/// its state outlives any child), and its URL.
pub async fn google_sandbox() -> (sandbox::Sandbox, String) {
    let sandbox = sandbox::Sandbox::new(
        sandbox::SandboxConfig::default()
            .with_account(sandbox::AccountSpec::new(super::google::ANN, "Ann Example")),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(sandbox::serve(listener, sandbox.clone()));
    (sandbox, url)
}

/// A client for the children: redirects are read, not followed (the OAuth
/// callback), and no call waits forever.
pub fn test_client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// The environment of every `mailwright` child of one test.
#[derive(Clone)]
pub struct ProcessEnv {
    vars: Vec<(String, String)>,
}

impl ProcessEnv {
    /// The database and data dir of `db`, port 0, JSON logs and the test
    /// encryption key.
    pub fn new(db: &TestDatabase) -> ProcessEnv {
        ProcessEnv { vars: Vec::new() }
            .with("MAILWRIGHT_DATABASE_URL", db.url.expose())
            .with("MAILWRIGHT_DATA_DIR", db.data_dir().display().to_string())
            .with("MAILWRIGHT_LISTEN", "127.0.0.1:0")
            .with("MAILWRIGHT_LOG_FORMAT", "json")
            .with("MAILWRIGHT_ENCRYPTION_KEYS", TEST_ENCRYPTION_KEYS)
    }

    /// One more setting (a later one with the same name wins).
    pub fn with(mut self, name: &str, value: impl Into<String>) -> ProcessEnv {
        self.vars.retain(|(existing, _)| existing != name);
        self.vars.push((name.to_owned(), value.into()));
        self
    }

    /// Google's OAuth and Gmail endpoints at the sandbox served on
    /// `sandbox_url`, with the test OAuth client.
    pub fn with_google_sandbox(self, sandbox_url: &str) -> ProcessEnv {
        use super::google::{CLIENT_ID, CLIENT_SECRET};
        self.with("MAILWRIGHT_GOOGLE_CLIENT_ID", CLIENT_ID)
            .with("MAILWRIGHT_GOOGLE_CLIENT_SECRET", CLIENT_SECRET)
            .with(
                "MAILWRIGHT_GOOGLE_AUTH_URL",
                format!("{sandbox_url}/o/oauth2/v2/auth"),
            )
            .with(
                "MAILWRIGHT_GOOGLE_TOKEN_URL",
                format!("{sandbox_url}/token"),
            )
            .with(
                "MAILWRIGHT_GOOGLE_REVOKE_URL",
                format!("{sandbox_url}/revoke"),
            )
            .with(
                "MAILWRIGHT_GOOGLE_USERINFO_URL",
                format!("{sandbox_url}/v1/userinfo"),
            )
            .with("MAILWRIGHT_GMAIL_API_URL", sandbox_url)
    }

    /// Microsoft's identity platform and Graph at the sandbox served on
    /// `sandbox_url` (its `/microsoft` part), with the test Microsoft app.
    pub fn with_microsoft_sandbox(self, sandbox_url: &str) -> ProcessEnv {
        use super::google::{MS_CLIENT_ID, MS_CLIENT_SECRET};
        self.with("MAILWRIGHT_MICROSOFT_CLIENT_ID", MS_CLIENT_ID)
            .with("MAILWRIGHT_MICROSOFT_CLIENT_SECRET", MS_CLIENT_SECRET)
            .with(
                "MAILWRIGHT_MICROSOFT_AUTH_URL",
                format!("{sandbox_url}/microsoft/common/oauth2/v2.0/authorize"),
            )
            .with(
                "MAILWRIGHT_MICROSOFT_TOKEN_URL",
                format!("{sandbox_url}/microsoft/common/oauth2/v2.0/token"),
            )
            .with(
                "MAILWRIGHT_GRAPH_API_URL",
                format!("{sandbox_url}/microsoft"),
            )
    }

    /// Gmail push through the sandbox's Pub/Sub: [`PUSH_TOPIC`], OIDC push
    /// for `audience` from [`PUSH_SERVICE_ACCOUNT`] trusting the sandbox's
    /// certificates, and an hour between polls (the safety net only).
    pub fn with_gmail_push(self, sandbox_url: &str, audience: &str) -> ProcessEnv {
        self.with("MAILWRIGHT_GMAIL_PUBSUB_TOPIC", PUSH_TOPIC)
            .with("MAILWRIGHT_PUSH_AUDIENCE", audience)
            .with("MAILWRIGHT_PUSH_SERVICE_ACCOUNT", PUSH_SERVICE_ACCOUNT)
            .with(
                "MAILWRIGHT_GOOGLE_CERTS_URL",
                format!("{sandbox_url}{}", sandbox::Sandbox::CERTS_PATH),
            )
            .with("MAILWRIGHT_AUTODRAFT_POLL_SECONDS", "3600")
    }

    /// An owner of workspace `workspace` and an API key of it, made with
    /// `mailwright admin` (which also migrates).
    pub fn owner_key(&self, workspace: &str) -> String {
        tokio::task::block_in_place(|| {
            self.create_user(
                &format!("owner@{}.example", workspace.to_lowercase()),
                "a long enough password",
                workspace,
            );
            self.create_api_key(workspace)
        })
    }

    /// `mailwright` with this environment only (and PATH).
    pub fn command(&self) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_mailwright"));
        command
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(self.vars.iter().map(|(name, value)| (name, value)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        command
    }

    /// `mailwright admin create-user --email E --password-stdin --workspace W`.
    pub fn create_user(&self, email: &str, password: &str, workspace: &str) {
        let mut child = self
            .command()
            .args([
                "admin",
                "create-user",
                "--email",
                email,
                "--password-stdin",
                "--workspace",
                workspace,
            ])
            .stdin(Stdio::piped())
            .spawn()
            .expect("mailwright admin create-user starts");
        child
            .stdin
            .take()
            .expect("a piped stdin")
            .write_all(format!("{password}\n").as_bytes())
            .expect("the password is written");
        let output = wait_for_output(child, "admin create-user");
        assert!(
            output.status.success(),
            "admin create-user failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }

    /// `mailwright admin create-api-key --workspace W`: the key it prints.
    pub fn create_api_key(&self, workspace: &str) -> String {
        let child = self
            .command()
            .args(["admin", "create-api-key", "--workspace", workspace])
            .spawn()
            .expect("mailwright admin create-api-key starts");
        let output = wait_for_output(child, "admin create-api-key");
        assert!(
            output.status.success(),
            "admin create-api-key failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        let key = String::from_utf8(output.stdout)
            .expect("the key is UTF-8")
            .trim()
            .to_owned();
        assert!(key.starts_with("mw_"), "only the key on stdout: {key}");
        key
    }

    /// Start `mailwright serve` and wait until it says where it listens and
    /// `/api/ready` answers 200.
    pub async fn serve(&self, name: &str, client: &reqwest::Client) -> ServeProcess {
        self.serve_with(name, client, &[]).await
    }

    /// [`ProcessEnv::serve`] with `mailwright serve`'s flags `args`.
    pub async fn serve_with(
        &self,
        name: &str,
        client: &reqwest::Client,
        args: &[&str],
    ) -> ServeProcess {
        let started = Instant::now();
        let mut child = self
            .command()
            .arg("serve")
            .args(args)
            .spawn()
            .expect("mailwright serve starts");
        let log = Arc::new(Mutex::new(ProcessLog::default()));
        let stdout = child.stdout.take().expect("a piped stdout");
        let stderr = child.stderr.take().expect("a piped stderr");
        drain(stdout, Arc::clone(&log), Stream::Stdout);
        drain(stderr, Arc::clone(&log), Stream::Stderr);
        let mut process = ServeProcess {
            name: name.to_owned(),
            pid: child.id(),
            child,
            address: String::new(),
            log,
        };
        let give_up = started + START_DEADLINE;
        loop {
            if let Some(address) = process.log.lock().unwrap().listening.clone() {
                process.address = address;
                break;
            }
            if let Some(status) = process.child.try_wait().expect("the child can be polled") {
                panic!(
                    "{name} exited with {status} before listening; it said:\n{}",
                    process.tail(40)
                );
            }
            assert!(
                Instant::now() < give_up,
                "{name} did not log `listening` within {START_DEADLINE:?}; it said:\n{}",
                process.tail(40)
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        process.wait_ready(client, give_up).await;
        process
    }
}

fn wait_for_output(child: Child, what: &str) -> std::process::Output {
    let pid = child.id();
    let (done, outcome) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = done.send(child.wait_with_output());
    });
    match outcome.recv_timeout(START_DEADLINE) {
        Ok(output) => output.expect("the child's output can be read"),
        Err(_) => {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
            panic!("mailwright {what} did not finish within {START_DEADLINE:?}");
        }
    }
}

#[derive(Clone, Copy, Debug)]
enum Stream {
    Stdout,
    Stderr,
}

/// What a process said, line by line, and where it listens once it said so.
#[derive(Default)]
struct ProcessLog {
    lines: Vec<String>,
    listening: Option<String>,
}

fn drain(stream: impl Read + Send + 'static, log: Arc<Mutex<ProcessLog>>, which: Stream) {
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines().map_while(Result::ok) {
            let mut log = log.lock().unwrap();
            if matches!(which, Stream::Stdout)
                && log.listening.is_none()
                && let Ok(entry) = serde_json::from_str::<serde_json::Value>(&line)
                && entry["message"]
                    .as_str()
                    .is_some_and(|message| message.starts_with("listening"))
                && let Some(address) = entry["address"].as_str()
            {
                log.listening = Some(address.to_owned());
            }
            log.lines.push(match which {
                Stream::Stdout => line,
                Stream::Stderr => format!("[stderr] {line}"),
            });
        }
    });
}

/// A running `mailwright serve`; killed (SIGKILL) when dropped.
pub struct ServeProcess {
    pub name: String,
    pub pid: u32,
    child: Child,
    /// `127.0.0.1:PORT`, from its `listening` log line.
    pub address: String,
    log: Arc<Mutex<ProcessLog>>,
}

/// Back from the provider's consent screen at `redirect`, through the
/// confirmation as a browser goes: the id of the `kind` connection made.
async fn connection_made(client: &reqwest::Client, redirect: &str, kind: &str) -> String {
    let location = mailwright::ui::connect_confirm::finish_consent_as_browser(client, redirect)
        .await
        .unwrap();
    let outcome = super::google::outcome(&location);
    assert_eq!(
        outcome.get("connected").map(String::as_str),
        Some(kind),
        "{location}"
    );
    outcome["integration_id"].clone()
}

impl ServeProcess {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    /// Connect Ann's Gmail through this process with API key `key`,
    /// consenting in `sandbox`; the integration's id.
    pub async fn connect_gmail(
        &self,
        sandbox: &sandbox::Sandbox,
        client: &reqwest::Client,
        key: &str,
    ) -> String {
        use super::google::{CLIENT_ID, CLIENT_SECRET};
        sandbox.register_client(sandbox::OAuthClient::new(
            CLIENT_ID,
            CLIENT_SECRET,
            [self.url("/api/auth/oauth/google/callback")],
        ));
        let answer: serde_json::Value = client
            .post(self.url("/api/integrations/google/connect"))
            .bearer_auth(key)
            .json(&serde_json::json!({"type": "gmail"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let authorization_url = answer["authorization_url"].as_str().unwrap();
        let redirect = sandbox
            .approve(authorization_url, sandbox::Consent::allow_all())
            .expect("the sandbox consents");
        connection_made(client, &redirect, "gmail").await
    }

    /// Connect Ann's Outlook ([`ANN_OUTLOOK`](super::google::ANN_OUTLOOK),
    /// made in `sandbox` if missing) through this process with API key
    /// `key`, consenting to everything on the sandbox's Microsoft screen;
    /// the integration's id.
    pub async fn connect_outlook(
        &self,
        sandbox: &sandbox::Sandbox,
        client: &reqwest::Client,
        key: &str,
    ) -> String {
        use super::google::{ANN_OUTLOOK, MS_CLIENT_ID, MS_CLIENT_SECRET};
        let microsoft = sandbox.microsoft();
        microsoft.register_app(sandbox::OAuthClient::new(
            MS_CLIENT_ID,
            MS_CLIENT_SECRET,
            [self.url("/api/auth/oauth/microsoft/callback")],
        ));
        microsoft.create_account(ANN_OUTLOOK, "Ann Example");
        let answer = client
            .post(self.url("/api/integrations/microsoft/connect"))
            .bearer_auth(key)
            .json(&serde_json::json!({"type": "outlook"}))
            .send()
            .await
            .unwrap();
        let status = answer.status();
        let answer: serde_json::Value = answer.json().await.unwrap();
        assert_eq!(status, 200, "connecting Outlook: {answer}");
        let authorization_url = answer["authorization_url"].as_str().unwrap();
        let redirect = microsoft
            .approve(authorization_url, sandbox::Consent::allow_all())
            .expect("the sandbox consents");
        connection_made(client, &redirect, "outlook").await
    }

    /// `GET path` with API key `key`: the JSON answer.
    pub async fn get_json(
        &self,
        client: &reqwest::Client,
        key: &str,
        path: &str,
    ) -> serde_json::Value {
        let answer = client.get(self.url(path)).bearer_auth(key).send().await;
        answer.unwrap().json().await.unwrap()
    }

    /// Have `sandbox` push watched mailboxes' changes here, signed for
    /// `audience` as [`PUSH_SERVICE_ACCOUNT`].
    pub fn receive_pushes_from(&self, sandbox: &sandbox::Sandbox, audience: &str) {
        sandbox.set_push_subscription(sandbox::PushSubscription {
            endpoint: self.url("/api/push/gmail"),
            audience: audience.to_owned(),
            service_account: PUSH_SERVICE_ACCOUNT.to_owned(),
        });
    }

    /// Switch auto-draft on for `integration`; the AutoDraft answer.
    pub async fn enable_autodraft(
        &self,
        client: &reqwest::Client,
        key: &str,
        integration: &str,
    ) -> serde_json::Value {
        let answer = client
            .put(self.url(&format!("/api/integrations/{integration}/auto-draft")))
            .bearer_auth(key)
            .json(&serde_json::json!({"enabled": true}))
            .send()
            .await
            .unwrap();
        let status = answer.status();
        let body: serde_json::Value = answer.json().await.unwrap();
        assert_eq!(status, 200, "switching auto-draft on: {body}");
        assert_eq!(body["enabled"], true, "{body}");
        body
    }

    /// Poll `/api/ready` until it answers 200.
    async fn wait_ready(&mut self, client: &reqwest::Client, give_up: Instant) {
        let ready = self.url("/api/ready");
        loop {
            if let Ok(answer) = client.get(&ready).send().await
                && answer.status() == 200
            {
                return;
            }
            if let Some(status) = self.child.try_wait().expect("the child can be polled") {
                panic!(
                    "{} exited with {status} before it was ready; it said:\n{}",
                    self.name,
                    self.tail(40)
                );
            }
            assert!(
                Instant::now() < give_up,
                "{} was not ready within {START_DEADLINE:?}; it said:\n{}",
                self.name,
                self.tail(40)
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// SIGKILL (kill -9): no shutdown, no finishing of anything in flight.
    pub fn kill_9(&mut self) {
        self.child.kill().expect("the child can be killed");
        self.child.wait().expect("the killed child is reaped");
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        self.child
            .try_wait()
            .expect("the child can be polled")
            .is_none()
    }

    /// Its last `lines` lines of output, for failure messages.
    pub fn tail(&self, lines: usize) -> String {
        let log = self.log.lock().unwrap();
        let skip = log.lines.len().saturating_sub(lines);
        log.lines[skip..].join("\n")
    }

    /// Every line it wrote so far.
    pub fn lines(&self) -> Vec<String> {
        self.log.lock().unwrap().lines.clone()
    }

    /// The settings it reported as ignored (`NAME is set but is not a setting
    /// this version of Mailwright reads`).
    pub fn ignored_settings(&self) -> Vec<String> {
        self.log
            .lock()
            .unwrap()
            .lines
            .iter()
            .filter_map(|line| {
                let entry: serde_json::Value = serde_json::from_str(line).ok()?;
                let message = entry["message"].as_str()?;
                let name = message
                    .strip_suffix(IGNORED_SETTING)?
                    .strip_suffix(" is set but")?;
                Some(name.to_owned())
            })
            .collect()
    }

    /// The job lease it runs with: the configured one, or the built-in
    /// 120 s when it ignored `MAILWRIGHT_JOB_LEASE_SECONDS`.
    pub fn effective_job_lease(&self, configured: Duration) -> Duration {
        if self
            .ignored_settings()
            .iter()
            .any(|name| name == "MAILWRIGHT_JOB_LEASE_SECONDS")
        {
            DEFAULT_JOB_LEASE
        } else {
            configured
        }
    }
}

/// Writes everything a process said to a file when the test panics while
/// it is alive (a failure message only has room for the last lines).
pub struct SaveLogOnPanic<'a> {
    pub process: &'a ServeProcess,
    pub path: PathBuf,
}

impl Drop for SaveLogOnPanic<'_> {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            return;
        }
        let mut text = self.process.lines().join("\n");
        text.push('\n');
        match std::fs::write(&self.path, text) {
            Ok(()) => eprintln!(
                "the whole log of {} is in {}",
                self.process.name,
                self.path.display()
            ),
            Err(error) => eprintln!("could not write {}: {error}", self.path.display()),
        }
    }
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
