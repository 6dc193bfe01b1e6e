//! Push end to end against the real binary (issue "Gmail in production"):
//! `mailwright serve` with a Pub/Sub topic, OIDC push trusting the
//! sandbox's certificates and a day between polls; the sandbox in this
//! process watches Ann's inbox and pushes, signed, to the binary. A
//! delivered message is drafted through the push, not the poll.
//!
//! The time from delivery to draft is printed (`--no-capture`); the target
//! is 2 s, recorded in benchmarks/RESULTS.md, not asserted (timing is
//! measured, never tested).

mod common;

use std::time::{Duration, Instant};

use common::google::ANN;
use common::process::{ProcessEnv, SaveLogOnPanic, google_sandbox, test_client};
use sandbox::InboundMessage;
use store::testing::TestDatabase;

const AUDIENCE: &str = "mailwright-push-test";
const DRAFT_DEADLINE: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_daily_poll_a_delivered_message_is_drafted_through_the_signed_push() {
    mailwright::app::install_crypto_provider();
    let (sandbox, sandbox_url) = google_sandbox().await;
    let db = TestDatabase::new().await;
    let env = ProcessEnv::new(&db)
        .with_google_sandbox(&sandbox_url)
        .with_gmail_push(&sandbox_url, AUDIENCE)
        // A day between polls: the first poll (at a random moment of the
        // first interval) cannot be what drafts the message.
        .with("MAILWRIGHT_AUTODRAFT_POLL_SECONDS", "86400");
    let key = env.owner_key("Push");
    let client = test_client();
    let serve = env.serve("serve", &client).await;
    let _log = SaveLogOnPanic {
        process: &serve,
        path: std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("gmail-push-binary.log"),
    };
    serve.receive_pushes_from(&sandbox, AUDIENCE);

    let integration = serve.connect_gmail(&sandbox, &client, &key).await;
    let switched = serve.enable_autodraft(&client, &key, &integration).await;
    assert_eq!(switched["watch"]["status"], "active", "{switched}");
    assert!(sandbox.watch_expiration(ANN).is_some());

    let delivered = Instant::now();
    sandbox
        .deliver(&InboundMessage::new(
            "Client <client@company.example>",
            ANN,
            "Can we meet on Tuesday?",
            "Hi Ann,\n\nCould we meet on Tuesday to go over the proposal?\n\nThanks",
        ))
        .unwrap();
    let drafts_path = format!("/api/integrations/{integration}/drafts");
    let drafted = loop {
        let drafts = serve.get_json(&client, &key, &drafts_path).await;
        if drafts["drafts"].as_array().is_some_and(|d| d.len() == 1) {
            break delivered.elapsed();
        }
        assert!(
            delivered.elapsed() < DRAFT_DEADLINE,
            "no draft {DRAFT_DEADLINE:?} after delivery; pushes: {:?}",
            sandbox.push_deliveries()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    eprintln!(
        "drafted {:.0} ms after delivery, through the push",
        drafted.as_secs_f64() * 1000.0
    );

    let pushes = sandbox.push_deliveries();
    assert_eq!(pushes.len(), 1, "one push, accepted at once: {pushes:?}");
    assert_eq!(pushes[0].status, Some(200));
    assert_eq!(sandbox.drafts(ANN).unwrap().len(), 1);
}
