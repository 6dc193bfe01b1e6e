//! Push end to end against the real binary (issue "Gmail in production"):
//! `mailwright serve` with a Pub/Sub topic, OIDC push trusting the
//! sandbox's certificates and an hour between polls; the sandbox in this
//! process watches Ann's inbox and pushes, signed, to the binary. A
//! delivered message is drafted through the push, not the poll.
//!
//! The time from delivery to draft is printed (`--no-capture`); the target
//! is 2 s, recorded in benchmarks/RESULTS.md, not asserted (timing is
//! measured, never tested).

mod common;

use std::time::{Duration, Instant};

use common::google::ANN;
use common::process::{ProcessEnv, SaveLogOnPanic};
use sandbox::{AccountSpec, InboundMessage, PushSubscription, Sandbox, SandboxConfig};
use serde_json::Value;
use store::testing::TestDatabase;

const TOPIC: &str = "projects/mailwright-test/topics/gmail";
const AUDIENCE: &str = "mailwright-push-test";
const SERVICE_ACCOUNT: &str = "gmail-push@mailwright-test.iam.gserviceaccount.com";
const DRAFT_DEADLINE: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_an_hourly_poll_a_delivered_message_is_drafted_through_the_signed_push() {
    mailwright::app::install_crypto_provider();
    let sandbox =
        Sandbox::new(SandboxConfig::default().with_account(AccountSpec::new(ANN, "Ann Example")));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let sandbox_url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(sandbox::serve(listener, sandbox.clone()));

    let db = TestDatabase::new().await;
    let env = ProcessEnv::new(&db)
        .with_google_sandbox(&sandbox_url)
        .with("MAILWRIGHT_GMAIL_PUBSUB_TOPIC", TOPIC)
        .with("MAILWRIGHT_PUSH_AUDIENCE", AUDIENCE)
        .with("MAILWRIGHT_PUSH_SERVICE_ACCOUNT", SERVICE_ACCOUNT)
        .with(
            "MAILWRIGHT_GOOGLE_CERTS_URL",
            format!("{sandbox_url}/oauth2/v3/certs"),
        )
        .with("MAILWRIGHT_AUTODRAFT_POLL_SECONDS", "3600");
    let key = tokio::task::block_in_place(|| {
        env.create_user("owner@push.example", "a long enough password", "Push");
        env.create_api_key("Push")
    });
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let serve = env.serve("serve", &client).await;
    let _log = SaveLogOnPanic {
        process: &serve,
        path: std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("gmail-push-binary.log"),
    };
    sandbox.set_push_subscription(PushSubscription {
        endpoint: serve.url("/api/push/gmail"),
        audience: AUDIENCE.into(),
        service_account: SERVICE_ACCOUNT.into(),
    });

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
    let drafts_url = serve.url(&format!("/api/integrations/{integration}/drafts"));
    let drafted = loop {
        let drafts: Value = client
            .get(&drafts_url)
            .bearer_auth(&key)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
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
