//! The `mailwright` binary as an operator meets it: exit codes, one-line
//! configuration errors, no secrets on failure, clean shutdown on SIGTERM.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use store::testing::TestDatabase;

const DEADLINE: Duration = Duration::from_secs(30);

fn mailwright(db: &TestDatabase) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_mailwright"));
    command
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("MAILWRIGHT_DATA_DIR", db.data_dir())
        .env("MAILWRIGHT_DATABASE_URL", db.url.expose())
        .env("MAILWRIGHT_LISTEN", "127.0.0.1:0")
        .env("MAILWRIGHT_LOG_FORMAT", "json")
        .env(
            "MAILWRIGHT_ENCRYPTION_KEYS",
            "test:bWFpbHdyaWdodC10ZXN0LWtleS0wMTIzNDU2Nzg5YWI=",
        )
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

fn wait_with_deadline(child: &mut Child) -> std::process::ExitStatus {
    let give_up = Instant::now() + DEADLINE;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > give_up {
            let _ = child.kill();
            panic!("mailwright did not exit within {DEADLINE:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The address from the JSON log line starting with "listening" (port 0
/// became a real port), and the rest of stdout's lines as they come.
fn listening_address(child: &mut Child) -> (String, mpsc::Receiver<String>) {
    let (address, _, lines) = listening_address_and_before(child);
    (address, lines)
}

/// The address of the `listening` line, the log lines before it, and the
/// rest to come.
fn listening_address_and_before(
    child: &mut Child,
) -> (String, Vec<String>, mpsc::Receiver<String>) {
    let stdout = child.stdout.take().unwrap();
    let (lines_tx, lines) = mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    let give_up = Instant::now() + DEADLINE;
    let mut before = Vec::new();
    loop {
        let line = lines
            .recv_timeout(give_up.saturating_duration_since(Instant::now()))
            .expect("a `listening` log line before the deadline");
        let entry: serde_json::Value =
            serde_json::from_str(&line).unwrap_or_else(|_| panic!("a JSON log line: {line}"));
        if entry["message"]
            .as_str()
            .unwrap_or_default()
            .starts_with("listening")
        {
            return (entry["address"].as_str().unwrap().to_owned(), before, lines);
        }
        before.push(line);
    }
}

#[tokio::test]
async fn a_bad_setting_stops_startup_with_one_line_naming_it() {
    let db = TestDatabase::new().await;
    let output = mailwright(&db)
        .env("MAILWRIGHT_LISTEN", "everywhere")
        .arg("serve")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("configuration error: MAILWRIGHT_LISTEN: `everywhere`"),
        "{stderr}"
    );
}

#[tokio::test]
async fn an_unreachable_database_fails_startup_without_showing_its_password() {
    let db = TestDatabase::new().await;
    let output = mailwright(&db)
        // Port 1 on loopback: nothing listens, the connection is refused at once.
        .env(
            "MAILWRIGHT_DATABASE_URL",
            "postgres://mailwright:pa55word-xyz@127.0.0.1:1/mailwright",
        )
        .arg("migrate")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stdout = String::from_utf8(output.stdout).unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(
        stderr.contains("cannot open the database postgres://127.0.0.1:1/mailwright"),
        "{stderr}"
    );
    for text in [&stdout, &stderr] {
        assert!(!text.contains("pa55word-xyz"), "password leaked: {text}");
    }
}

#[tokio::test]
async fn migrate_applies_migrations_and_exits() {
    let db = TestDatabase::new().await;
    let output = mailwright(&db).arg("migrate").output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let store = db.connect().await;
    assert_eq!(store.readiness().await.unwrap(), store::Readiness::Ready);
}

#[tokio::test]
async fn serve_answers_then_stops_cleanly_on_sigterm() {
    let db = TestDatabase::new().await;
    let mut child = mailwright(&db).arg("serve").spawn().unwrap();
    let (address, lines) = listening_address(&mut child);

    mailwright::app::install_crypto_provider();
    let ready = reqwest::get(format!("http://{address}/api/ready"))
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);

    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = wait_with_deadline(&mut child);
    assert!(status.success(), "exit status after SIGTERM: {status}");
    // The process has exited; its last lines may still be on their way
    // through the reader thread, which ends at the end of its output.
    let give_up = Instant::now() + DEADLINE;
    let mut rest = Vec::new();
    while let Ok(line) = lines.recv_timeout(give_up.saturating_duration_since(Instant::now())) {
        rest.push(line);
    }
    assert!(
        rest.iter().any(|line| line.contains("shutdown complete")),
        "{rest:?}"
    );
}

#[tokio::test]
async fn serve_takes_its_address_and_data_folder_as_flags_and_says_what_to_do_first() {
    let db = TestDatabase::new().await;
    let data = tempfile::tempdir().unwrap();
    // The flags win over the environment (whose address would not parse).
    let mut child = mailwright(&db)
        .env("MAILWRIGHT_LISTEN", "not an address")
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data.path())
        .spawn()
        .unwrap();
    let (address, before, _lines) = listening_address_and_before(&mut child);
    let _ = child.kill();
    let _ = child.wait();
    let said = before.join("\n");
    assert!(
        said.contains(&format!(
            "open http://{address}/setup to create the owner account"
        )),
        "{said}"
    );
    assert!(said.contains("Google is not configured"), "{said}");

    // `migrate --data-dir` puts the SQLite database there.
    let folder = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_mailwright"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .args(["migrate", "--data-dir"])
        .arg(folder.path())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(folder.path().join("mailwright.db").exists());
}

