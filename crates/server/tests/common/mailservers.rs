//! Real mail servers for tests: Debian's Dovecot (IMAP with IDLE and
//! SPECIAL-USE) and an aiosmtpd submission server delivering into it by
//! LMTP, started by `tests/mailservers/mailservers.py` in a temp dir and
//! stopped when dropped. `scripts/install-test-tools.sh` installs them.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::Duration;

use serde_json::Value;

pub const ALICE: &str = "alice@example.test";
pub const ALICE_PASSWORD: &str = "secret-alice";
pub const BOB: &str = "bob@example.test";
pub const BOB_PASSWORD: &str = "secret-bob";
pub const NO_DRAFTS: &str = "nodrafts@example.test";
pub const NO_DRAFTS_PASSWORD: &str = "secret-nodrafts";

/// How long the script may take to start or answer a command.
const ANSWER_WITHIN: Duration = Duration::from_secs(60);

pub struct MailServers {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    pub info: Value,
    _dir: tempfile::TempDir,
}

impl MailServers {
    pub fn start() -> MailServers {
        let dir = tempfile::tempdir().unwrap();
        let script = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/mailservers/mailservers.py"
        );
        let mut child = Command::new("python3")
            .arg(script)
            .arg("--dir")
            .arg(dir.path())
            // The user whose mailbox has no Drafts folder.
            .arg("--no-drafts")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python3 runs");
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (send, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if send.send(line).is_err() {
                    break;
                }
            }
        });
        let first = lines.recv_timeout(ANSWER_WITHIN).unwrap_or_else(|_| {
            panic!(
                "the mail servers did not start within {ANSWER_WITHIN:?} (Dovecot and aiosmtpd come from scripts/install-test-tools.sh, as .ci/run runs it; its error is above)"
            )
        });
        let info: Value = serde_json::from_str(&first).expect("the script's first line is JSON");
        MailServers {
            child,
            stdin: Some(stdin),
            lines,
            info,
            _dir: dir,
        }
    }

    pub fn port(&self, name: &str) -> u16 {
        let port = self.info[format!("{name}_port")]
            .as_u64()
            .unwrap_or_else(|| panic!("no port {name} in {}", self.info));
        u16::try_from(port).unwrap()
    }

    /// The CA that signed the servers' certificates (for `SSL_CERT_FILE`).
    pub fn ca(&self) -> String {
        self.info["ca"].as_str().unwrap().to_owned()
    }

    pub fn dir(&self) -> std::path::PathBuf {
        self.info["dir"].as_str().unwrap().into()
    }

    /// One control command (`password USER NEW`, `restart-dovecot`,
    /// `deliver USER PATH`, `count USER MAILBOX HEADER VALUE`,
    /// `reset-uidvalidity USER`); its answer.
    pub fn command(&mut self, line: &str) -> Value {
        let stdin = self.stdin.as_mut().expect("running");
        writeln!(stdin, "{line}").unwrap();
        stdin.flush().unwrap();
        let answer = self
            .lines
            .recv_timeout(ANSWER_WITHIN)
            .unwrap_or_else(|_| panic!("no answer to `{line}` within {ANSWER_WITHIN:?}"));
        let answer: Value = serde_json::from_str(&answer).unwrap();
        assert_eq!(answer["ok"], true, "`{line}`: {answer}");
        answer
    }

    /// Deliver `raw` into `user`'s INBOX (through Dovecot's LMTP).
    pub fn deliver(&mut self, user: &str, raw: &str) {
        let path = self
            .dir()
            .join(format!("incoming-{}.eml", fastrand::u64(..)));
        std::fs::write(&path, raw).unwrap();
        self.command(&format!("deliver {user} {}", path.display()));
    }

    /// How many messages of `user`'s `mailbox` have `header: value`.
    pub fn count(&mut self, user: &str, mailbox: &str, header: &str, value: &str) -> u64 {
        self.command(&format!("count {user} {mailbox} {header} {value}"))["count"]
            .as_u64()
            .unwrap()
    }

    /// Give `user`'s INBOX a new UIDVALIDITY, its messages kept (renumbered
    /// from UID 1), as a server that rebuilt its index; restarts Dovecot,
    /// cutting every IMAP connection. The new UIDVALIDITY.
    pub fn reset_uidvalidity(&mut self, user: &str) -> u64 {
        self.command(&format!("reset-uidvalidity {user}"))["uidvalidity"]
            .as_u64()
            .unwrap()
    }

    /// The body of `POST /api/integrations/imap` for `user` (IMAP on
    /// implicit TLS, SMTP with STARTTLS).
    pub fn connect_body(&self, user: &str, password: &str) -> Value {
        self.connect_body_on(self.port("imaps"), user, password)
    }

    /// [`Self::connect_body`] with IMAP through the stalling proxy
    /// (`imaps_proxy_port`, same certificate): while `DIR/faults/stall-append`
    /// exists, Dovecot's answer to an APPEND is held back for the seconds
    /// the file holds (default 10), the message already appended.
    pub fn connect_body_through_proxy(&self, user: &str, password: &str) -> Value {
        self.connect_body_on(self.port("imaps_proxy"), user, password)
    }

    fn connect_body_on(&self, imap_port: u16, user: &str, password: &str) -> Value {
        serde_json::json!({
            "email": user,
            "imap": {"host": "localhost", "port": imap_port, "security": "tls"},
            "smtp": {"host": "localhost", "port": self.port("submission_starttls"), "security": "starttls"},
            "username": user,
            "password": password,
        })
    }

    /// The settings the app needs to reach these servers.
    pub fn app_env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("SSL_CERT_FILE", self.ca()),
            (
                "MAILWRIGHT_OUTBOUND_ALLOW_PRIVATE_NETWORKS",
                "true".to_owned(),
            ),
        ]
    }
}

