//! Auto-draft end to end against the Google sandbox: the toggle persists and
//! checks scopes, new inbound mail gets exactly one reply draft in its thread,
//! open draft types, every skip rule with its reason, scope loss while running,
//! a worker killed between Gmail's accept and our record, an expired history
//! cursor, and two workers sharing the load.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::assert_problem;
use common::google::{ANN, insufficient_permissions, world};
use domain::scopes;
use engine::autodraft::{AutoDraft, AutoDraftSettings, DraftMessage, Generator, SyncMailbox};
use engine::worker::{JobHandler, Worker};
use sandbox::{Consent, InboundMessage, LlmReply};
use serde_json::{Value, json};

use common::autodraft::{
    BOB, PUSH_TOKEN, autodraft, base64_json, deliver, drafts, drain, enabled_world, from_bob,
    minutes_ago, poll, put_switch,
};

#[tokio::test]
async fn a_message_arriving_after_enabling_gets_one_reply_draft_in_its_thread() {
    let w = world().await;
    let id = w.connect(Consent::allow_all()).await["integration_id"].clone();
    deliver(
        &w,
        from_bob("Before", "This one came before auto-draft was on."),
    );
    assert_eq!(put_switch(&w, &id, true).await.0, 200);
    let mut message = from_bob(
        "Quarterly report",
        "Could you send me the Q3 report?\nThanks, Bob",
    );
    message.message_id = Some("q3-request@bob.example".into());
    let message = message.header("References", "<older@bob.example>");
    let delivered = deliver(&w, message);

    // Switching on again while on keeps the cursor: the message is not lost.
    assert_eq!(put_switch(&w, &id, true).await.0, 200);
    poll(&w).await;

    let drafts_in_gmail = w.sandbox.drafts(ANN).unwrap();
    assert_eq!(
        drafts_in_gmail.len(),
        1,
        "exactly one draft, none for the earlier message"
    );
    let draft = &drafts_in_gmail[0];
    assert_eq!(
        draft.message.thread_id, delivered.thread_id,
        "in the same thread"
    );
    assert!(
        draft.message.to.iter().any(|to| to.contains(BOB)),
        "{:?}",
        draft.message.to
    );
    assert_eq!(draft.message.subject, "Re: Quarterly report");
    assert!(
        draft
            .message
            .text
            .contains("> Could you send me the Q3 report?"),
        "quotes the original: {}",
        draft.message.text
    );
    assert!(
        draft.message.text.contains("Bob"),
        "addresses the sender: {}",
        draft.message.text
    );
    assert!(
        draft
            .message
            .raw
            .contains("In-Reply-To: <q3-request@bob.example>"),
        "{}",
        draft.message.raw
    );
    assert!(
        draft
            .message
            .raw
            .contains("References: <older@bob.example> <q3-request@bob.example>"),
        "the original's References, then its Message-ID: {}",
        draft.message.raw
    );
    assert!(
        draft
            .message
            .raw
            .contains(&format!("X-Mailwright-Source: {}", delivered.id))
    );

    let listed = drafts(&w, &id).await;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["source_message_id"], delivered.id.as_str());
    assert_eq!(listed[0]["thread_id"], delivered.thread_id.as_str());
    assert_eq!(listed[0]["provider_draft_id"], draft.draft_id.as_str());
    assert_eq!(listed[0]["generator"], "builtin");
    assert_eq!(listed[0]["draft_type"], "document_request");

    let state = autodraft(&w, &id).await;
    assert_eq!(state["enabled"], true);
    assert_eq!(state["stats"]["drafts_created"], 1);
    assert_eq!(state["stats"]["failed"], 0);
    assert!(state["stats"]["last_success_at"].is_string(), "{state}");
    assert!(state["paused"].is_null());

    // Polling again changes nothing.
    poll(&w).await;
    assert_eq!(w.sandbox.drafts(ANN).unwrap().len(), 1);

    // The switch persists, and disconnecting turns it off.
    assert_eq!(autodraft(&w, &id).await["enabled"], true);
    let gone = w
        .app
        .client
        .delete(w.app.url(&format!("/api/integrations/{id}")))
        .bearer_auth(&w.tenant.key)
        .send()
        .await
        .unwrap();
    assert_eq!(gone.status(), 204);
    assert_eq!(autodraft(&w, &id).await["enabled"], false);
}

