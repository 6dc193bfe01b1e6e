//! The `/_sandbox/...` JSON controls, and mounting under a prefix.

mod common;

use common::*;
use mailwright_sandbox::{Sandbox, SandboxConfig};
use serde_json::{Value, json};

async fn post_json(h: &Harness, path: &str, body: &Value) -> (u16, Value) {
    let response = h.http.post(h.url(path)).json(body).send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn get_json(h: &Harness, path: &str) -> (u16, Value) {
    let response = h.http.get(h.url(path)).send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn accounts_delivery_and_reading_mail_over_http() {
    let h = start().await;
    let (status, account) = post_json(
        &h,
        "/_sandbox/accounts",
        &json!({ "email": "zoe@example.com", "name": "Zoe Zed" }),
    )
    .await;
    assert_eq!(status, 201);
    assert_eq!(account["email"], "zoe@example.com");
    assert_eq!(account["name"], "Zoe Zed");
    assert!(
        account["sub"]
            .as_str()
            .unwrap()
            .chars()
            .all(|c| c.is_ascii_digit())
    );
    let (_, accounts) = get_json(&h, "/_sandbox/accounts").await;
    assert_eq!(accounts.as_array().unwrap().len(), 3);

    let (status, delivered) = post_json(
        &h,
        "/_sandbox/deliver",
        &json!({
            "from": "news@list.test",
            "to": ["zoe@example.com", "nobody@elsewhere.test"],
            "subject": "Weekly",
            "text": "plain",
            "html": "<p>rich</p>",
            "headers": [["List-Unsubscribe", "<https://list.test/u>"]],
            "labels": ["INBOX", "CATEGORY_PROMOTIONS"]
        }),
    )
    .await;
    assert_eq!(status, 200, "{delivered}");
    assert_eq!(
        delivered.as_array().unwrap().len(),
        1,
        "only sandbox accounts receive"
    );
    assert_eq!(delivered[0]["email"], "zoe@example.com");

    let (_, messages) = get_json(&h, "/_sandbox/accounts/zoe@example.com/messages").await;
    assert_eq!(messages[0]["subject"], "Weekly");
    assert_eq!(
        messages[0]["label_ids"],
        json!(["INBOX", "CATEGORY_PROMOTIONS"])
    );
    assert_eq!(messages[0]["text"], "plain");
    assert!(
        messages[0]["raw"]
            .as_str()
            .unwrap()
            .contains("List-Unsubscribe: <https://list.test/u>")
    );

    let token = h.access_token("zoe@example.com", GMAIL_READONLY).await;
    let (_, full) = h
        .gmail_get(
            &token,
            &format!("messages/{}", delivered[0]["id"].as_str().unwrap()),
        )
        .await;
    assert_eq!(full["payload"]["mimeType"], "multipart/alternative");
    assert_eq!(full["payload"]["parts"][1]["mimeType"], "text/html");

    let (status, error) = post_json(
        &h,
        "/_sandbox/deliver",
        &json!({ "from": "a@b", "to": ["x@nowhere.test"] }),
    )
    .await;
    assert_eq!(status, 422, "{error}");
    let (status, _) = post_json(&h, "/_sandbox/deliver", &json!({ "to": "not a list" })).await;
    assert_eq!(status, 400);
    let (status, _) = get_json(&h, "/_sandbox/accounts/ghost@example.com/sent").await;
    assert_eq!(status, 404);
    let (_, sent) = get_json(&h, "/_sandbox/accounts/zoe@example.com/sent").await;
    assert_eq!(sent, json!([]));
    let (_, drafts) = get_json(&h, "/_sandbox/accounts/zoe@example.com/drafts").await;
    assert_eq!(drafts, json!([]));
}

#[tokio::test]
async fn faults_tokens_counters_quota_clock_and_history_over_http() {
    let h = start().await;
    let body = h
        .token_for(ANN, GMAIL_READONLY, &[("access_type", "offline")])
        .await;
    let token = body["access_token"].as_str().unwrap();

    let (status, _) = post_json(
        &h,
        "/_sandbox/faults",
        &json!({ "method": "getProfile", "fault": { "kind": "rate_limited" }, "times": 1 }),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(h.gmail_get(token, "profile").await.0, 429);
    post_json(&h, "/_sandbox/faults", &json!({ "method": "getProfile", "fault": { "kind": "status", "status": 503, "body": { "error": "custom" } } })).await;
    let (status, custom) = h.gmail_get(token, "profile").await;
    assert_eq!((status, custom), (503, json!({ "error": "custom" })));
    post_json(
        &h,
        "/_sandbox/faults",
        &json!({ "method": "getProfile", "fault": { "kind": "backend_error" }, "times": 5 }),
    )
    .await;
    let response = h
        .http
        .delete(h.url("/_sandbox/faults"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(h.gmail_get(token, "profile").await.0, 200);
    let (status, _) = post_json(
        &h,
        "/_sandbox/faults",
        &json!({ "method": "getProfile", "fault": { "kind": "explode" } }),
    )
    .await;
    assert_eq!(status, 400);

    let (_, calls) = get_json(&h, "/_sandbox/calls").await;
    assert_eq!(calls["getProfile"], 3);
    assert_eq!(calls["oauth.token.authorization_code"], 1);
    let (_, quota) = get_json(&h, "/_sandbox/quota").await;
    assert_eq!(quota[ANN], 1);

    let (_, profile) = h.gmail_get(token, "profile").await;
    let old_history = profile["historyId"].as_str().unwrap().to_owned();
    h.sandbox
        .deliver(&mailwright_sandbox::InboundMessage::new(
            "x@y.test", ANN, "s", "t",
        ))
        .unwrap();
    let (status, _) = post_json(
        &h,
        &format!("/_sandbox/accounts/{ANN}/history/expire"),
        &json!({}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        h.gmail_get(token, &format!("history?startHistoryId={old_history}"))
            .await
            .0,
        404
    );

    let (_, expired) = post_json(&h, "/_sandbox/tokens/expire", &json!({ "token": token })).await;
    assert_eq!(expired, json!({ "expired": 1 }));
    assert_eq!(h.gmail_get(token, "profile").await.0, 401);

    let second = h.access_token(ANN, GMAIL_READONLY).await;
    post_json(&h, "/_sandbox/clock/advance", &json!({ "seconds": 3600 })).await;
    assert_eq!(
        h.gmail_get(&second, "profile").await.0,
        401,
        "expired by the clock"
    );

    let (_, revoked) = post_json(
        &h,
        "/_sandbox/grants/revoke",
        &json!({ "email": ANN, "client_id": CLIENT_ID }),
    )
    .await;
    assert_eq!(revoked, json!({ "revoked": true }));
    let (status, body) = h
        .post_form(
            "/token",
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", body["refresh_token"].as_str().unwrap()),
                ("client_id", CLIENT_ID),
                ("client_secret", CLIENT_SECRET),
            ],
        )
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
}

#[tokio::test]
async fn approve_and_register_client_over_http() {
    let h = start().await;
    let (status, _) = post_json(
        &h,
        "/_sandbox/clients",
        &json!({ "client_id": "second", "client_secret": "s2", "redirect_uris": ["http://localhost/cb"] }),
    )
    .await;
    assert_eq!(status, 201);
    let auth_url = "/o/oauth2/v2/auth?client_id=second&redirect_uri=http%3A%2F%2Flocalhost%2Fcb&response_type=code&scope=email%20profile&state=s";
    let (status, body) = post_json(
        &h,
        "/_sandbox/approve",
        &json!({ "authorization_url": auth_url, "email": BOB, "scopes": ["email"] }),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let redirect = body["redirect_url"].as_str().unwrap();
    assert!(redirect.starts_with("http://localhost/cb?state=s&code="));
    assert_eq!(
        query_param(redirect, "scope").as_deref(),
        Some("https://www.googleapis.com/auth/userinfo.email")
    );
    let (_, denied) = post_json(
        &h,
        "/_sandbox/approve",
        &json!({ "authorization_url": auth_url, "deny": true }),
    )
    .await;
    assert_eq!(
        denied["redirect_url"],
        "http://localhost/cb?error=access_denied&state=s"
    );
    let (status, error) = post_json(
        &h,
        "/_sandbox/approve",
        &json!({ "authorization_url": "client_id=nobody" }),
    )
    .await;
    assert_eq!(
        (status, error["error"].as_str()),
        (400, Some("invalid_client"))
    );
}

#[tokio::test]
async fn router_works_under_a_prefix() {
    let sandbox = Sandbox::new(SandboxConfig::default());
    let app = axum::Router::new().nest("/sandbox/google", sandbox.router());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}/sandbox/google", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let http = http_client_builder().build().unwrap();
    let response = http
        .post(format!("{base}/_sandbox/accounts"))
        .json(&json!({ "email": "p@example.com" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let response = http
        .get(format!("{base}/gmail/v1/users/me/profile"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let response = http
        .get(format!("{base}/o/oauth2/v2/auth?client_id=x"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
}

#[tokio::test]
async fn labels_and_attachments_over_http() {
    let h = start().await;
    let (status, label) = post_json(
        &h,
        &format!("/_sandbox/accounts/{ANN}/labels"),
        &json!({ "name": "Invoices" }),
    )
    .await;
    assert_eq!(status, 200, "{label}");
    assert_eq!(label, json!({ "id": "Label_1", "name": "Invoices" }));
    let (_, again) = post_json(
        &h,
        &format!("/_sandbox/accounts/{ANN}/labels"),
        &json!({ "name": "invoices" }),
    )
    .await;
    assert_eq!(again, label, "idempotent on the name");
    let (status, _) = post_json(
        &h,
        &format!("/_sandbox/accounts/{ANN}/labels"),
        &json!({ "name": "Inbox" }),
    )
    .await;
    assert_eq!(status, 400, "system labels' names are reserved");
    let (status, _) = post_json(
        &h,
        "/_sandbox/accounts/nobody@example.com/labels",
        &json!({ "name": "X" }),
    )
    .await;
    assert_eq!(status, 404);
    let (status, labels) = get_json(&h, &format!("/_sandbox/accounts/{ANN}/labels")).await;
    assert_eq!(status, 200);
    assert_eq!(labels, json!([{ "id": "Label_1", "name": "Invoices" }]));

    let (status, delivered) = post_json(
        &h,
        "/_sandbox/deliver",
        &json!({
            "from": "billing@vendor.test",
            "to": [ANN],
            "subject": "Invoice",
            "text": "Attached.",
            "labels": ["INBOX", "Label_1"],
            "attachments": [{ "filename": "invoice.pdf", "content_type": "application/pdf", "text": "%PDF-1.4" }]
        }),
    )
    .await;
    assert_eq!(status, 200, "{delivered}");
    let (_, messages) = get_json(&h, &format!("/_sandbox/accounts/{ANN}/messages")).await;
    assert_eq!(messages[0]["label_ids"], json!(["INBOX", "Label_1"]));
    assert_eq!(messages[0]["label_names"], json!(["INBOX", "Invoices"]));
    assert!(
        messages[0]["raw"]
            .as_str()
            .unwrap()
            .contains("Content-Disposition: attachment; filename=\"invoice.pdf\"")
    );

    let token = h.access_token(ANN, GMAIL_READONLY).await;
    let id = delivered[0]["id"].as_str().unwrap();
    let (_, full) = h.gmail_get(&token, &format!("messages/{id}")).await;
    assert_eq!(full["payload"]["parts"][1]["filename"], "invoice.pdf");
    assert_eq!(full["labelIds"], json!(["INBOX", "Label_1"]));
}