impl Drop for MailServers {
    fn drop(&mut self) {
        // Closing stdin asks the script to stop Dovecot and exit.
        drop(self.stdin.take());
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            match self.child.try_wait() {
                Ok(Some(_)) => return,
                _ if std::time::Instant::now() > deadline => {
                    let _ = self.child.kill();
                    return;
                }
                _ => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    }
}

/// The app trusting `servers` (`extra` settings on top), a workspace, and
/// Alice's mailbox connected through the API: the app, the tenant and the
/// connection's id.
pub async fn connected_app(
    servers: &MailServers,
    extra: &[(&'static str, String)],
) -> (super::TestApp, super::Tenant, String) {
    let mut env = servers.app_env();
    env.extend(extra.iter().cloned());
    let app = super::spawn_app_with(&env).await;
    let tenant = app.bare_tenant("acme").await;
    let id = connect(&app, &tenant, servers, ALICE, ALICE_PASSWORD).await;
    (app, tenant, id)
}

/// Connect `user`'s mailbox through the API; the connection's id.
pub async fn connect(
    app: &super::TestApp,
    tenant: &super::Tenant,
    servers: &MailServers,
    user: &str,
    password: &str,
) -> String {
    let response = app
        .client
        .post(app.url("/api/integrations/imap"))
        .bearer_auth(&tenant.key)
        .json(&servers.connect_body(user, password))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let integration: Value = response.json().await.unwrap();
    integration["id"].as_str().unwrap().to_owned()
}

/// Switch auto-draft on for connection `id` and run what that queues.
pub async fn enable_autodraft(app: &super::TestApp, tenant: &super::Tenant, id: &str) {
    let switched = app
        .client
        .put(app.url(&format!("/api/integrations/{id}/auto-draft")))
        .bearer_auth(&tenant.key)
        .json(&serde_json::json!({"enabled": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(switched.status(), 200, "{}", switched.text().await.unwrap());
    drain(app).await;
}

/// Run queued jobs (retries made due) until none is left.
pub async fn drain(app: &super::TestApp) {
    for _ in 0..5 {
        store::testing::make_jobs_due(&app.store).await;
        if app.worker.drain().await.unwrap() == 0 {
            return;
        }
    }
}

/// What a poll does, now: sync every mailbox and draft what it found.
pub async fn poll(app: &super::TestApp) {
    store::testing::make_polls_due(&app.store).await;
    app.autodraft.poll_tick(store::now()).await.unwrap();
    drain(app).await;
}

/// `GET path` with `tenant`'s key, as JSON.
pub async fn get_json(app: &super::TestApp, tenant: &super::Tenant, path: &str) -> Value {
    app.get_as(path, &tenant.key).await.json().await.unwrap()
}