#[tokio::test]
async fn a_push_drafts_at_once_and_spends_only_the_quota_floor() {
    let (w, id) = enabled_world(&[("MAILWRIGHT_PUSH_TOKEN", PUSH_TOKEN.to_owned())]).await;
    let quota_before = w.sandbox.quota_used(ANN);
    deliver(&w, from_bob("Lunch", "Are you free for lunch on Friday?"));
    let data =
        base64_json(json!({"emailAddress": ANN, "historyId": w.sandbox.history_id(ANN).unwrap()}));
    let body = json!({"message": {"data": data, "messageId": "1", "publishTime": "2026-11-22T10:00:00Z"},
                      "subscription": "projects/p/subscriptions/mailwright"});

    let push = |token: &str, body: Value| {
        w.app
            .client
            .post(w.app.url(&format!("/api/push/gmail?token={token}")))
            .json(&body)
            .send()
    };
    let wrong = push("wrong-token", body.clone()).await.unwrap();
    assert_problem(wrong, 401, "unauthorized").await;
    let malformed = push(PUSH_TOKEN, json!({"message": {"data": "%%%"}}))
        .await
        .unwrap();
    assert_eq!(
        malformed.status(),
        200,
        "Pub/Sub must not redeliver what cannot be read"
    );
    let accepted = push(PUSH_TOKEN, body).await.unwrap();
    assert_eq!(accepted.status(), 200);
    assert_eq!(accepted.json::<Value>().await.unwrap()["mailboxes"], 1);

    drain(&w).await; // no poll: the push queued the sync
    assert_eq!(w.sandbox.drafts(ANN).unwrap().len(), 1);
    assert_eq!(drafts(&w, &id).await[0]["draft_type"], "scheduling");
    // history.list 2 + messages.get 5 + drafts.create 10, and the signature
    // (settings.sendAs.list 1, read once an hour per mailbox): no thread
    // read for a fresh message that starts its own thread.
    assert_eq!(w.sandbox.call_count("threads.get"), 0);
    assert_eq!(w.sandbox.call_count("settings.sendAs.list"), 1);
    assert_eq!(w.sandbox.quota_used(ANN) - quota_before, 18);
}

