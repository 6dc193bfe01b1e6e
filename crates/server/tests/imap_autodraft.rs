//! Auto-draft on a mailbox connected by IMAP, against real Dovecot: new
//! mail found by polling gets one reply draft in the Drafts folder, threaded
//! by its headers so mail clients show it in the conversation, and a second
//! poll makes no second draft.

mod common;

use common::mailservers::{ALICE, ALICE_PASSWORD, BOB, MailServers};
use common::{Tenant, TestApp, spawn_app_with};
use serde_json::{Value, json};

async fn connected(servers: &MailServers) -> (TestApp, Tenant, String) {
    let env = servers.app_env();
    let env: Vec<(&str, String)> = env.iter().map(|(k, v)| (*k, v.clone())).collect();
    let app = spawn_app_with(&env).await;
    let tenant = app.bare_tenant("acme").await;
    let response = app
        .client
        .post(app.url("/api/integrations/imap"))
        .bearer_auth(&tenant.key)
        .json(&servers.connect_body(ALICE, ALICE_PASSWORD))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let integration: Value = response.json().await.unwrap();
    let id = integration["id"].as_str().unwrap().to_owned();
    (app, tenant, id)
}

async fn drain(app: &TestApp) {
    for _ in 0..5 {
        store::testing::make_jobs_due(&app.store).await;
        if app.worker.drain().await.unwrap() == 0 {
            return;
        }
    }
}

async fn poll(app: &TestApp) {
    store::testing::make_polls_due(&app.store).await;
    app.autodraft.poll_tick(store::now()).await.unwrap();
    drain(app).await;
}

fn from_bob(message_id: &str, subject: &str, text: &str) -> String {
    format!(
        "From: Bob Example <{BOB}>\r\nTo: Alice <{ALICE}>\r\nSubject: {subject}\r\n\
Message-ID: {message_id}\r\nDate: {}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{text}\r\n",
        chrono::Utc::now().to_rfc2822()
    )
}

