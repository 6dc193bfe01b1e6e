//! Outbound webhooks end to end: a receiver that verifies every delivery
//! with the Standard Webhooks reference library (Python's `standardwebhooks`,
//! installed by scripts/install-test-tools.sh) gets each event type once per
//! change, redeliveries after it answered 500, and the delivery log shows
//! them; private addresses are refused without the operator's setting.

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::assert_problem;
use common::google::{ANN, CLIENT_ID, world_with};
use common::workflows::{BOB, create_ok, execute, finish, send_step};
use sandbox::{Consent, Fault, InboundMessage};
use serde_json::{Value, json};

const DEADLINE: Duration = Duration::from_secs(30);

/// The Python receiver, stopped when dropped.
struct Receiver {
    child: Child,
    url: String,
    client: reqwest::Client,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Receiver {
    fn start() -> Receiver {
        let script = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/webhooks/receiver.py"
        );
        let mut child = Command::new("python3")
            .arg(script)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python3 runs");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line
            .trim()
            .strip_prefix("listening ")
            .unwrap_or_else(|| {
                panic!("the receiver did not start (scripts/install-test-tools.sh installs standardwebhooks): {line:?}")
            })
            .to_owned();
        Receiver {
            child,
            url: format!("http://127.0.0.1:{port}"),
            client: reqwest::Client::new(),
        }
    }

    async fn control(&self, control: Value) {
        let answer = self
            .client
            .post(format!("{}/_control", self.url))
            .json(&control)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 204);
    }

    async fn received(&self) -> Vec<Value> {
        self.client
            .get(format!("{}/_received", self.url))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }
}

