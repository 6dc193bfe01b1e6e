//! `mailwright doctor` against the real binary (issue "Gmail in
//! production"): on a healthy set-up (Google's sandbox with the client
//! registered, push configured, a real SMTP server, a connected mailbox
//! watched by Gmail) every check is ok and it exits 0; with a wrong
//! redirect URI, a revoked connection, an unreachable SMTP server and a
//! topic Gmail refuses, it names each with its fix and exits 1, and it has
//! changed nothing. A malformed setting is one finding; the rest still run.

mod common;

use common::google::{ANN, CLIENT_ID};
use common::process::{PUSH_TOPIC, ProcessEnv, SaveLogOnPanic, google_sandbox, test_client};
use common::smtp::SmtpServer;
use sandbox::Fault;
use serde_json::{Value, json};
use store::testing::TestDatabase;

/// `mailwright doctor [--json]` with `env`: its exit code and stdout.
fn doctor(env: &ProcessEnv, json: bool) -> (i32, String) {
    let mut command = env.command();
    command.arg("doctor");
    if json {
        command.arg("--json");
    }
    let output = tokio::task::block_in_place(|| command.output().expect("doctor runs"));
    let stdout = String::from_utf8(output.stdout).unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !stdout.contains("GOCSPX") && !stderr.contains("GOCSPX"),
        "no secret printed"
    );
    (output.status.code().unwrap_or(-1), stdout)
}

