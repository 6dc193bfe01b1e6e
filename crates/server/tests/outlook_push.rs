//! Outlook mailboxes announced by Microsoft Graph change notifications: a
//! subscription is made when auto-draft is switched on (Graph's validation
//! request answered by `POST /api/push/microsoft`), a notification whose
//! clientState is the subscription's queues a sync (the draft is made with
//! no poll), anything else is ignored, the subscription is renewed before
//! it expires and made again when Graph lost it, deleted when auto-draft is
//! switched off or the mailbox disconnected, and a subscription Graph
//! refuses is explained while the poll still finds mail.

mod common;

use std::time::{Duration, Instant};

use common::autodraft::{autodraft, deliver_to_outlook, drain, poll, put_switch};
use common::google::{ANN_OUTLOOK, World, world};
use sandbox::{Consent, GraphFault, MicrosoftSubscription};
use serde_json::{Value, json};

const DEADLINE: Duration = Duration::from_secs(10);

async fn outlook(w: &World) -> String {
    w.connect_outlook(Consent::allow_all()).await["integration_id"].clone()
}

async fn switch_on(w: &World, id: &str) {
    let (status, body) = put_switch(w, id, true).await;
    assert_eq!(status, 200, "{body}");
    drain(w).await;
}

fn subscriptions(w: &World) -> Vec<MicrosoftSubscription> {
    w.sandbox.microsoft().subscriptions(ANN_OUTLOOK)
}

fn only_subscription(w: &World) -> MicrosoftSubscription {
    let all = subscriptions(w);
    assert_eq!(all.len(), 1, "{all:?}");
    all.into_iter().next().unwrap()
}

fn drafts_in_outlook(w: &World) -> usize {
    w.sandbox.microsoft().messages(ANN_OUTLOOK, "drafts").len()
}