#[test]
fn help_names_every_command() {
    let output = Command::new(env!("CARGO_BIN_EXE_mailwright"))
        .arg("--help")
        .output()
        .unwrap();
    assert!(output.status.success());
    let help = String::from_utf8(output.stdout).unwrap();
    for word in ["serve", "migrate", "--config", "MAILWRIGHT_DATABASE_URL"] {
        assert!(
            help.contains(word),
            "--help does not mention {word}:\n{help}"
        );
    }
}

#[tokio::test]
async fn admin_creates_a_user_and_an_api_key_that_works() {
    use std::io::Write;
    let db = TestDatabase::new().await;

    let mut create_user = mailwright(&db)
        .args([
            "admin",
            "create-user",
            "--email",
            "Ops@Example.com",
            "--password-stdin",
            "--workspace",
            "Ops Team",
        ])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    create_user
        .stdin
        .take()
        .unwrap()
        .write_all(b"a long enough password\n")
        .unwrap();
    let output = create_user.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let said = String::from_utf8(output.stdout).unwrap();
    assert!(
        said.contains("ops@example.com") && said.contains("Ops Team"),
        "{said}"
    );
    assert!(!said.contains("a long enough password"));

    let output = mailwright(&db)
        .args([
            "admin",
            "create-api-key",
            "--workspace",
            "Ops Team",
            "--name",
            "ci",
        ])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let key = String::from_utf8(output.stdout).unwrap().trim().to_owned();
    assert!(key.starts_with("mw_"), "only the key on stdout: {key}");

    // A short password is refused, with the reason, and creates nothing.
    let mut weak = mailwright(&db)
        .args([
            "admin",
            "create-user",
            "--email",
            "weak@example.com",
            "--password-stdin",
        ])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    weak.stdin.take().unwrap().write_all(b"short\n").unwrap();
    let output = weak.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("at least 10 characters"));

    let store = db.connect().await;
    let config = {
        let env = vec![
            ("MAILWRIGHT_LISTEN".to_owned(), "127.0.0.1:0".to_owned()),
            ("MAILWRIGHT_DATABASE_URL".to_owned(), db.url.expose()),
            (
                "MAILWRIGHT_ENCRYPTION_KEYS".to_owned(),
                "test:bWFpbHdyaWdodC10ZXN0LWtleS0wMTIzNDU2Nzg5YWI=".to_owned(),
            ),
        ];
        mailwright::Config::load(env, None).unwrap().0
    };
    let app = mailwright::Application::build(config, store).await.unwrap();
    let address = app.local_addr();
    tokio::spawn(app.run_until(std::future::pending()));
    let me: serde_json::Value = reqwest::Client::new()
        .get(format!("http://{address}/api/me"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        me["email"], "ops@example.com",
        "the key acts as the workspace's owner: {me}"
    );
}