#[tokio::test]
async fn any_label_the_generator_answers_still_gets_its_draft() {
    let (llm, settings) = common::autodraft::scripted_llm().await;
    let (w, id) = enabled_world(&settings).await;
    llm.push_reply(LlmReply::content(
        r#"{"draft_type": "document_request", "body": "Hi Bob,\n\nI'll send the contract today.\n\nAnn"}"#,
    ));
    llm.push_reply(LlmReply::content(
        "```json\n{\"draft_type\": \"urgent_callback\", \"body\": \"Hi Bob,\\n\\nI'll call you back within the hour.\\n\\nAnn\"}\n```",
    ));
    llm.push_reply(LlmReply::content("Sure thing, talk soon. Ann"));
    for subject in ["One", "Two", "Three"] {
        deliver(&w, from_bob(subject, "Hello Ann"));
    }
    poll(&w).await;

    let listed = drafts(&w, &id).await;
    assert_eq!(listed.len(), 3, "{listed:?}");
    let mut labels: Vec<(String, String)> = listed
        .iter()
        .map(|d| {
            (
                d["draft_type_label"].as_str().unwrap().to_owned(),
                d["draft_type"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    labels.sort();
    assert_eq!(
        labels,
        vec![
            ("document_request".to_owned(), "document_request".to_owned()),
            ("reply".to_owned(), "reply".to_owned()),
            ("urgent_callback".to_owned(), "other".to_owned()),
        ]
    );
    assert!(listed.iter().all(|d| d["generator"] == "llm:test-model"));
    let stats = &autodraft(&w, &id).await["stats"];
    assert_eq!(stats["drafts_created"], 3);
    assert_eq!(stats["drafts_by_type"]["other"], 1);
    assert_eq!(w.sandbox.drafts(ANN).unwrap().len(), 3);
    assert!(
        w.sandbox
            .drafts(ANN)
            .unwrap()
            .iter()
            .any(|d| d.message.text.contains("call you back within the hour"))
    );
}

#[tokio::test]
async fn each_skip_rule_is_counted_with_its_reason() {
    let (w, id) = enabled_world(&[]).await;
    let old = |message: InboundMessage| InboundMessage {
        internal_date: Some(minutes_ago(10)),
        ..message
    };
    deliver(
        &w,
        InboundMessage::new(ANN, ANN, "Note to self", "Remember the milk"),
    );
    deliver(
        &w,
        InboundMessage::new("Shop <no-reply@shop.example>", ANN, "Your order", "Shipped"),
    );
    deliver(
        &w,
        from_bob("Digest", "News").header("List-Unsubscribe", "<mailto:unsub@lists.example>"),
    );
    deliver(&w, from_bob("Sale", "50% off").header("Precedence", "bulk"));
    deliver(
        &w,
        from_bob("Out of office", "I am away").header("Auto-Submitted", "auto-replied"),
    );
    deliver(&w, from_bob("Spam", "Win").labels(["INBOX", "SPAM"]));
    deliver(
        &w,
        from_bob("Deals", "Buy").labels(["INBOX", "CATEGORY_PROMOTIONS"]),
    );

    // A conversation Ann already answered.
    let mut answered = old(from_bob("Plans", "What are the plans?"));
    answered.message_id = Some("plans@bob.example".into());
    deliver(&w, answered);
    let mut reply = InboundMessage::new(ANN, ANN, "Re: Plans", "Here they are.")
        .header("In-Reply-To", "<plans@bob.example>")
        .header("References", "<plans@bob.example>")
        .labels(["SENT"]);
    reply.internal_date = Some(minutes_ago(5));
    w.sandbox.deliver(&reply).unwrap();

    // A conversation holding Ann's own draft.
    let mut drafted = old(from_bob("Budget", "Thoughts on the budget?"));
    drafted.message_id = Some("budget@bob.example".into());
    deliver(&w, drafted);
    let mut own_draft = InboundMessage::new(ANN, ANN, "Re: Budget", "Half-written reply")
        .header("In-Reply-To", "<budget@bob.example>")
        .header("References", "<budget@bob.example>")
        .labels(["DRAFT"]);
    own_draft.internal_date = Some(minutes_ago(5));
    w.sandbox.deliver(&own_draft).unwrap();

    poll(&w).await;

    let stats = &autodraft(&w, &id).await["stats"];
    assert_eq!(stats["drafts_created"], 0, "{stats}");
    for reason in [
        "own_message",
        "no_reply_sender",
        "mailing_list",
        "bulk",
        "auto_submitted",
        "spam_or_trash",
        "promotions",
        "thread_latest_from_owner",
        "thread_has_draft",
    ] {
        assert_eq!(stats["skipped_by_reason"][reason], 1, "{reason}: {stats}");
    }
    assert_eq!(stats["skipped"], 9);
    assert!(
        w.sandbox.drafts(ANN).unwrap().is_empty(),
        "no draft was created"
    );
}

#[tokio::test]
async fn enabling_without_the_compose_scope_answers_409_naming_it() {
    let w = world().await;
    let all: Vec<&str> = scopes::IntegrationType::Gmail.requested_scopes();
    let without_compose: Vec<&str> = all
        .iter()
        .copied()
        .filter(|scope| *scope != scopes::GMAIL_COMPOSE)
        .collect();
    let id = w.connect(Consent::allow_only(without_compose)).await["integration_id"].clone();
    let answer = w
        .app
        .client
        .put(w.app.url(&format!("/api/integrations/{id}/auto-draft")))
        .bearer_auth(&w.tenant.key)
        .json(&json!({"enabled": true}))
        .send()
        .await
        .unwrap();
    let problem = assert_problem(answer, 409, "missing_scopes").await;
    assert_eq!(problem["missing_scopes"], json!([scopes::GMAIL_COMPOSE]));
    assert_eq!(
        problem["reconnect_url"],
        format!("/api/integrations/{id}/reconnect")
    );
    assert_eq!(
        autodraft(&w, &id).await["enabled"],
        false,
        "nothing switched on"
    );

    let bad = w
        .app
        .client
        .put(w.app.url(&format!("/api/integrations/{id}/auto-draft")))
        .bearer_auth(&w.tenant.key)
        .json(&json!({"enabled": "yes"}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 422);
}

#[tokio::test]
async fn losing_the_scope_while_running_pauses_with_one_notice_and_no_retry_storm() {
    let (w, id) =
        enabled_world(&[("MAILWRIGHT_AUTODRAFT_ALERT_MIN_MESSAGES", "3".to_owned())]).await;
    w.sandbox
        .inject_fault("drafts.create", insufficient_permissions(), 1);
    for subject in ["A", "B", "C"] {
        deliver(&w, from_bob(subject, "Hello"));
    }
    poll(&w).await;

    assert_eq!(w.integration(&id).await["status"], "missing_scopes");
    assert_eq!(w.sandbox.call_count("drafts.create"), 1, "no retry storm");
    let state = autodraft(&w, &id).await;
    assert_eq!(
        state["enabled"], true,
        "still on, so it resumes after a reconnect"
    );
    assert_eq!(state["paused"]["code"], "missing_scopes", "{state}");
    assert_eq!(
        state["stats"]["failures_by_reason"]["missing_scopes"], 3,
        "{state}"
    );
    assert_eq!(state["stats"]["last_failure"]["code"], "missing_scopes");
    assert_eq!(state["events"][0]["kind"], "failure_rate_alert", "{state}");

    let outbox: Value = w
        .app
        .get_as("/api/system-emails", &w.tenant.key)
        .await
        .json()
        .await
        .unwrap();
    let kinds: Vec<&str> = outbox["emails"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds
            .iter()
            .filter(|k| **k == "integration_missing_scopes")
            .count(),
        1,
        "{kinds:?}"
    );
    assert_eq!(
        kinds.iter().filter(|k| **k == "autodraft_failing").count(),
        1,
        "{kinds:?}"
    );

    // While paused, polls do not call Google: not Gmail, not even a token
    // refresh when the stored token is due for one.
    let history_calls = w.sandbox.call_count("history.list");
    w.expire_stored_token(&id).await;
    let refreshes = w.refreshes();
    deliver(&w, from_bob("D", "Hello"));
    poll(&w).await;
    // A sync queued before the pause still runs: it stops at the status.
    let (workspace, integration) = w.ids(&id);
    w.app.autodraft.sync(workspace, integration).await.unwrap();
    assert_eq!(w.sandbox.call_count("history.list"), history_calls);
    assert_eq!(w.refreshes(), refreshes, "no token refresh while paused");
}

#[tokio::test]
async fn a_worker_killed_after_gmail_accepted_the_draft_leaves_exactly_one() {
    let (w, id) = enabled_world(&[]).await;
    let delivered = deliver(&w, from_bob("Contract", "Please send the contract."));
    store::testing::make_polls_due(&w.app.store).await;
    w.app.autodraft.poll_tick(store::now()).await.unwrap();
    // The sync job records the message and queues its draft job.
    w.app
        .worker
        .run_next()
        .await
        .unwrap()
        .expect("the sync ran");
    w.sandbox
        .stall_answer_after_commit("drafts.create", Duration::from_secs(60), 1);
    let worker = w.app.worker.clone();
    let doomed = tokio::spawn(async move { worker.run_next().await });
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while w.sandbox.drafts(ANN).unwrap().is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "the draft was never created"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    doomed.abort(); // Gmail has the draft; we never heard back.
    let _ = doomed.await;
    assert!(drafts(&w, &id).await.is_empty(), "nothing recorded yet");

    // Restart: the job's lease runs out and another worker takes it.
    store::testing::expire_job_leases(&w.app.store).await;
    drain(&w).await;

    let in_gmail = w.sandbox.drafts(ANN).unwrap();
    assert_eq!(in_gmail.len(), 1, "adopted, not created again");
    let listed = drafts(&w, &id).await;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["source_message_id"], delivered.id.as_str());
    assert_eq!(
        listed[0]["provider_draft_id"],
        in_gmail[0].draft_id.as_str()
    );
    assert_eq!(autodraft(&w, &id).await["stats"]["drafts_created"], 1);
}

#[tokio::test]
async fn mail_in_an_expired_history_window_is_still_drafted() {
    let (w, id) = enabled_world(&[]).await;
    deliver(&w, from_bob("First", "Hello"));
    poll(&w).await;
    assert_eq!(w.sandbox.drafts(ANN).unwrap().len(), 1);

    deliver(&w, from_bob("Second", "Hello again"));
    deliver(&w, from_bob("Third", "And again"));
    w.sandbox.expire_history(ANN).unwrap();
    poll(&w).await;

    let state = autodraft(&w, &id).await;
    assert_eq!(
        w.sandbox.drafts(ANN).unwrap().len(),
        3,
        "the gap was caught up: {state}"
    );
    assert_eq!(state["stats"]["drafts_created"], 3);
    assert_eq!(
        state["events"][0]["kind"], "catch_up",
        "recorded, not silent: {state}"
    );
}

#[tokio::test]
async fn the_test_action_shows_the_draft_and_creates_it_on_request() {
    let w = world().await;
    let id = w.connect(Consent::allow_all()).await["integration_id"].clone();
    let delivered = deliver(
        &w,
        from_bob("Invoice", "Could you send me the invoice for March?"),
    );
    let test = |body: Value| {
        w.app
            .client
            .post(
                w.app
                    .url(&format!("/api/integrations/{id}/auto-draft/test")),
            )
            .bearer_auth(&w.tenant.key)
            .json(&body)
            .send()
    };
    let preview: Value = test(json!({})).await.unwrap().json().await.unwrap();
    assert_eq!(preview["message_id"], delivered.id.as_str());
    assert_eq!(preview["thread_id"], delivered.thread_id.as_str());
    assert_eq!(preview["subject"], "Re: Invoice");
    assert_eq!(preview["draft_type"], "document_request");
    assert!(
        preview["body"]
            .as_str()
            .unwrap()
            .contains("> Could you send me the invoice")
    );
    assert!(preview["skipped_reason"].is_null());
    assert!(preview["draft_id"].is_null());
    assert!(
        w.sandbox.drafts(ANN).unwrap().is_empty(),
        "a preview creates nothing"
    );

    let created: Value = test(json!({"create_draft": true}))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(created["draft_id"].is_string(), "{created}");
    assert_eq!(w.sandbox.drafts(ANN).unwrap().len(), 1);
    assert_eq!(drafts(&w, &id).await.len(), 1);

    let no_reply = deliver(
        &w,
        InboundMessage::new("no-reply@shop.example", ANN, "Receipt", "Thanks"),
    );
    let skipped: Value = test(json!({"message_id": no_reply.id}))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(skipped["skipped_reason"], "no_reply_sender");

    let bad = test(json!({"message_id": "not an id!"})).await.unwrap();
    let problem = assert_problem(bad, 422, "validation_failed").await;
    assert_eq!(problem["errors"][0]["field"], "message_id");

    // Well formed, but no message of this mailbox: the client's mistake, said once.
    let unknown = test(json!({"message_id": "18c0ffee00000000"}))
        .await
        .unwrap();
    let problem = assert_problem(unknown, 422, "validation_failed").await;
    assert_eq!(problem["errors"][0]["field"], "message_id");
    assert_eq!(
        problem["detail"],
        "message_id: is not a message in this mailbox"
    );
}

#[tokio::test]
async fn two_workers_in_two_processes_draft_every_message_exactly_once() {
    let w = world().await;
    let mut mailboxes = Vec::new();
    for n in 0..20 {
        let email = format!("user{n}@example.com");
        w.sandbox.create_account(&email, &format!("User {n}"));
        let url = w.authorization_url(json!({"type": "gmail"})).await;
        let redirect = w
            .sandbox
            .approve(&url, Consent::allow_all().as_account(email.clone()))
            .unwrap();
        let id =
            common::google::outcome(&w.callback(&redirect, None).await)["integration_id"].clone();
        assert_eq!(put_switch(&w, &id, true).await.0, 200);
        mailboxes.push((email, id));
    }
    for (email, _) in &mailboxes {
        for m in 0..10 {
            w.sandbox
                .deliver(&InboundMessage::new(
                    format!("Bob Builder <{BOB}>"),
                    email.clone(),
                    format!("Question {m}"),
                    "Can we talk tomorrow?",
                ))
                .unwrap();
        }
    }
    store::testing::make_polls_due(&w.app.store).await;
    w.app.autodraft.poll_tick(store::now()).await.unwrap();

    // A second process: its own pool, vault and worker over the same database.
    let other_store = w.app.db.connect().await;
    let other_vault = Arc::new(w.second_process_vault().await);
    let other = Arc::new(AutoDraft::new(
        other_store.clone(),
        Arc::clone(&other_vault),
        Arc::new(engine::notify::Notifier::new(
            other_store.clone(),
            w.app.address.clone(),
        )),
        Generator::Builtin,
        AutoDraftSettings::default(),
    ));
    let handlers: Vec<Arc<dyn JobHandler>> = vec![
        Arc::new(SyncMailbox(Arc::clone(&other))),
        Arc::new(DraftMessage(Arc::clone(&other))),
    ];
    let other_worker = Worker::new(other_store, handlers);
    let mine = w.app.worker.clone();
    let (a, b) = tokio::join!(
        tokio::spawn(async move { mine.drain().await.unwrap() }),
        tokio::spawn(async move { other_worker.drain().await.unwrap() }),
    );
    let ran = a.unwrap() + b.unwrap();
    assert!(ran >= 220, "20 syncs and 200 drafts ran, got {ran}");
    drain(&w).await;

    let mut total = 0;
    for (email, id) in &mailboxes {
        let in_gmail = w.sandbox.drafts(email).unwrap();
        assert_eq!(in_gmail.len(), 10, "{email}");
        assert_eq!(drafts(&w, id).await.len(), 10);
        total += in_gmail.len();
    }
    assert_eq!(total, 200);
}