/// Wait until the sandbox has posted `count` notifications that the app
/// accepted (202).
async fn notified(w: &World, count: usize) {
    let until = Instant::now() + DEADLINE;
    loop {
        let accepted = w
            .sandbox
            .microsoft()
            .notifications()
            .iter()
            .filter(|n| n.delivered && n.status == Some(202))
            .count();
        if accepted >= count {
            return;
        }
        assert!(
            Instant::now() < until,
            "no accepted notification within {DEADLINE:?}: {:?}",
            w.sandbox.microsoft().notifications()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn push(w: &World, query: &str, body: Value) -> (u16, Value) {
    let answer = w
        .app
        .client
        .post(w.app.url(&format!("/api/push/microsoft{query}")))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = answer.status().as_u16();
    (status, answer.json().await.unwrap_or(Value::Null))
}

async fn jobs_queued(w: &World) -> usize {
    store::testing::make_jobs_due(&w.app.store).await;
    w.app.worker.drain().await.unwrap()
}

#[tokio::test]
async fn new_mail_gets_its_draft_by_notification_without_a_poll() {
    let w = world().await;
    let id = outlook(&w).await;
    switch_on(&w, &id).await;

    let subscription = only_subscription(&w);
    assert_eq!(subscription.resource, "me/mailFolders('Inbox')/messages");
    assert_eq!(subscription.change_type, "created");
    assert_eq!(
        subscription.notification_url,
        w.app.url("/api/push/microsoft")
    );
    // Only the secret's hash is kept.
    let client_state = subscription.client_state.clone().expect("a clientState");
    let (_, _, stored) = w
        .app
        .store
        .mailbox_of_subscription(&subscription.id)
        .await
        .unwrap()
        .expect("the subscription is recorded");
    assert_ne!(stored, client_state);
    assert_eq!(stored, engine::secrets::sha256_hex(&client_state));
    let view = autodraft(&w, &id).await;
    assert_eq!(view["watch"]["status"], "active", "{view}");

    let original = deliver_to_outlook(&w, "March figures");
    notified(&w, 1).await;
    // No poll: the notification queued the sync.
    drain(&w).await;
    let made = w.sandbox.microsoft().messages(ANN_OUTLOOK, "drafts");
    assert_eq!(made.len(), 1, "{made:?}");
    assert_eq!(made[0].conversation_id, original.conversation_id);
    assert_eq!(made[0].subject, "Re: March figures");

    // The poll, the safety net, finds nothing more.
    poll(&w).await;
    assert_eq!(drafts_in_outlook(&w), 1);
}

#[tokio::test]
async fn what_graph_did_not_send_queues_nothing() {
    let w = world().await;
    let id = outlook(&w).await;
    switch_on(&w, &id).await;
    let subscription = only_subscription(&w);
    deliver_to_outlook(&w, "Not announced");
    notified(&w, 1).await;
    drain(&w).await;
    assert_eq!(drafts_in_outlook(&w), 1);

    // The validation handshake: the token back, as text/plain.
    let token =
        "Validation: Testing client application reachability for subscription Request-Id: 1";
    let answer = w
        .app
        .client
        .post(w.app.url(&format!(
            "/api/push/microsoft?validationToken={}",
            token.replace(' ', "%20").replace(':', "%3A")
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    assert!(
        answer.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    assert_eq!(answer.text().await.unwrap(), token);

    // A wrong clientState, an unknown subscription: accepted, ignored.
    let notice = |subscription: &str, client_state: &str| {
        json!({"value": [{"subscriptionId": subscription, "clientState": client_state,
            "changeType": "created", "resource": "Users/x/Messages/y"}]})
    };
    let (status, body) = push(&w, "", notice(&subscription.id, "guessed")).await;
    assert_eq!((status, &body), (202, &json!({"mailboxes": 0})));
    let (status, body) = push(
        &w,
        "",
        notice("00000000-0000-0000-0000-000000000000", "guessed"),
    )
    .await;
    assert_eq!((status, &body), (202, &json!({"mailboxes": 0})));
    assert_eq!(jobs_queued(&w).await, 0, "nothing was queued");

    // Not Graph's shape: 422 naming the field.
    let (status, body) = push(&w, "", json!({"value": [{"clientState": "c"}]})).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(
        body["errors"][0]["field"], "value[0].subscriptionId",
        "{body}"
    );

    // The right clientState queues the sync.
    let client_state = subscription.client_state.unwrap();
    let (status, body) = push(&w, "", notice(&subscription.id, &client_state)).await;
    assert_eq!((status, &body), (202, &json!({"mailboxes": 1})));
    assert_eq!(jobs_queued(&w).await, 1, "one sync");
}

#[tokio::test]
async fn the_subscription_is_renewed_daily_and_made_again_when_graph_lost_it() {
    let w = world().await;
    let id = outlook(&w).await;
    switch_on(&w, &id).await;
    let first = only_subscription(&w);
    let microsoft = w.sandbox.microsoft();

    // Not due yet: nothing.
    assert_eq!(w.app.autodraft.watch_tick(store::now()).await.unwrap(), 0);
    // A day later the renewal is due: the same subscription, renewed.
    let tomorrow = store::now() + chrono::Duration::hours(25);
    assert_eq!(w.app.autodraft.watch_tick(tomorrow).await.unwrap(), 1);
    drain(&w).await;
    assert_eq!(microsoft.call_count("graph.subscriptions.update"), 1);
    assert_eq!(only_subscription(&w).id, first.id);
    assert_eq!(autodraft(&w, &id).await["watch"]["status"], "active");

    // Graph dropped it: the renewal finds it gone and makes a new one,
    // and only the new one's notifications count.
    assert!(microsoft.expire_subscription(&first.id));
    let later = store::now() + chrono::Duration::hours(50);
    assert_eq!(w.app.autodraft.watch_tick(later).await.unwrap(), 1);
    drain(&w).await;
    let second = only_subscription(&w);
    assert_ne!(second.id, first.id);
    assert_ne!(second.client_state, first.client_state);
    assert_eq!(microsoft.call_count("graph.subscriptions.create"), 2);
    let (status, body) = push(
        &w,
        "",
        json!({"value": [{"subscriptionId": first.id, "clientState": first.client_state}]}),
    )
    .await;
    assert_eq!((status, &body), (202, &json!({"mailboxes": 0})));

    deliver_to_outlook(&w, "After the renewal");
    notified(&w, 1).await;
    drain(&w).await;
    assert_eq!(drafts_in_outlook(&w), 1);

    // A subscription that lapsed here too (renewals failed for days) is
    // not renewed but replaced, and the new one recorded.
    let (workspace, integration) = w.ids(&id);
    let past = store::now() - chrono::Duration::minutes(1);
    w.app
        .store
        .record_watch(workspace, integration, past, past)
        .await
        .unwrap();
    assert_eq!(autodraft(&w, &id).await["watch"]["status"], "failing");
    assert_eq!(w.app.autodraft.watch_tick(store::now()).await.unwrap(), 1);
    drain(&w).await;
    let third = subscriptions(&w)
        .into_iter()
        .find(|s| s.id != first.id && s.id != second.id)
        .expect("a new subscription");
    let (_, _, stored) = w
        .app
        .store
        .mailbox_of_subscription(&third.id)
        .await
        .unwrap()
        .expect("the new subscription is recorded");
    assert_eq!(
        stored,
        engine::secrets::sha256_hex(third.client_state.as_deref().unwrap())
    );
    assert_eq!(microsoft.call_count("graph.subscriptions.update"), 2);
    assert_eq!(autodraft(&w, &id).await["watch"]["status"], "active");
}

#[tokio::test]
async fn switching_off_and_disconnecting_delete_the_subscription() {
    let w = world().await;
    let id = outlook(&w).await;
    switch_on(&w, &id).await;
    only_subscription(&w);

    let (status, body) = put_switch(&w, &id, false).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["watch"]["status"], "off", "{body}");
    assert!(subscriptions(&w).is_empty(), "{:?}", subscriptions(&w));
    deliver_to_outlook(&w, "While off");
    poll(&w).await;
    assert_eq!(drafts_in_outlook(&w), 0);

    switch_on(&w, &id).await;
    only_subscription(&w);
    let answer = w
        .app
        .client
        .delete(w.app.url(&format!("/api/integrations/{id}")))
        .bearer_auth(&w.tenant.key)
        .send()
        .await
        .unwrap();
    assert!(answer.status().is_success(), "{}", answer.status());
    assert!(subscriptions(&w).is_empty(), "{:?}", subscriptions(&w));
}

#[tokio::test]
async fn a_subscription_graph_refuses_is_explained_and_the_poll_still_finds_mail() {
    let w = world().await;
    let id = outlook(&w).await;
    // Graph could not validate the notification URL.
    w.sandbox
        .microsoft()
        .fail_graph_calls(GraphFault::status(400, 1).on_path("/subscriptions"));
    switch_on(&w, &id).await;
    assert!(subscriptions(&w).is_empty());

    let view = autodraft(&w, &id).await;
    assert_eq!(view["watch"]["status"], "failing", "{view}");
    assert_eq!(
        view["watch"]["last_error"]["code"], "subscription_refused",
        "{view}"
    );
    let message = view["watch"]["last_error"]["message"].as_str().unwrap();
    assert!(
        message.contains("/api/push/microsoft") && message.contains("HTTPS"),
        "{message}"
    );
    // The connection itself is fine: the refusal is the server's to fix.
    assert_eq!(w.integration(&id).await["status"], "connected");

    deliver_to_outlook(&w, "Found by the poll");
    poll(&w).await;
    assert_eq!(drafts_in_outlook(&w), 1);

    // The retry (15 minutes later) makes it.
    let later = store::now() + chrono::Duration::minutes(16);
    assert_eq!(w.app.autodraft.watch_tick(later).await.unwrap(), 1);
    drain(&w).await;
    only_subscription(&w);
    assert_eq!(autodraft(&w, &id).await["watch"]["status"], "active");
}

#[tokio::test]
async fn a_mailbox_only_a_workflow_reads_keeps_its_subscription_renewed() {
    let w = world().await;
    let id = outlook(&w).await;
    common::workflows::create_ok(
        &w,
        json!({"name": "on mail", "trigger": {"type": "new_mail", "integration_id": id},
            "steps": [{"action": "email.send_system", "to": ["ops@example.com"],
                "subject": "New mail", "body": "{{ input.message.subject }}"}]}),
    )
    .await;
    drain(&w).await;
    let first = only_subscription(&w);
    let microsoft = w.sandbox.microsoft();

    let tomorrow = store::now() + chrono::Duration::hours(25);
    assert_eq!(w.app.autodraft.watch_tick(tomorrow).await.unwrap(), 1);
    drain(&w).await;
    assert_eq!(microsoft.call_count("graph.subscriptions.update"), 1);

    // Auto-draft on and off again: the workflow still reads the mailbox,
    // so its subscription stays and is still renewed.
    switch_on(&w, &id).await;
    let (status, body) = put_switch(&w, &id, false).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(only_subscription(&w).id, first.id);
    let later = store::now() + chrono::Duration::hours(50);
    assert_eq!(w.app.autodraft.watch_tick(later).await.unwrap(), 1);
    drain(&w).await;
    assert_eq!(microsoft.call_count("graph.subscriptions.update"), 2);
    assert_eq!(only_subscription(&w).id, first.id);
}

#[tokio::test]
async fn without_microsoft_configured_the_endpoint_says_so() {
    let app = common::spawn_app().await;
    let answer = app
        .client
        .post(app.url("/api/push/microsoft?validationToken=ping"))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 503);
    let problem: Value = answer.json().await.unwrap();
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("MAILWRIGHT_MICROSOFT_CLIENT_ID"),
        "{problem}"
    );
}
