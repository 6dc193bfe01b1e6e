//! Workflow helpers shared by the workflow tests: a connected Gmail, step
//! definitions, execute and drive a run to its end.

#![allow(dead_code)]

use serde_json::{Value, json};

use super::Tenant;
use super::google::{World, world};
use sandbox::Consent;

pub const BOB: &str = "bob@example.com";

pub async fn connected() -> (World, String) {
    let w = world().await;
    w.sandbox.create_account(BOB, "Bob Builder");
    let id = w.connect(Consent::allow_all()).await["integration_id"].clone();
    (w, id)
}

pub fn send_step(integration: &str, to: &str, subject: &str) -> Value {
    json!({"action": "gmail.send_email", "integration_id": integration, "to": [to], "subject": subject,
           "body": "Hello {{ input.name }}, your order {{ input.order }} shipped."})
}

pub async fn create(w: &World, tenant: &Tenant, body: Value) -> reqwest::Response {
    w.app
        .client
        .post(w.app.url("/api/workflows"))
        .bearer_auth(&tenant.key)
        .json(&body)
        .send()
        .await
        .unwrap()
}

pub async fn create_ok(w: &World, body: Value) -> Value {
    let answer = create(w, &w.tenant, body).await;
    assert_eq!(answer.status(), 201);
    answer.json().await.unwrap()
}

pub async fn execute(
    w: &World,
    workflow: &str,
    input: Value,
    wait: bool,
    key: Option<&str>,
) -> (u16, Value) {
    let mut request = w
        .app
        .client
        .post(
            w.app
                .url(&format!("/api/workflows/{workflow}/execute?wait={wait}")),
        )
        .bearer_auth(&w.tenant.key)
        .json(&json!({ "input": input }));
    if let Some(key) = key {
        request = request.header("Idempotency-Key", key);
    }
    let answer = request.send().await.unwrap();
    (answer.status().as_u16(), answer.json().await.unwrap())
}

/// Run queued jobs until the run has ended, skipping retry backoff.
pub async fn finish(w: &World, run_id: &str) -> Value {
    for _ in 0..20 {
        store::testing::make_jobs_due(&w.app.store).await;
        w.app.worker.drain().await.unwrap();
        let run: Value = w
            .app
            .get_as(&format!("/api/runs/{run_id}"), &w.tenant.key)
            .await
            .json()
            .await
            .unwrap();
        if run["status"] == "succeeded" || run["status"] == "failed" {
            return run;
        }
    }
    panic!("the run did not end");
}

pub fn inbox(w: &World) -> Vec<sandbox::MessageView> {
    w.sandbox.messages(BOB).unwrap()
}
