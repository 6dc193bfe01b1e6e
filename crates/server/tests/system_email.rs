//! Telling people when their mailbox needs them: exactly one notice per
//! episode, delivered through the queue by Sidemail, SMTP or the log.

mod common;

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use axum::Json;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use common::google::{ANN, CLIENT_ID, World, world, world_with};
use common::smtp::SmtpServer;
use domain::scopes::Capability;
use engine::vault::VaultError;
use sandbox::Consent;
use serde_json::{Value, json};

/// Connect Gmail, then revoke the grant at Google and use the mailbox from
/// many callers at once.
async fn break_connection(w: &World, id: &str) {
    assert!(w.sandbox.revoke_grant(ANN, CLIENT_ID));
    w.expire_stored_token(id).await;
    let (workspace, integration) = w.ids(id);
    let callers: Vec<_> = (0..8)
        .map(|_| {
            let vault = Arc::clone(&w.app.vault);
            tokio::spawn(async move { vault.access_token(workspace, integration).await })
        })
        .collect();
    for caller in callers {
        assert!(matches!(
            caller.await.unwrap(),
            Err(VaultError::NeedsReauth)
        ));
    }
}

#[tokio::test]
async fn a_revoked_grant_sends_exactly_one_notice_and_a_new_episode_another() {
    let w = world().await;
    let id = w.connect(Consent::allow_all()).await["integration_id"].clone();
    let (access, refresh) = w.plaintext_tokens(&id).await;
    break_connection(&w, &id).await;
    // Jobs that meet the broken mailbox later do not notify again.
    for _ in 0..3 {
        let (workspace, integration) = w.ids(&id);
        assert!(
            w.app
                .vault
                .access_token(workspace, integration)
                .await
                .is_err()
        );
    }
    assert_eq!(w.app.worker.drain().await.unwrap(), 1, "one delivery job");

    let emails = w.outbox().await;
    assert_eq!(emails.len(), 1, "{emails:?}");
    let notice = &emails[0];
    assert_eq!(notice["kind"], "integration_needs_reauth");
    assert_eq!(
        notice["to"], "owner@acme.example",
        "to the person who connected it"
    );
    assert_eq!(
        (notice["status"].clone(), notice["provider"].clone()),
        (json!("logged"), json!("log")),
        "recorded, not delivered, and said so"
    );
    let text = notice["text"].as_str().unwrap();
    assert!(
        text.contains(ANN) && text.contains(&format!("/api/integrations/{id}/reconnect")),
        "{text}"
    );
    assert!(
        notice["subject"]
            .as_str()
            .unwrap()
            .contains("reconnect Gmail")
    );
    let everything = notice.to_string();
    assert!(
        !everything.contains(&access) && !everything.contains(&refresh),
        "no token in a notice"
    );

    // Reconnect, break again: a second episode, a second notice.
    w.connect(Consent::allow_all()).await;
    break_connection(&w, &id).await;
    w.app.worker.drain().await.unwrap();
    assert_eq!(w.outbox().await.len(), 2);
}

#[tokio::test]
async fn missing_scopes_found_at_run_time_notify_once() {
    let w = world().await;
    let id = w.connect(Consent::allow_all()).await["integration_id"].clone();
    let (workspace, integration) = w.ids(&id);
    w.sandbox
        .inject_fault("getProfile", common::google::insufficient_permissions(), 4);
    let gmail = w.app.vault.gmail().clone();
    let calls: Vec<_> = (0..4)
        .map(|_| {
            let (vault, gmail) = (Arc::clone(&w.app.vault), gmail.clone());
            tokio::spawn(async move {
                vault
                    .with_gmail(workspace, integration, Capability::ReadMail, |token| {
                        let gmail = gmail.clone();
                        async move { gmail.profile(&token).await }
                    })
                    .await
            })
        })
        .collect();
    for call in calls {
        assert!(matches!(
            call.await.unwrap(),
            Err(VaultError::MissingScopes(_))
        ));
    }
    w.app.worker.drain().await.unwrap();
    let emails = w.outbox().await;
    assert_eq!(emails.len(), 1, "{emails:?}");
    assert_eq!(emails[0]["kind"], "integration_missing_scopes");
    assert!(
        emails[0]["text"]
            .as_str()
            .unwrap()
            .contains("gmail.readonly")
    );
}

/// A stand-in for Sidemail's API: records requests, answers from a script.
#[derive(Clone, Default)]
struct FakeSidemail {
    requests: Arc<Mutex<Vec<(HeaderMap, Value)>>>,
    script: Arc<Mutex<VecDeque<(StatusCode, Value)>>>,
}