/// A Sidemail that refuses every request (401): system email fails for good.
async fn refusing_sidemail() -> String {
    let app = axum::Router::new().fallback(|| async {
        (
            axum::http::StatusCode::UNAUTHORIZED,
            axum::Json(json!({"developerMessage": "bad key"})),
        )
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

async fn drain(w: &common::google::World) {
    store::testing::make_polls_due(&w.app.store).await;
    w.app.autodraft.poll_tick(store::now()).await.unwrap();
    for _ in 0..5 {
        store::testing::make_jobs_due(&w.app.store).await;
        w.app.worker.drain().await.unwrap();
    }
}

/// An endpoint at the receiver for `events`, its secret given to the
/// receiver, which answers 500 to the first `fail_first` deliveries of
/// each event type named; the endpoint's id.
async fn endpoint_at(
    w: &common::google::World,
    receiver: &Receiver,
    events: Value,
    fail_first: Value,
) -> String {
    let created: Value = w
        .app
        .client
        .post(w.app.url("/api/webhook-endpoints"))
        .bearer_auth(&w.tenant.key)
        .json(&json!({"url": format!("{}/hook", receiver.url), "events": events}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        created["secret"].as_str().unwrap().starts_with("whsec_"),
        "{created}"
    );
    receiver
        .control(json!({"secret": created["secret"], "fail_first": fail_first}))
        .await;
    created["id"].as_str().unwrap().to_owned()
}

/// The endpoint's delivery log, as the API shows it.
async fn delivery_log(w: &common::google::World, endpoint: &str) -> Value {
    w.app
        .get_as(
            &format!("/api/webhook-endpoints/{endpoint}/deliveries"),
            &w.tenant.key,
        )
        .await
        .json()
        .await
        .unwrap()
}

/// "Send again" on one delivery of the log.
async fn send_again(w: &common::google::World, endpoint: &str, delivery: &Value) {
    let again = w
        .app
        .client
        .post(w.app.url(&format!(
            "/api/webhook-endpoints/{endpoint}/deliveries/{}/redeliver",
            delivery["id"].as_str().unwrap()
        )))
        .bearer_auth(&w.tenant.key)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 202);
}

/// Connect Ann's Gmail and run a one-step send workflow to its end.
async fn one_successful_run(w: &common::google::World) {
    let id = w.connect(Consent::allow_all()).await["integration_id"].clone();
    let workflow = create_ok(
        w,
        json!({"name": "n", "trigger": {"type": "manual"}, "steps": [send_step(&id, BOB, "Hi")]}),
    )
    .await;
    let (_, run) = execute(
        w,
        workflow["id"].as_str().unwrap(),
        json!({"name": "B", "order": "1"}),
        false,
        None,
    )
    .await;
    finish(w, run["run"]["id"].as_str().unwrap()).await;
}

#[tokio::test]
async fn every_event_type_arrives_once_signed_and_a_500_is_delivered_again() {
    let sidemail = refusing_sidemail().await;
    let w = world_with(&[
        ("MAILWRIGHT_OUTBOUND_ALLOW_PRIVATE_NETWORKS", "true".into()),
        ("MAILWRIGHT_SIDEMAIL_API_URL", sidemail),
        ("MAILWRIGHT_SIDEMAIL_API_KEY", "sidemail-test-key".into()),
    ])
    .await;
    let receiver = Receiver::start();
    let all: Vec<&str> = domain::webhooks::EventType::ALL
        .iter()
        .map(|event| event.as_str())
        .collect();
    let created = w
        .app
        .client
        .post(w.app.url("/api/webhook-endpoints"))
        .bearer_auth(&w.tenant.key)
        .json(&json!({"url": format!("{}/hook", receiver.url), "events": all, "description": "everything"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let endpoint: Value = created.json().await.unwrap();
    let secret = endpoint["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_"), "{endpoint}");
    let endpoint_id = endpoint["id"].as_str().unwrap().to_owned();
    receiver
        .control(json!({"secret": secret, "fail_first": {"workflow.run_succeeded": 1}}))
        .await;

    // integration.status_changed (connected), autodraft.draft_created.
    let id = w.connect(Consent::allow_all()).await["integration_id"].clone();
    assert_eq!(common::autodraft::put_switch(&w, &id, true).await.0, 200);
    w.sandbox
        .deliver(&InboundMessage::new(
            "Bob <bob@example.com>",
            ANN,
            "Lunch",
            "Lunch on Friday?",
        ))
        .unwrap();
    drain(&w).await;
    // autodraft.message_failed: Gmail refuses the draft for good.
    w.sandbox.inject_fault(
        "drafts.create",
        Fault::Status {
            status: 400,
            body: json!({"error": {"code": 400, "message": "Invalid draft", "status": "INVALID_ARGUMENT"}}),
        },
        1,
    );
    w.sandbox
        .deliver(&InboundMessage::new(
            "Bob <bob@example.com>",
            ANN,
            "Dinner",
            "Dinner on Saturday?",
        ))
        .unwrap();
    drain(&w).await;
    // workflow.run_succeeded (answered 500 first), workflow.run_failed.
    let workflow = create_ok(
        &w,
        json!({"name": "n", "trigger": {"type": "manual"}, "steps": [send_step(&id, "{{ input.email }}", "Hi")]}),
    )
    .await;
    let workflow_id = workflow["id"].as_str().unwrap().to_owned();
    let (_, ok) = execute(
        &w,
        &workflow_id,
        json!({"email": BOB, "name": "Bob", "order": "1"}),
        false,
        None,
    )
    .await;
    finish(&w, ok["run"]["id"].as_str().unwrap()).await;
    let (_, bad) = execute(
        &w,
        &workflow_id,
        json!({"name": "Bob", "order": "2"}),
        false,
        None,
    )
    .await;
    finish(&w, bad["run"]["id"].as_str().unwrap()).await;
    // integration.status_changed (needs_reauth), whose notice Sidemail
    // refuses: system_email.delivery_failed.
    assert!(w.sandbox.revoke_grant(ANN, CLIENT_ID));
    w.sandbox.expire_access_tokens_of(ANN);
    let (_, broken) = execute(
        &w,
        &workflow_id,
        json!({"email": BOB, "name": "Bob", "order": "3"}),
        false,
        None,
    )
    .await;
    finish(&w, broken["run"]["id"].as_str().unwrap()).await;

    let give_up = Instant::now() + DEADLINE;
    let received = loop {
        drain(&w).await;
        let received = receiver.received().await;
        let delivered: std::collections::BTreeSet<&str> = received
            .iter()
            .filter(|delivery| delivery["answered"] == 204)
            .filter_map(|delivery| delivery["type"].as_str())
            .collect();
        if all.iter().all(|event| delivered.contains(event)) {
            break received;
        }
        assert!(
            Instant::now() < give_up,
            "not every event type arrived: {received:#?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };

    assert!(
        received.iter().all(|delivery| delivery["verified"] == true),
        "every signature verifies with the reference library: {received:#?}"
    );
    // One event (one webhook-id) per change; the 500 got the same id again.
    let mut ids: BTreeMap<String, std::collections::BTreeSet<String>> = BTreeMap::new();
    for delivery in &received {
        ids.entry(delivery["type"].as_str().unwrap().to_owned())
            .or_default()
            .insert(delivery["id"].as_str().unwrap().to_owned());
    }
    let changes = |event: &str| ids.get(event).map_or(0, |ids| ids.len());
    assert_eq!(changes("integration.status_changed"), 2, "{ids:?}");
    assert_eq!(changes("autodraft.draft_created"), 1, "{ids:?}");
    assert_eq!(changes("autodraft.message_failed"), 1, "{ids:?}");
    assert_eq!(changes("workflow.run_succeeded"), 1, "{ids:?}");
    assert_eq!(
        changes("workflow.run_failed"),
        2,
        "two runs failed: {ids:?}"
    );
    assert!(changes("system_email.delivery_failed") >= 1, "{ids:?}");
    let succeeded: Vec<&Value> = received
        .iter()
        .filter(|delivery| delivery["type"] == "workflow.run_succeeded")
        .collect();
    assert_eq!(
        succeeded
            .iter()
            .map(|d| d["answered"].as_i64().unwrap())
            .collect::<Vec<_>>(),
        vec![500, 204],
        "delivered again after the 500"
    );
    // Ids and states only: no token, no message text.
    for delivery in &received {
        let body = delivery["body"].as_str().unwrap();
        assert!(
            !body.contains("Lunch on Friday")
                && !body.contains("ya29")
                && !body.contains("refresh"),
            "{body}"
        );
    }

    // The delivery log shows the retry.
    let log = delivery_log(&w, &endpoint_id).await;
    let run_delivery = log["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|delivery| delivery["event_type"] == "workflow.run_succeeded")
        .expect("in the log")
        .clone();
    assert_eq!(run_delivery["status"], "delivered", "{run_delivery}");
    assert_eq!(run_delivery["attempts"], 2, "{run_delivery}");
    assert_eq!(run_delivery["response_status"], 204, "{run_delivery}");

    // "Send again" delivers it once more, with the same id.
    send_again(&w, &endpoint_id, &run_delivery).await;
    drain(&w).await;
    let after = receiver.received().await;
    assert_eq!(after.len(), received.len() + 1);
    assert_eq!(after.last().unwrap()["id"], succeeded[0]["id"]);

    // Another workspace cannot see or touch the endpoint.
    let stranger = w.app.tenant("stranger").await;
    for path in [
        format!("/api/webhook-endpoints/{endpoint_id}"),
        format!("/api/webhook-endpoints/{endpoint_id}/deliveries"),
    ] {
        let foreign = w.app.get_as(&path, &stranger.key).await;
        assert_problem(foreign, 404, "not_found").await;
    }
}

#[tokio::test]
async fn private_addresses_are_refused_without_the_operators_setting() {
    let w = world_with(&[]).await;
    for url in [
        "http://10.0.0.1/hook",
        "http://127.0.0.1:8080/hook",
        "http://[::1]/hook",
    ] {
        let answer = w
            .app
            .client
            .post(w.app.url("/api/webhook-endpoints"))
            .bearer_auth(&w.tenant.key)
            .json(&json!({"url": url, "events": ["workflow.run_failed"]}))
            .send()
            .await
            .unwrap();
        let problem = assert_problem(answer, 422, "validation_failed").await;
        assert_eq!(problem["errors"][0]["field"], "url", "{problem}");
        assert!(
            problem["errors"][0]["message"]
                .as_str()
                .unwrap()
                .contains("private"),
            "{problem}"
        );
    }
    let unknown = w
        .app
        .client
        .post(w.app.url("/api/webhook-endpoints"))
        .bearer_auth(&w.tenant.key)
        .json(&json!({"url": "https://hooks.example.com/in", "events": ["run.exploded"]}))
        .send()
        .await
        .unwrap();
    let problem = assert_problem(unknown, 422, "validation_failed").await;
    assert_eq!(problem["errors"][0]["field"], "events[0]", "{problem}");
}

#[tokio::test]
async fn an_endpoint_failing_for_a_day_is_switched_off_once_and_its_owner_told() {
    let w = world_with(&[("MAILWRIGHT_OUTBOUND_ALLOW_PRIVATE_NETWORKS", "true".into())]).await;
    let receiver = Receiver::start();
    let endpoint = endpoint_at(
        &w,
        &receiver,
        json!(["workflow.run_succeeded"]),
        json!({"workflow.run_succeeded": 1000}),
    )
    .await;
    one_successful_run(&w).await;
    w.app.worker.drain().await.unwrap();
    let read = || async {
        w.app
            .get_as(&format!("/api/webhook-endpoints/{endpoint}"), &w.tenant.key)
            .await
            .json::<Value>()
            .await
            .unwrap()
    };
    let failing = read().await;
    assert_eq!(failing["enabled"], true, "{failing}");
    assert!(failing["failing_since"].is_string(), "{failing}");
    let log = delivery_log(&w, &endpoint).await;
    let delivery = &log["deliveries"][0];
    assert_eq!(delivery["status"], "pending", "{delivery}");
    assert_eq!(delivery["response_status"], 500, "{delivery}");
    assert!(
        delivery["next_attempt_at"].is_string(),
        "retrying says when: {delivery}"
    );
    assert!(
        delivery["last_error"]
            .as_str()
            .unwrap()
            .contains("answered 500"),
        "{delivery}"
    );
    // "Send again" while it waits out its backoff: it goes now.
    send_again(&w, &endpoint, delivery).await;
    let attempts_before = receiver.received().await.len();
    w.app.worker.drain().await.unwrap();
    assert_eq!(
        receiver.received().await.len(),
        attempts_before + 1,
        "sent again at once, not after the backoff"
    );

    // A day of failures later, the next failure switches it off, once.
    store::testing::age_webhook_failures(&w.app.store, chrono::Duration::hours(25)).await;
    for _ in 0..3 {
        store::testing::make_jobs_due(&w.app.store).await;
        w.app.worker.drain().await.unwrap();
    }
    let off = read().await;
    assert_eq!(off["enabled"], false, "{off}");
    assert!(
        off["disabled_reason"]
            .as_str()
            .unwrap()
            .contains("Every delivery failed for 24 hours"),
        "{off}"
    );
    let notices: Vec<Value> = w
        .outbox()
        .await
        .into_iter()
        .filter(|email| email["kind"] == "webhook_endpoint_disabled")
        .collect();
    assert_eq!(notices.len(), 1, "one notice: {notices:?}");

    // Switched on again: the reason is gone.
    let on: Value = w
        .app
        .client
        .put(w.app.url(&format!("/api/webhook-endpoints/{endpoint}")))
        .bearer_auth(&w.tenant.key)
        .json(&json!({"url": format!("{}/hook", receiver.url), "events": ["workflow.run_succeeded"], "enabled": true}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(on["enabled"], true, "{on}");
    assert!(
        on["disabled_reason"].is_null() && on["failing_since"].is_null(),
        "{on}"
    );
}

#[tokio::test]
async fn the_settings_page_adds_an_endpoint_and_shows_its_secret_once() {
    let w = world_with(&[]).await;
    let (cookie, csrf) = common::ui::session(&w, w.tenant.user, w.tenant.workspace).await;
    let refused = common::ui::post_form(
        &w,
        &cookie,
        "/settings/webhooks",
        &[
            ("csrf", &csrf),
            ("url", "http://10.0.0.1/hook"),
            ("event.workflow.run_failed", "on"),
        ],
    )
    .await;
    assert_eq!(refused.status(), 422);
    let html = common::ui::decoded(refused.text().await.unwrap());
    assert!(html.contains("URL must not be a private"), "{html}");

    let created = common::ui::post_form(
        &w,
        &cookie,
        "/settings/webhooks",
        &[
            ("csrf", &csrf),
            ("url", "https://hooks.example.com/mailwright"),
            ("description", "Ops"),
            ("event.workflow.run_failed", "on"),
            ("event.integration.status_changed", "on"),
        ],
    )
    .await;
    assert_eq!(created.status(), 303);
    let page_path = created.headers()["location"].to_str().unwrap().to_owned();
    let secret_cookie = common::ui::set_cookie(&created, "mw_webhook_secret");
    let (status, html) =
        common::ui::page(&w, &format!("{cookie}; {secret_cookie}"), &page_path).await;
    assert_eq!(status, 200);
    assert!(html.contains(r#"id="webhook-secret">whsec_"#), "{html}");
    assert!(
        html.contains("<code>integration.status_changed</code>, <code>workflow.run_failed</code>"),
        "{html}"
    );
    let (_, again) = common::ui::page(&w, &cookie, &page_path).await;
    assert!(!again.contains("whsec_"), "shown once");
    let (_, settings) = common::ui::page(&w, &cookie, "/settings").await;
    assert!(
        settings.contains("https://hooks.example.com/mailwright"),
        "{settings}"
    );
}

/// With a short retry horizon, a delivery that fails until it gives up
/// switches off an endpoint that has failed ever since it was queued.
#[tokio::test]
async fn a_delivery_that_fails_for_its_whole_horizon_switches_the_endpoint_off() {
    let w = world_with(&[
        ("MAILWRIGHT_OUTBOUND_ALLOW_PRIVATE_NETWORKS", "true".into()),
        ("MAILWRIGHT_RETRY_HORIZON_HOURS", "0.0005".into()),
        ("MAILWRIGHT_RETRY_BASE_MILLIS", "10".into()),
    ])
    .await;
    let receiver = Receiver::start();
    let endpoint = endpoint_at(
        &w,
        &receiver,
        json!(["workflow.run_succeeded"]),
        json!({"workflow.run_succeeded": 100000}),
    )
    .await;
    one_successful_run(&w).await;
    let give_up = Instant::now() + DEADLINE;
    let off = loop {
        store::testing::make_jobs_due(&w.app.store).await;
        w.app.worker.drain().await.unwrap();
        let endpoint: Value = w
            .app
            .get_as(&format!("/api/webhook-endpoints/{endpoint}"), &w.tenant.key)
            .await
            .json()
            .await
            .unwrap();
        if endpoint["enabled"] == false {
            break endpoint;
        }
        assert!(Instant::now() < give_up, "still on: {endpoint}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(
        off["disabled_reason"]
            .as_str()
            .unwrap()
            .contains("Every delivery failed"),
        "{off}"
    );
    let log = delivery_log(&w, &endpoint).await;
    assert_eq!(log["deliveries"][0]["status"], "failed", "{log}");
}
