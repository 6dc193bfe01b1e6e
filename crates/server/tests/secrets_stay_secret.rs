//! API key secrets, passwords and their hashes, and session tokens never
//! appear in a log line or in a response that is not the one creating them.

mod common;

use common::spawn_app;
use serde_json::{Value, json};

#[tokio::test]
async fn no_secret_reaches_a_log_line_or_a_listing() {
    let captured = common::logs::CapturedLogs::install();

    let app = spawn_app().await;
    let tenant = app.tenant("acme").await;
    let password = "correct horse battery staple";
    let email = domain::EmailAddress::parse("ada@acme.example").unwrap();
    mailwright::auth::accounts::create_local_user(&app.store, &email, password, Some("acme"))
        .await
        .unwrap();
    let (_, hash) = app
        .store
        .local_account("ada@acme.example")
        .await
        .unwrap()
        .unwrap();

    let created: Value = app
        .client
        .post(app.url("/api/api-keys"))
        .bearer_auth(&tenant.key)
        .json(&json!({"name": "logged?"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let new_key = created["key"].as_str().unwrap().to_owned();
    let listing = app
        .get_as("/api/api-keys", &new_key)
        .await
        .text()
        .await
        .unwrap();
    app.get_as("/api/me", "mw_wrong-key-that-should-not-be-logged")
        .await;

    let logs = captured.text();
    assert!(
        logs.contains("answered"),
        "the capture works: {} bytes",
        logs.len()
    );
    for secret in [
        tenant.key.as_str(),
        new_key.as_str(),
        password,
        hash.as_str(),
        "$argon2id$",
        "mw_wrong-key-that-should-not-be-logged",
    ] {
        assert!(
            !logs.contains(secret),
            "a secret reached the logs: {secret}"
        );
    }
    for secret in [tenant.key.as_str(), new_key.as_str(), hash.as_str()] {
        assert!(!listing.contains(secret), "a secret is listed: {listing}");
    }
}