impl FakeSidemail {
    async fn start(&self) -> String {
        let fake = self.clone();
        let router = axum::Router::new().route(
            "/v1/email/send",
            post(move |headers: HeaderMap, Json(body): Json<Value>| {
                let fake = fake.clone();
                async move {
                    fake.requests.lock().unwrap().push((headers, body));
                    let (status, answer) = fake
                        .script
                        .lock()
                        .unwrap()
                        .pop_front()
                        .unwrap_or((StatusCode::OK, json!({"id": "em_1", "status": "queued"})));
                    (status, Json(answer))
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, router).await });
        url
    }

    fn then_answer(&self, status: StatusCode, body: Value) {
        self.script.lock().unwrap().push_back((status, body));
    }

    fn requests(&self) -> Vec<(HeaderMap, Value)> {
        self.requests.lock().unwrap().clone()
    }
}

async fn world_with_sidemail(fake: &FakeSidemail) -> World {
    let url = fake.start().await;
    world_with(&[
        ("MAILWRIGHT_SIDEMAIL_API_KEY", "sm-test-api-key".to_owned()),
        ("MAILWRIGHT_SIDEMAIL_API_URL", url),
        (
            "MAILWRIGHT_SYSTEM_FROM",
            "Mailwright Alerts <alerts@mailwright.example>".to_owned(),
        ),
    ])
    .await
}

#[tokio::test]
async fn sidemail_gets_the_documented_request_and_an_outage_only_delays_the_notice() {
    let fake = FakeSidemail::default();
    let w = world_with_sidemail(&fake).await;
    let id = w.connect(Consent::allow_all()).await["integration_id"].clone();
    fake.then_answer(
        StatusCode::SERVICE_UNAVAILABLE,
        json!({"developerMessage": "maintenance"}),
    );
    break_connection(&w, &id).await;

    assert_eq!(w.app.worker.drain().await.unwrap(), 1);
    let emails = w.outbox().await;
    assert_eq!(
        emails[0]["status"], "retrying",
        "kept for the retry: {emails:?}"
    );
    assert!(emails[0]["last_error"].as_str().unwrap().contains("503"));

    store::testing::make_jobs_due(&w.app.store).await;
    assert_eq!(w.app.worker.drain().await.unwrap(), 1);
    let emails = w.outbox().await;
    assert_eq!(
        (emails[0]["status"].clone(), emails[0]["provider"].clone()),
        (json!("sent"), json!("sidemail"))
    );

    let requests = fake.requests();
    assert_eq!(requests.len(), 2, "one failed attempt, one delivery");
    let (headers, body) = &requests[1];
    assert_eq!(headers["authorization"], "Bearer sm-test-api-key");
    assert_eq!(body["toAddress"], "owner@acme.example");
    assert_eq!(body["fromAddress"], "alerts@mailwright.example");
    assert_eq!(body["fromName"], "Mailwright Alerts");
    assert!(body["subject"].as_str().unwrap().contains("reconnect"));
    assert!(body["text"].as_str().unwrap().contains("/reconnect"));
    assert!(body["html"].as_str().unwrap().contains("<a href="));
    let keys: std::collections::BTreeSet<&str> = body
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        [
            "fromAddress",
            "fromName",
            "html",
            "subject",
            "text",
            "toAddress"
        ]
        .into_iter()
        .collect()
    );
}

#[tokio::test]
async fn a_refused_sidemail_key_fails_once_with_a_clear_reason_and_no_retry_storm() {
    let fake = FakeSidemail::default();
    let w = world_with_sidemail(&fake).await;
    let id = w.connect(Consent::allow_all()).await["integration_id"].clone();
    fake.then_answer(
        StatusCode::UNAUTHORIZED,
        json!({"developerMessage": "Invalid project API key sm-test-api-key"}),
    );
    break_connection(&w, &id).await;

    w.app.worker.drain().await.unwrap();
    store::testing::make_jobs_due(&w.app.store).await;
    w.app.worker.drain().await.unwrap();
    assert_eq!(
        fake.requests().len(),
        1,
        "a permanent refusal is not retried"
    );
    let emails = w.outbox().await;
    assert_eq!(emails[0]["status"], "failed");
    let reason = emails[0]["last_error"].as_str().unwrap();
    assert!(reason.contains("MAILWRIGHT_SIDEMAIL_API_KEY"), "{reason}");
    let everything = serde_json::to_string(&emails).unwrap();
    assert!(
        !everything.contains("Invalid project API key") && !everything.contains("sm-test-api-key"),
        "nothing upstream or secret shown"
    );
}

