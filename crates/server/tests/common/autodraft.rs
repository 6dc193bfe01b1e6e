//! Auto-draft helpers shared by the auto-draft tests: switch it on, deliver
//! mail from Bob, poll and drain, read the API's view.

#![allow(dead_code)]

use sandbox::{Consent, InboundMessage};
use serde_json::{Value, json};

use super::google::{ANN, World, world_with};

pub const BOB: &str = "bob@example.com";
/// Who writes to Ann's Outlook mailbox in the Outlook tests.
pub const CAROL: &str = "carol@fabrikam.example";
pub const PUSH_TOKEN: &str = "push-token-0123456789abcdef";

pub async fn put_switch(w: &World, id: &str, enabled: bool) -> (u16, Value) {
    let answer = w
        .app
        .client
        .put(w.app.url(&format!("/api/integrations/{id}/auto-draft")))
        .bearer_auth(&w.tenant.key)
        .json(&json!({ "enabled": enabled }))
        .send()
        .await
        .unwrap();
    (answer.status().as_u16(), answer.json().await.unwrap())
}

pub async fn autodraft(w: &World, id: &str) -> Value {
    let answer = w
        .app
        .get_as(&format!("/api/integrations/{id}/auto-draft"), &w.tenant.key)
        .await;
    assert_eq!(answer.status(), 200);
    answer.json().await.unwrap()
}

pub async fn drafts(w: &World, id: &str) -> Vec<Value> {
    let answer: Value = w
        .app
        .get_as(&format!("/api/integrations/{id}/drafts"), &w.tenant.key)
        .await
        .json()
        .await
        .unwrap();
    answer["drafts"].as_array().unwrap().clone()
}

/// Connect Ann's Gmail with every scope and switch auto-draft on.
pub async fn enabled_world(extra_env: &[(&str, String)]) -> (World, String) {
    let w = world_with(extra_env).await;
    let id = w.connect(Consent::allow_all()).await["integration_id"].clone();
    let (status, body) = put_switch(&w, &id, true).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["enabled"], true);
    // Switching on learns the owner's style from their sent mail: done
    // before the test's own jobs.
    drain(&w).await;
    (w, id)
}

/// What a poll does, now: sync every mailbox and draft what it found.
pub async fn poll(w: &World) {
    store::testing::make_polls_due(&w.app.store).await;
    w.app.autodraft.poll_tick(store::now()).await.unwrap();
    drain(w).await;
}

pub async fn drain(w: &World) {
    for _ in 0..5 {
        store::testing::make_jobs_due(&w.app.store).await;
        if w.app.worker.drain().await.unwrap() == 0 {
            return;
        }
    }
}

pub fn deliver(w: &World, message: InboundMessage) -> sandbox::Delivered {
    w.sandbox
        .deliver(&message)
        .unwrap()
        .into_iter()
        .find(|d| d.email == ANN)
        .expect("delivered to Ann")
}

pub fn from_bob(subject: &str, text: &str) -> InboundMessage {
    InboundMessage::new(format!("Bob Builder <{BOB}>"), ANN, subject, text)
}

/// Older than the "fresh" window, as if found by a poll a while later.
pub fn minutes_ago(minutes: i64) -> chrono::DateTime<chrono::Utc> {
    chrono::Utc::now() - chrono::Duration::minutes(minutes)
}

/// A Pub/Sub push's `data`: base64 of the JSON Gmail publishes.
pub fn base64_json(value: Value) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(value.to_string())
}

/// A scripted language model on a port of its own, and the settings that
/// point Mailwright at it (model `test-model`).
pub async fn scripted_llm() -> (sandbox::LlmSandbox, Vec<(&'static str, String)>) {
    let llm = sandbox::LlmSandbox::new();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/v1", listener.local_addr().unwrap());
    let router = llm.router();
    tokio::spawn(async move { axum::serve(listener, router).await });
    let settings = vec![
        ("MAILWRIGHT_LLM_URL", url),
        ("MAILWRIGHT_LLM_MODEL", "test-model".to_owned()),
    ];
    (llm, settings)
}

/// A question from [`CAROL`] into Ann's Outlook inbox.
pub fn deliver_to_outlook(w: &World, subject: &str) -> sandbox::MicrosoftDelivered {
    w.sandbox
        .microsoft()
        .deliver(sandbox::MicrosoftInbound::new(
            CAROL,
            super::google::ANN_OUTLOOK,
            subject,
            "Could you send me the figures for March by Friday?",
        ))
        .unwrap()
}
