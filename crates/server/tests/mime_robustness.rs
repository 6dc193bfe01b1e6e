//! CPython's email test messages (odd MIME from the real world, in
//! `tests/data/cpython-email/`) through the whole auto-draft pipeline and a
//! new-mail workflow: each ends drafted or skipped with a reason, none is
//! left waiting, none fails.

mod common;

use common::autodraft::{autodraft, enabled_world, poll};
use common::google::ANN;
use common::workflows::create_ok;
use sandbox::InboundMessage;
use serde_json::json;

const MESSAGES: &[(&str, &str)] = &[
    ("msg_02", include_str!("data/cpython-email/msg_02.txt")),
    ("msg_06", include_str!("data/cpython-email/msg_06.txt")),
    ("msg_12", include_str!("data/cpython-email/msg_12.txt")),
    ("msg_15", include_str!("data/cpython-email/msg_15.txt")),
    ("msg_44", include_str!("data/cpython-email/msg_44.txt")),
    ("msg_47", include_str!("data/cpython-email/msg_47.txt")),
];

/// The message addressed to the sandbox mailbox: its first `To:` header
/// names Ann instead (the rest as it is).
fn addressed_to_ann(raw: &str) -> String {
    let mut done = false;
    raw.lines()
        .map(|line| {
            if !done && line.to_ascii_lowercase().starts_with("to:") {
                done = true;
                format!("To: {ANN}")
            } else {
                line.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\r\n")
}

#[tokio::test]
async fn odd_mime_from_cpythons_tests_is_drafted_or_skipped_never_stuck() {
    let (w, id) = enabled_world(&[]).await;
    let workflow = create_ok(
        &w,
        json!({"name": "Everything", "trigger": {"type": "new_mail", "integration_id": id},
               "steps": [{"action": "email.send_system", "to": ["ops@example.com"],
                          "subject": "{{ input.message.subject }}", "body": "{{ input.message.snippet }}"}]}),
    )
    .await;
    for (name, raw) in MESSAGES {
        let message = InboundMessage {
            raw: Some(addressed_to_ann(raw)),
            ..InboundMessage::new("x@example.com", ANN, "", "")
        };
        w.sandbox
            .deliver(&message)
            .unwrap_or_else(|error| panic!("{name}: {error}"));
    }
    poll(&w).await;
    poll(&w).await;

    let stats = &autodraft(&w, &id).await["stats"];
    let skipped = stats["skipped"].as_i64().unwrap();
    let drafted = stats["drafts_created"].as_i64().unwrap();
    assert_eq!(stats["failed"], 0, "{stats}");
    assert_eq!(stats["pending"], 0, "{stats}");
    assert_eq!(
        drafted + skipped,
        MESSAGES.len() as i64,
        "every message ended: {stats}"
    );
    // The digest is a mailing list (its Mailman headers are only in its
    // parts, so it is judged by its sender and text).
    assert!(skipped >= 1, "{stats}");

    let runs: serde_json::Value = w
        .app
        .get_as(
            &format!("/api/workflows/{}/runs", workflow["id"].as_str().unwrap()),
            &w.tenant.key,
        )
        .await
        .json()
        .await
        .unwrap();
    let runs = runs["runs"].as_array().unwrap();
    assert_eq!(runs.len(), MESSAGES.len(), "one run per message: {runs:#?}");
    assert!(
        runs.iter().all(|run| run["status"] == "succeeded"),
        "{runs:#?}"
    );
}