#[tokio::test]
async fn smtp_delivers_the_notice_to_a_real_server_with_both_bodies() {
    let smtp = SmtpServer::start();
    let w = world_with(&[
        (
            "MAILWRIGHT_SMTP_URL",
            format!("smtp://127.0.0.1:{}", smtp.port),
        ),
        (
            "MAILWRIGHT_SYSTEM_FROM",
            "Mailwright Alerts <alerts@mailwright.example>".to_owned(),
        ),
    ])
    .await;
    let id = w.connect(Consent::allow_all()).await["integration_id"].clone();
    break_connection(&w, &id).await;
    assert_eq!(w.app.worker.drain().await.unwrap(), 1);
    let emails = w.outbox().await;
    assert_eq!(emails[0]["status"], "sent", "{emails:?}");

    let messages = smtp.messages();
    assert_eq!(messages.len(), 1, "exactly one message arrived");
    let message = &messages[0];
    let header = |name: &str| {
        message
            .lines()
            .find(|line| {
                line.to_ascii_lowercase()
                    .starts_with(&format!("{}:", name.to_ascii_lowercase()))
            })
            .map(|line| line.split_once(':').unwrap().1.trim().to_owned())
            .unwrap_or_default()
    };
    assert_eq!(
        header("From"),
        "\"Mailwright Alerts\" <alerts@mailwright.example>"
    );
    assert_eq!(header("To"), "owner@acme.example");
    assert!(
        header("Subject").contains("reconnect Gmail"),
        "{}",
        header("Subject")
    );
    assert!(
        header("Content-Type").starts_with("multipart/alternative"),
        "{message}"
    );
    assert!(
        message.contains("Content-Type: text/plain") && message.contains("Content-Type: text/html"),
        "{message}"
    );
    assert!(message.contains("/reconnect"));
}

#[tokio::test]
async fn users_are_synced_to_sidemail_contacts_once_when_first_seen_and_when_their_email_changes() {
    let contacts: Arc<Mutex<Vec<(HeaderMap, Value)>>> = Arc::default();
    let recorded = Arc::clone(&contacts);
    let router = axum::Router::new().route(
        "/v1/contacts",
        post(move |headers: HeaderMap, Json(body): Json<Value>| {
            let recorded = Arc::clone(&recorded);
            async move {
                recorded.lock().unwrap().push((headers, body));
                Json(json!({"status": "created"}))
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let sidemail_url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await });

    let idp = common::idp::TestIdp::start().await;
    let mut settings: Vec<(&str, String)> = idp.settings();
    settings.push(("MAILWRIGHT_SIDEMAIL_API_KEY", "sm-test-api-key".to_owned()));
    settings.push(("MAILWRIGHT_SIDEMAIL_API_URL", sidemail_url));
    let app = common::spawn_app_with(&settings).await;

    let token = idp.rs256(&common::idp::TestIdp::claims(
        "user_42",
        json!({"email": "grace@example.com"}),
    ));
    for _ in 0..3 {
        assert_eq!(app.get_as("/api/me", &token).await.status(), 200);
    }
    app.worker.drain().await.unwrap();
    {
        let contacts = contacts.lock().unwrap();
        assert_eq!(contacts.len(), 1, "first sight only");
        let (headers, body) = &contacts[0];
        assert_eq!(headers["authorization"], "Bearer sm-test-api-key");
        assert_eq!(body["emailAddress"], "grace@example.com");
        assert!(
            body["identifier"].as_str().unwrap().len() == 36,
            "Mailwright's user id: {body}"
        );
        assert_eq!(body["customProps"]["source"], "mailwright");
    }

    // A new address (after the identity cache expires, or on a new token):
    // the user's email changes, and the contact follows.
    let changed = idp.rs256(&common::idp::TestIdp::claims(
        "user_42",
        json!({"email": "grace@new.example", "org_id": "org_1"}),
    ));
    assert_eq!(app.get_as("/api/me", &changed).await.status(), 200);
    app.worker.drain().await.unwrap();
    let contacts = contacts.lock().unwrap();
    assert_eq!(contacts.len(), 2);
    assert_eq!(contacts[1].1["emailAddress"], "grace@new.example");
    assert_eq!(
        contacts[1].1["identifier"], contacts[0].1["identifier"],
        "the same contact"
    );
}
