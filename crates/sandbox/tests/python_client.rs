//! The sandbox answers Google's own Python client library
//! (google-api-python-client with its bundled gmail.v1 discovery document,
//! installed by scripts/install-test-tools.sh): every Gmail method
//! Mailwright calls, plus drafts.send, settings.sendAs.list and the batch
//! endpoint, as the library expects them (`tests/google_client/probe.py`).

mod common;

use std::process::Command;

use common::{ANN, BOB, start};
use mailwright_sandbox::InboundMessage;
use serde_json::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn googles_python_client_gets_what_it_expects_from_every_probe() {
    let h = start().await;
    let token = h
        .access_token(ANN, "https://mail.google.com/ openid email")
        .await;
    h.sandbox
        .deliver(&InboundMessage::new(
            format!("Bob <{BOB}>"),
            ANN,
            "Lunch on Friday?",
            "Are you free for lunch on Friday?",
        ))
        .unwrap();
    let probe =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/google_client/probe.py");
    let base = h.base.clone();
    let output = tokio::task::spawn_blocking(move || {
        Command::new("python3")
            .arg(probe)
            .args([base.as_str(), token.as_str(), ANN])
            .output()
            .expect("python3 runs")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !stderr.contains("ModuleNotFoundError"),
        "google-api-python-client is missing: run scripts/install-test-tools.sh (as .ci/run does)\n{stderr}"
    );
    let probes: Vec<Value> = stdout
        .lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect();
    eprintln!("{stdout}");
    let failed: Vec<&Value> = probes.iter().filter(|p| p["ok"] != true).collect();
    assert!(
        failed.is_empty() && output.status.success(),
        "{} of {} probes failed:\n{}\nstderr:\n{stderr}",
        failed.len(),
        probes.len(),
        failed
            .iter()
            .map(|p| format!(
                "{}: {}\n{}",
                p["probe"],
                p["detail"],
                p["trace"].as_str().unwrap_or("")
            ))
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert_eq!(probes.len(), 18, "every probe ran:\n{stdout}");
}
