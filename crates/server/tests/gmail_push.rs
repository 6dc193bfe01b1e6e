//! Gmail push in production (issue "Gmail in production"): with a Pub/Sub
//! topic configured, switching auto-draft on registers a watch, the watch is
//! renewed daily by one process, switching off stops it, and
//! `POST /api/push/gmail` accepts Pub/Sub's Google-signed OIDC token and
//! refuses one that is forged, for another audience or from another
//! service account.

mod common;

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::autodraft::{autodraft, base64_json, drain, put_switch};
use common::google::{ANN, World, world_with};
use engine::autodraft::{AutoDraft, AutoDraftSettings, Generator, WATCH_RENEW_EVERY};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rsa::pkcs1::EncodeRsaPrivateKey;
use sandbox::{Consent, Fault};
use serde_json::{Value, json};

const TOPIC: &str = "projects/mailwright-test/topics/gmail";
const AUDIENCE: &str = "https://mail.example.test/api/push/gmail";
const SERVICE_ACCOUNT: &str = "gmail-push@mailwright-test.iam.gserviceaccount.com";

/// The app with a topic, OIDC push trusting the sandbox's certificates,
/// and an hour between polls; Ann connected.
async fn push_world() -> (World, String) {
    let w = world_with(&[
        ("MAILWRIGHT_GMAIL_PUBSUB_TOPIC", TOPIC.into()),
        ("MAILWRIGHT_PUSH_AUDIENCE", AUDIENCE.into()),
        ("MAILWRIGHT_PUSH_SERVICE_ACCOUNT", SERVICE_ACCOUNT.into()),
        (
            "MAILWRIGHT_GOOGLE_CERTS_URL",
            "{sandbox}/oauth2/v3/certs".into(),
        ),
        ("MAILWRIGHT_AUTODRAFT_POLL_SECONDS", "3600".into()),
    ])
    .await;
    let id = w.connect(Consent::allow_all()).await["integration_id"].clone();
    (w, id)
}