#[tokio::test]
async fn new_mail_gets_one_threaded_reply_draft_in_the_drafts_folder() {
    let mut servers = MailServers::start();
    let (app, tenant, id) = connected(&servers).await;
    let switched = app
        .client
        .put(app.url(&format!("/api/integrations/{id}/auto-draft")))
        .bearer_auth(&tenant.key)
        .json(&json!({"enabled": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(switched.status(), 200, "{}", switched.text().await.unwrap());
    drain(&app).await;

    servers.deliver(
        ALICE,
        &from_bob(
            "<lunch-1@example.test>",
            "Lunch on Friday?",
            "Are you free for lunch on Friday?",
        ),
    );
    poll(&app).await;

    assert_eq!(
        servers.count(ALICE, "Drafts", "In-Reply-To", "<lunch-1@example.test>"),
        1
    );
    assert_eq!(
        servers.count(ALICE, "Drafts", "References", "<lunch-1@example.test>"),
        1
    );
    assert_eq!(
        servers.count(ALICE, "Drafts", "Subject", "Re: Lunch on Friday?"),
        1
    );

    let drafts: Value = app
        .get_as(&format!("/api/integrations/{id}/drafts"), &tenant.key)
        .await
        .json()
        .await
        .unwrap();
    let drafts = drafts["drafts"].as_array().unwrap();
    assert_eq!(drafts.len(), 1, "{drafts:?}");
    assert_eq!(drafts[0]["subject"], "Lunch on Friday?");

    // Polling again finds nothing new and makes no second draft.
    poll(&app).await;
    assert_eq!(
        servers.count(ALICE, "Drafts", "In-Reply-To", "<lunch-1@example.test>"),
        1
    );
}

async fn outbox(app: &TestApp, tenant: &Tenant) -> Vec<Value> {
    let answer: Value = app
        .get_as("/api/system-emails", &tenant.key)
        .await
        .json()
        .await
        .unwrap();
    answer["emails"].as_array().unwrap().clone()
}

#[tokio::test]
async fn a_changed_password_ends_in_needs_reauth_with_one_notice() {
    let mut servers = MailServers::start();
    let (app, tenant, id) = connected(&servers).await;
    let switched = app
        .client
        .put(app.url(&format!("/api/integrations/{id}/auto-draft")))
        .bearer_auth(&tenant.key)
        .json(&json!({"enabled": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(switched.status(), 200);
    drain(&app).await;

    servers.command(&format!("password {ALICE} changed-on-the-server"));
    servers.deliver(
        ALICE,
        &from_bob("<after-change@example.test>", "Still there?", "Hello?"),
    );
    poll(&app).await;
    let integration: Value = app
        .get_as(&format!("/api/integrations/{id}"), &tenant.key)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(integration["status"], "needs_reauth", "{integration}");
    assert_eq!(
        integration["last_error"]["code"], "needs_reauth",
        "{integration}"
    );
    assert!(
        integration["last_error"]["message"]
            .as_str()
            .unwrap()
            .contains("refused the saved password"),
        "{integration}"
    );
    let emails = outbox(&app, &tenant).await;
    assert_eq!(emails.len(), 1, "{emails:?}");
    assert_eq!(emails[0]["kind"], "integration_needs_reauth");

    // Paused: more polls and the daily check make no new attempt and no
    // second notice.
    poll(&app).await;
    store::testing::age_connection_checks(
        &app.store,
        engine::health::CHECK_EVERY + chrono::Duration::minutes(1),
    )
    .await;
    let health = engine::health::ConnectionHealth::new(app.store.clone(), app.vault.clone());
    health.tick(store::now()).await.unwrap();
    drain(&app).await;
    assert_eq!(outbox(&app, &tenant).await.len(), 1);

    // Connecting again with the new password repairs it, same connection.
    let repaired: Value = app
        .client
        .post(app.url("/api/integrations/imap"))
        .bearer_auth(&tenant.key)
        .json(&servers.connect_body(ALICE, "changed-on-the-server"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(repaired["id"].as_str(), Some(id.as_str()));
    assert_eq!(repaired["status"], "connected");
    poll(&app).await;
    assert_eq!(
        servers.count(
            ALICE,
            "Drafts",
            "In-Reply-To",
            "<after-change@example.test>"
        ),
        1,
        "the message that came meanwhile is drafted after the repair"
    );
}

#[tokio::test]
async fn each_mailbox_is_followed_by_one_process_and_each_process_follows_at_most_its_share() {
    let servers = MailServers::start();
    let mut env = servers.app_env();
    env.push(("MAILWRIGHT_IMAP_IDLE_CONNECTIONS", "1".to_owned()));
    let env: Vec<(&str, String)> = env.iter().map(|(k, v)| (*k, v.clone())).collect();
    let app = spawn_app_with(&env).await;
    let tenant = app.bare_tenant("acme").await;
    for (user, password) in [
        (ALICE, ALICE_PASSWORD),
        (BOB, common::mailservers::BOB_PASSWORD),
    ] {
        let integration: Value = app
            .client
            .post(app.url("/api/integrations/imap"))
            .bearer_auth(&tenant.key)
            .json(&servers.connect_body(user, password))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let id = integration["id"].as_str().unwrap();
        let switched = app
            .client
            .put(app.url(&format!("/api/integrations/{id}/auto-draft")))
            .bearer_auth(&tenant.key)
            .json(&json!({"enabled": true}))
            .send()
            .await
            .unwrap();
        assert_eq!(switched.status(), 200);
    }
    let (_stop, shutdown) = tokio::sync::watch::channel(false);
    // Three processes, one IDLE connection each at most.
    let processes: Vec<_> = (0..3)
        .map(|_| std::sync::Arc::new(engine::autodraft::ImapIdle::new(app.autodraft.clone())))
        .collect();
    let mut started = Vec::new();
    for process in &processes {
        started.push(process.clone().tick(shutdown.clone()).await.unwrap());
    }
    assert_eq!(
        started,
        [1, 1, 0],
        "two mailboxes, one process each, none twice"
    );
    for process in &processes {
        assert_eq!(process.clone().tick(shutdown.clone()).await.unwrap(), 0);
    }
}

#[tokio::test]
async fn a_new_uidvalidity_is_caught_up_by_date_without_a_second_draft() {
    let mut servers = MailServers::start();
    let (app, tenant, id) = connected(&servers).await;
    let switched = app
        .client
        .put(app.url(&format!("/api/integrations/{id}/auto-draft")))
        .bearer_auth(&tenant.key)
        .json(&json!({"enabled": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(switched.status(), 200);
    drain(&app).await;
    servers.deliver(
        ALICE,
        &from_bob("<before@example.test>", "Before", "First question?"),
    );
    poll(&app).await;
    assert_eq!(
        servers.count(ALICE, "Drafts", "In-Reply-To", "<before@example.test>"),
        1
    );

    // The server rebuilt its index: every UID of the inbox is new.
    servers.reset_uidvalidity(ALICE);
    servers.deliver(
        ALICE,
        &from_bob("<after@example.test>", "After", "Second question?"),
    );
    poll(&app).await;
    let autodraft: Value = app
        .get_as(&format!("/api/integrations/{id}/auto-draft"), &tenant.key)
        .await
        .json()
        .await
        .unwrap();
    assert!(
        autodraft["events"].to_string().contains("catch_up"),
        "a catch-up by date: {autodraft}"
    );
    assert_eq!(
        servers.count(ALICE, "Drafts", "In-Reply-To", "<after@example.test>"),
        1,
        "{autodraft}"
    );
    assert_eq!(
        servers.count(ALICE, "Drafts", "In-Reply-To", "<before@example.test>"),
        1,
        "the message seen under its old UID gets no second draft"
    );
}
