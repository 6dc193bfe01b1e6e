//! Auto-draft on a mailbox connected by IMAP, against real Dovecot: new
//! mail found by polling gets one reply draft in the Drafts folder, threaded
//! by its headers so mail clients show it in the conversation, and a second
//! poll makes no second draft.

mod common;

use common::mailservers::{
    ALICE, BOB, BOB_PASSWORD, MailServers, connect, connected_app, drain, enable_autodraft,
    get_json, poll,
};
use serde_json::Value;

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
    let (app, tenant, id) = connected_app(&servers, &[]).await;
    enable_autodraft(&app, &tenant, &id).await;

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

    let drafts = get_json(&app, &tenant, &format!("/api/integrations/{id}/drafts")).await;
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

async fn outbox(app: &common::TestApp, tenant: &common::Tenant) -> Vec<Value> {
    let answer = get_json(app, tenant, "/api/system-emails").await;
    answer["emails"].as_array().unwrap().clone()
}

#[tokio::test]
async fn a_changed_password_ends_in_needs_reauth_with_one_notice() {
    let mut servers = MailServers::start();
    let (app, tenant, id) = connected_app(&servers, &[]).await;
    enable_autodraft(&app, &tenant, &id).await;

    servers.command(&format!("password {ALICE} changed-on-the-server"));
    servers.deliver(
        ALICE,
        &from_bob("<after-change@example.test>", "Still there?", "Hello?"),
    );
    poll(&app).await;
    let integration = get_json(&app, &tenant, &format!("/api/integrations/{id}")).await;
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
    let (app, tenant, alice) = connected_app(
        &servers,
        &[("MAILWRIGHT_IMAP_IDLE_CONNECTIONS", "1".to_owned())],
    )
    .await;
    let bob = connect(&app, &tenant, &servers, BOB, BOB_PASSWORD).await;
    for id in [alice, bob] {
        enable_autodraft(&app, &tenant, &id).await;
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
    let (app, tenant, id) = connected_app(&servers, &[]).await;
    enable_autodraft(&app, &tenant, &id).await;
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
    let autodraft = get_json(&app, &tenant, &format!("/api/integrations/{id}/auto-draft")).await;
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