async fn push(w: &World, bearer: Option<&str>, email: &str) -> (u16, Value) {
    let mut request = w.app.client.post(w.app.url("/api/push/gmail")).json(&json!({
        "message": {"data": base64_json(json!({"emailAddress": email, "historyId": 1})), "messageId": "1"},
        "subscription": "projects/mailwright-test/subscriptions/gmail-push",
    }));
    if let Some(bearer) = bearer {
        request = request.bearer_auth(bearer);
    }
    let answer = request.send().await.unwrap();
    let status = answer.status().as_u16();
    (status, answer.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn switching_on_watches_the_inbox_a_day_later_one_process_renews_it_and_off_stops_it() {
    let (w, id) = push_world().await;
    let (status, body) = put_switch(&w, &id, true).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(w.sandbox.call_count("watch"), 1);
    let google_expiry = w
        .sandbox
        .watch_expiration(ANN)
        .expect("Ann's inbox is watched");

    let view = autodraft(&w, &id).await;
    assert_eq!(view["watch"]["status"], "active", "{view}");
    assert_eq!(view["watch"]["last_error"], Value::Null);
    let expires_at: chrono::DateTime<chrono::Utc> = view["watch"]["expires_at"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(
        expires_at.timestamp_millis(),
        google_expiry.timestamp_millis()
    );
    assert_eq!(view["poll_interval_seconds"], 3600);

    // Not due again today.
    assert_eq!(w.app.autodraft.watch_tick(store::now()).await.unwrap(), 0);

    // A day passes: of two processes ticking at once, one queues the
    // renewal, and the watch is made again once.
    store::testing::age_watches(
        &w.app.store,
        WATCH_RENEW_EVERY + chrono::Duration::minutes(1),
    )
    .await;
    let second = second_process(&w).await;
    let now = store::now();
    let (a, b) = tokio::join!(w.app.autodraft.watch_tick(now), second.watch_tick(now));
    assert_eq!(a.unwrap() + b.unwrap(), 1, "renewed once across processes");
    drain(&w).await;
    assert_eq!(w.sandbox.call_count("watch"), 2);
    let renewed = autodraft(&w, &id).await;
    assert_eq!(renewed["watch"]["status"], "active");
    let renews_at: chrono::DateTime<chrono::Utc> = renewed["watch"]["renews_at"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        renews_at > store::now() + chrono::Duration::hours(23),
        "{renewed}"
    );

    // Switching off stops it at Google.
    let (status, _) = put_switch(&w, &id, false).await;
    assert_eq!(status, 200);
    assert_eq!(w.sandbox.call_count("stop"), 1);
    assert_eq!(w.sandbox.watch_expiration(ANN), None);
    assert_eq!(autodraft(&w, &id).await["watch"]["status"], "off");
}

#[tokio::test]
async fn a_topic_gmail_refuses_shows_the_watch_failing_with_the_fix_and_the_next_attempt() {
    let (w, id) = push_world().await;
    let refusal = json!({"error": {"code": 403, "status": "PERMISSION_DENIED",
        "message": "Error sending test message to Cloud PubSub projects/mailwright-test/topics/gmail : User not authorized to perform this action.",
        "errors": [{"reason": "forbidden", "domain": "global", "message": "forbidden"}]}});
    w.sandbox.inject_fault(
        "watch",
        Fault::Status {
            status: 403,
            body: refusal,
        },
        1,
    );
    let (status, body) = put_switch(&w, &id, true).await;
    assert_eq!(
        status, 200,
        "auto-draft still goes on (the poll finds mail): {body}"
    );
    let view = autodraft(&w, &id).await;
    assert_eq!(view["enabled"], true);
    assert_eq!(view["watch"]["status"], "failing", "{view}");
    assert_eq!(view["watch"]["last_error"]["code"], "watch_topic_refused");
    let message = view["watch"]["last_error"]["message"].as_str().unwrap();
    assert!(message.contains(TOPIC), "{message}");
    assert!(
        message.contains("gmail-api-push@system.gserviceaccount.com"),
        "{message}"
    );
    assert!(
        view["watch"]["renews_at"].is_string(),
        "the next attempt is shown"
    );

    // The next attempt, when due, succeeds.
    store::testing::age_watches(&w.app.store, chrono::Duration::hours(1)).await;
    assert_eq!(w.app.autodraft.watch_tick(store::now()).await.unwrap(), 1);
    drain(&w).await;
    let view = autodraft(&w, &id).await;
    assert_eq!(view["watch"]["status"], "active", "{view}");
    assert_eq!(view["watch"]["last_error"], Value::Null);
}

#[tokio::test]
async fn a_push_is_accepted_only_with_a_google_signed_token_for_our_audience_and_account() {
    let (w, id) = push_world().await;
    assert_eq!(put_switch(&w, &id, true).await.0, 200);

    let good = w.sandbox.sign_push_token(AUDIENCE, SERVICE_ACCOUNT);
    let (status, body) = push(&w, Some(&good), ANN).await;
    assert_eq!((status, &body), (200, &json!({"mailboxes": 1})));

    // An address nobody watches is acknowledged (Pub/Sub would retry
    // anything else) and counted.
    let (status, body) = push(&w, Some(&good), "nobody@example.com").await;
    assert_eq!((status, &body), (200, &json!({"mailboxes": 0})));

    let refusals = [
        (None, "missing_push_oidc"),
        (Some(forged(&good)), "bad_signature"),
        (
            Some(
                w.sandbox
                    .sign_push_token("https://elsewhere.test/push", SERVICE_ACCOUNT),
            ),
            "wrong_audience",
        ),
        (
            Some(
                w.sandbox
                    .sign_push_token(AUDIENCE, "intruder@evil.iam.gserviceaccount.com"),
            ),
            "wrong_service_account",
        ),
        (Some("not-a-jwt".to_owned()), "malformed_token"),
    ];
    for (bearer, reason) in refusals {
        let (status, body) = push(&w, bearer.as_deref(), ANN).await;
        assert_eq!(status, 401, "{reason}: {body}");
        assert_eq!(body["reason"], reason, "{body}");
        assert!(!body.to_string().contains(&good), "no token echoed");
    }
    let metrics = w.app.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains(r#"mailwright_push_notifications_total{outcome="wrong_audience"}"#),
        "refusals are counted"
    );
    assert!(metrics.contains(r#"mailwright_push_notifications_total{outcome="unknown_address"}"#));
}

#[tokio::test]
async fn a_push_token_from_another_issuer_expired_or_unverified_is_refused_and_a_shared_token_still_counts()
 {
    let w = world_with(&[
        ("MAILWRIGHT_GMAIL_PUBSUB_TOPIC", TOPIC.into()),
        ("MAILWRIGHT_PUSH_AUDIENCE", AUDIENCE.into()),
        ("MAILWRIGHT_PUSH_SERVICE_ACCOUNT", SERVICE_ACCOUNT.into()),
        (
            "MAILWRIGHT_GOOGLE_CERTS_URL",
            "{sandbox}/oauth2/v3/certs".into(),
        ),
        (
            "MAILWRIGHT_PUSH_TOKEN",
            common::autodraft::PUSH_TOKEN.into(),
        ),
    ])
    .await;
    let now = chrono::Utc::now().timestamp();
    let claims = |changes: Value| {
        let mut claims = json!({"aud": AUDIENCE, "email": SERVICE_ACCOUNT, "email_verified": true,
            "iss": "https://accounts.google.com", "sub": "1", "iat": now, "exp": now + 3600});
        for (key, value) in changes.as_object().unwrap() {
            claims[key] = value.clone();
        }
        w.sandbox.sign_push_claims(&claims)
    };
    // Google's other spelling of its issuer is Google's too.
    let bare_issuer = claims(json!({"iss": "accounts.google.com"}));
    assert_eq!(push(&w, Some(&bare_issuer), ANN).await.0, 200);
    for (token, reason) in [
        (
            claims(json!({"iss": "https://evil.example"})),
            "wrong_issuer",
        ),
        (
            claims(json!({"exp": now - 3600, "iat": now - 7200})),
            "expired",
        ),
        (
            claims(json!({"email_verified": false})),
            "email_not_verified",
        ),
    ] {
        let (status, body) = push(&w, Some(&token), ANN).await;
        assert_eq!(
            (status, body["reason"].as_str()),
            (401, Some(reason)),
            "{body}"
        );
    }
    // With the shared token configured too, a push carrying it is accepted
    // even when its bearer fails; without it, the bearer's failure stands.
    let expired = claims(json!({"exp": now - 3600, "iat": now - 7200}));
    let with_token = w
        .app
        .client
        .post(w.app.url(&format!(
            "/api/push/gmail?token={}",
            common::autodraft::PUSH_TOKEN
        )))
        .bearer_auth(&expired)
        .json(&json!({"message": {"data": base64_json(json!({"emailAddress": ANN, "historyId": 1}))}}))
        .send()
        .await
        .unwrap();
    assert_eq!(with_token.status(), 200);
}

#[tokio::test]
async fn a_watch_another_workspace_still_uses_is_not_stopped() {
    let (w, ours) = push_world().await;
    let other = w.app.bare_tenant("other").await;
    let theirs = w.connect_as(&other, Consent::allow_all()).await["integration_id"].clone();
    let switch = |key: &str, id: &str, enabled: bool| {
        w.app
            .client
            .put(w.app.url(&format!("/api/integrations/{id}/auto-draft")))
            .bearer_auth(key)
            .json(&json!({ "enabled": enabled }))
            .send()
    };
    assert_eq!(
        switch(&w.tenant.key, &ours, true).await.unwrap().status(),
        200
    );
    assert_eq!(
        switch(&other.key, &theirs, true).await.unwrap().status(),
        200
    );

    // Gmail keeps one watch per address: the first to switch off leaves it.
    assert_eq!(
        switch(&w.tenant.key, &ours, false).await.unwrap().status(),
        200
    );
    assert_eq!(w.sandbox.call_count("stop"), 0);
    assert!(w.sandbox.watch_expiration(ANN).is_some());
    // The last one stops it.
    assert_eq!(
        switch(&other.key, &theirs, false).await.unwrap().status(),
        200
    );
    assert_eq!(w.sandbox.call_count("stop"), 1);
    assert_eq!(w.sandbox.watch_expiration(ANN), None);
}

/// The same claims and key id, signed by a key that is not Google's.
fn forged(genuine: &str) -> String {
    let mut parts = genuine.split('.');
    let header: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts.next().unwrap()).unwrap()).unwrap();
    let claims: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts.next().unwrap()).unwrap()).unwrap();
    let key = rsa::RsaPrivateKey::new(&mut rand::thread_rng(), 2048).unwrap();
    let mut forged_header = Header::new(Algorithm::RS256);
    forged_header.kid = header["kid"].as_str().map(str::to_owned);
    jsonwebtoken::encode(
        &forged_header,
        &claims,
        &EncodingKey::from_rsa_der(key.to_pkcs1_der().unwrap().as_bytes()),
    )
    .unwrap()
}

/// Auto-draft as a second process over the same database would run it.
async fn second_process(w: &World) -> AutoDraft {
    let store = w.app.db.connect().await;
    let notifier = Arc::new(engine::notify::Notifier::new(
        store.clone(),
        w.app.address.clone(),
    ));
    AutoDraft::new(
        store,
        Arc::new(w.second_process_vault().await),
        notifier,
        Generator::Builtin,
        AutoDraftSettings {
            pubsub_topic: Some(domain::pubsub::PubSubTopic::parse(TOPIC).unwrap()),
            ..AutoDraftSettings::default()
        },
    )
}