#[tokio::test]
async fn the_sandbox_runs_alone_and_shows_its_consent_screen() {
    let db = TestDatabase::new().await;
    let mut child = mailwright(&db)
        .args(["sandbox", "--listen", "127.0.0.1:0"])
        .spawn()
        .unwrap();
    let (address, _lines) = listening_address(&mut child);
    mailwright::app::install_crypto_provider();
    let consent = reqwest::Client::new()
        .get(format!("http://{address}/o/oauth2/v2/auth"))
        .query(&[
            ("client_id", "sandbox-client-id"),
            (
                "redirect_uri",
                "http://127.0.0.1:8080/api/auth/oauth/google/callback",
            ),
            ("response_type", "code"),
            (
                "scope",
                "openid email https://www.googleapis.com/auth/gmail.compose",
            ),
            ("state", "s"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(consent.status(), 200);
    let page = consent.text().await.unwrap();
    assert!(
        page.contains("Sandbox") && page.contains("gmail.compose"),
        "{page}"
    );

    assert!(
        Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap()
            .success()
    );
    assert!(wait_with_deadline(&mut child).success());
}

/// `serve` on a SQLite data dir of its own with the generated key file (no
/// `MAILWRIGHT_ENCRYPTION_KEYS`): started until it listens, then killed.
/// The JSON log lines it printed up to then.
fn serve_on_generated_key(data_dir: &std::path::Path) -> Vec<String> {
    let db = format!("sqlite://{}/mailwright.db", data_dir.display());
    let mut child = Command::new(env!("CARGO_BIN_EXE_mailwright"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("MAILWRIGHT_DATA_DIR", data_dir)
        .env("MAILWRIGHT_DATABASE_URL", db)
        .env("MAILWRIGHT_LISTEN", "127.0.0.1:0")
        .env("MAILWRIGHT_LOG_FORMAT", "json")
        .arg("serve")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let mut seen = Vec::new();
    for line in stdout.lines().map_while(Result::ok) {
        let listening = line.contains("\"listening\"");
        seen.push(line);
        if listening {
            break;
        }
    }
    child.kill().unwrap();
    wait_with_deadline(&mut child);
    assert!(
        seen.last()
            .is_some_and(|line| line.contains("\"listening\"")),
        "it started: {seen:?}"
    );
    seen
}

#[cfg(unix)]
#[tokio::test]
async fn data_files_are_private_and_a_lost_key_file_stops_startup_without_a_new_key() {
    use std::os::unix::fs::PermissionsExt;
    let mode =
        |path: &std::path::Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    let root = tempfile::tempdir().unwrap();
    let data_dir = root.path().join("data");
    serve_on_generated_key(&data_dir);
    let key_file = data_dir.join("encryption.key");
    assert_eq!(mode(&data_dir), 0o700, "the data folder");
    assert_eq!(mode(&data_dir.join("mailwright.db")), 0o600, "the database");
    assert_eq!(mode(&key_file), 0o600, "the key file");

    // A key file others can read is named in a warning.
    std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let lines = serve_on_generated_key(&data_dir);
    assert!(
        lines
            .iter()
            .any(|line| line.contains("chmod 600") && line.contains("\"WARN\"")),
        "{lines:?}"
    );

    // The key file is lost while the database remembers its key.
    std::fs::remove_file(&key_file).unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_mailwright"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("MAILWRIGHT_DATA_DIR", &data_dir)
        .env(
            "MAILWRIGHT_DATABASE_URL",
            format!("sqlite://{}/mailwright.db", data_dir.display()),
        )
        .env("MAILWRIGHT_LISTEN", "127.0.0.1:0")
        .arg("serve")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("encryption key file")
            && stderr.contains("is missing")
            && stderr.contains("k1"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("MAILWRIGHT_ENCRYPTION_KEYS: key"),
        "not the misleading wrong-key line: {stderr}"
    );
    assert!(!key_file.exists(), "no new key was generated");
}