/// The line of check `name`.
fn line<'a>(text: &'a str, name: &str) -> &'a str {
    text.lines()
        .find(|line| line.get(6..).is_some_and(|rest| rest.starts_with(name)))
        .unwrap_or_else(|| panic!("no check `{name}` in:\n{text}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_passes_a_healthy_setup_and_names_each_problem_with_its_fix() {
    mailwright::app::install_crypto_provider();
    let (sandbox, sandbox_url) = google_sandbox().await;
    let smtp = SmtpServer::start();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let public = format!("http://127.0.0.1:{port}");
    let audience = format!("{public}/api/push/gmail");

    let db = TestDatabase::new().await;
    let env = ProcessEnv::new(&db)
        .with_google_sandbox(&sandbox_url)
        .with_gmail_push(&sandbox_url, &audience)
        .with("MAILWRIGHT_LISTEN", format!("127.0.0.1:{port}"))
        .with("MAILWRIGHT_PUBLIC_URL", public.clone())
        .with(
            "MAILWRIGHT_SMTP_URL",
            format!("smtp://127.0.0.1:{}", smtp.port),
        );
    let key = env.owner_key("Doctor");
    let client = test_client();
    let serve = env.serve("serve", &client).await;
    let _log = SaveLogOnPanic {
        process: &serve,
        path: std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("doctor-serve.log"),
    };
    serve.receive_pushes_from(&sandbox, &audience);
    let integration = serve.connect_gmail(&sandbox, &client, &key).await;
    serve.enable_autodraft(&client, &key, &integration).await;

    // Healthy: every check ok, exit 0.
    let (code, text) = doctor(&env, false);
    eprintln!("healthy:\n{text}");
    assert_eq!(code, 0, "{text}");
    let checks: Vec<&str> = text.lines().take_while(|line| !line.is_empty()).collect();
    assert!(checks.len() >= 10, "{text}");
    for check in &checks {
        assert!(check.starts_with("ok  "), "not ok: {check}\n{text}");
    }
    for name in [
        "configuration",
        "public URL",
        "Google OAuth client",
        "Gmail push",
        "system email",
        "reply writer",
        "database",
        "encryption key",
        &format!("watch {ANN}"),
        &format!("connection {ANN} (gmail)"),
    ] {
        line(&text, name);
    }
    let (code, json) = doctor(&env, true);
    assert_eq!(code, 0);
    let json: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(json["ok"], true);
    assert_eq!(json["summary"]["fail"], 0);
    assert_eq!(json["summary"]["warn"], 0);

    // A topic Gmail refuses: switched off and on again, the watch fails.
    sandbox.inject_fault(
        "watch",
        Fault::Status {
            status: 403,
            body: json!({"error": {"code": 403, "message": "User not authorized to perform this action.",
                "status": "PERMISSION_DENIED", "errors": [{"reason": "forbidden"}]}}),
        },
        1,
    );
    let switch = |enabled: bool| {
        client
            .put(serve.url(&format!("/api/integrations/{integration}/auto-draft")))
            .bearer_auth(&key)
            .json(&json!({ "enabled": enabled }))
            .send()
    };
    assert_eq!(switch(false).await.unwrap().status(), 200);
    let on: Value = switch(true).await.unwrap().json().await.unwrap();
    assert_eq!(on["watch"]["status"], "failing", "{on}");
    // The grant is revoked at Google; the SMTP server is gone; the public
    // URL (and so the redirect URI) is not the one registered.
    assert!(sandbox.revoke_grant(ANN, CLIENT_ID));
    let refreshes = sandbox.call_count("oauth.token.refresh_token");
    let broken = env
        .clone()
        .with("MAILWRIGHT_PUBLIC_URL", "https://mail.wrong.example")
        .with("MAILWRIGHT_SMTP_URL", "smtp://127.0.0.1:1");
    let (code, text) = doctor(&broken, false);
    eprintln!("broken:\n{text}");
    assert_eq!(code, 1, "{text}");
    let redirect = line(&text, "Google OAuth client");
    assert!(redirect.starts_with("FAIL"), "{redirect}");
    assert!(
        redirect.contains("https://mail.wrong.example/api/auth/oauth/google/callback")
            && redirect.contains("Fix: add"),
        "{redirect}"
    );
    let connection = line(&text, &format!("connection {ANN}"));
    assert!(
        connection.starts_with("FAIL") && connection.contains("revoked"),
        "{connection}"
    );
    assert!(
        connection
            .contains("Fix: its owner reconnects it at https://mail.wrong.example/integrations"),
        "{connection}"
    );
    let mail = line(&text, "system email");
    assert!(
        mail.starts_with("FAIL") && mail.contains("Fix: check MAILWRIGHT_SMTP_URL"),
        "{mail}"
    );
    let watch = line(&text, &format!("watch {ANN}"));
    assert!(
        watch.starts_with("FAIL")
            && watch.contains(PUSH_TOPIC)
            && watch.contains(
                "Fix: create the topic, and give gmail-api-push@system.gserviceaccount.com"
            ),
        "{watch}"
    );
    assert!(
        watch.ends_with("Runbook: https://mail.wrong.example/runbook#watch_failing"),
        "{watch}"
    );
    // Doctor changed nothing: the revoked connection is not marked (the
    // server finds out at its next use or daily check).
    assert!(sandbox.call_count("oauth.token.refresh_token") > refreshes);
    let view = serve
        .get_json(&client, &key, &format!("/api/integrations/{integration}"))
        .await;
    assert_eq!(view["status"], "connected", "{view}");

    // A malformed setting is one finding; the other checks still run.
    let (code, text) = doctor(
        &env.clone().with("MAILWRIGHT_GMAIL_PUBSUB_TOPIC", "gmail"),
        false,
    );
    assert_eq!(code, 1, "{text}");
    let setting = line(&text, "setting MAILWRIGHT_GMAIL_PUBSUB_TOPIC");
    assert!(
        setting.starts_with("FAIL") && setting.contains("projects/PROJECT/topics/TOPIC"),
        "{setting}"
    );
    assert!(line(&text, "database").starts_with("ok"), "{text}");
    assert!(line(&text, "system email").starts_with("ok"), "{text}");

    // Pointed at a database that is not there, doctor says so and does
    // not create it.
    let empty = tempfile::tempdir().unwrap();
    let missing = empty.path().join("mailwright.db");
    let (_, text) = doctor(
        &env.clone()
            .with(
                "MAILWRIGHT_DATABASE_URL",
                format!("sqlite://{}", missing.display()),
            )
            .with("MAILWRIGHT_DATA_DIR", empty.path().display().to_string()),
        false,
    );
    assert!(line(&text, "database").starts_with("warn"), "{text}");
    assert!(!missing.exists(), "doctor created no database");
}
