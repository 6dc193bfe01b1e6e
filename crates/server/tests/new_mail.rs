//! The new-mail trigger end to end: "when mail from `*@example.com` with
//! 'invoice' in the subject arrives: add the label `Invoices`, reply in the
//! thread, post to a URL" runs once per matching message, with the label,
//! the threaded reply and the POST, while auto-draft is on for the same
//! mailbox; one sync of the mailbox feeds both. A label step without
//! `gmail.modify` fails saying so, and the connection's reconnect asks for
//! it.

mod common;

use std::sync::{Arc, Mutex};

use common::assert_problem;
use common::autodraft::{drain, poll, put_switch};
use common::google::{ANN, World, world_with};
use common::workflows::{create, create_ok};
use sandbox::{Attachment, Consent, InboundMessage};
use serde_json::{Value, json};

const BOB: &str = "bob@example.com";

/// A receiver for `http.post` steps: records each JSON body, answers 200.
async fn receiver() -> (String, Arc<Mutex<Vec<Value>>>) {
    let seen: Arc<Mutex<Vec<Value>>> = Arc::default();
    let recorded = Arc::clone(&seen);
    let app = axum::Router::new().route(
        "/invoices",
        axum::routing::post(move |body: String| {
            let recorded = Arc::clone(&recorded);
            async move {
                recorded
                    .lock()
                    .unwrap()
                    .push(serde_json::from_str(&body).unwrap_or(Value::Null));
                axum::http::StatusCode::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/invoices", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, seen)
}

fn invoice_workflow(integration: &str, url: &str) -> Value {
    json!({
        "name": "Invoices",
        "trigger": {"type": "new_mail", "integration_id": integration,
                    "filter": {"from": "*@example.com", "subject_contains": "invoice"}},
        "steps": [
            {"action": "gmail.add_label", "integration_id": integration, "label": "Invoices"},
            {"action": "gmail.reply", "integration_id": integration,
             "body": "Thank you, {{ input.message.from }}: we received “{{ input.message.subject }}”."},
            {"action": "http.post", "url": url,
             "body": "{\"message\": \"{{ input.message.id }}\", \"reply\": \"{{ steps[1].message_id }}\", \"snippet\": {{ input.message.snippet | tojson }}}"}
        ]
    })
}

fn from(sender: &str, subject: &str) -> InboundMessage {
    InboundMessage::new(
        sender,
        ANN,
        subject,
        "Please find it attached. Due in 30 days.",
    )
}

fn deliver(w: &World, message: InboundMessage) -> sandbox::Delivered {
    common::autodraft::deliver(w, message)
}

async fn runs(w: &World, workflow: &str) -> Vec<Value> {
    let answer: Value = w
        .app
        .get_as(&format!("/api/workflows/{workflow}/runs"), &w.tenant.key)
        .await
        .json()
        .await
        .unwrap();
    answer["runs"].as_array().unwrap().clone()
}

/// The consent URL the connection's reconnect leads to.
async fn reconnect_url(w: &World, id: &str) -> String {
    let answer = w
        .app
        .client
        .get(w.app.url(&format!("/api/integrations/{id}/reconnect")))
        .bearer_auth(&w.tenant.key)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 302);
    answer.headers()["location"].to_str().unwrap().to_owned()
}

#[tokio::test]
async fn matching_mail_is_labelled_answered_in_its_thread_and_posted_once_while_autodraft_drafts() {
    let w = world_with(&[("MAILWRIGHT_OUTBOUND_ALLOW_PRIVATE_NETWORKS", "true".into())]).await;
    w.sandbox.create_account(BOB, "Bob Builder");
    let id = w.connect(Consent::allow_all()).await["integration_id"].clone();
    let (status, body) = put_switch(&w, &id, true).await;
    assert_eq!(status, 200, "{body}");
    let (url, posted) = receiver().await;
    let workflow = create_ok(&w, invoice_workflow(&id, &url)).await;
    let workflow_id = workflow["id"].as_str().unwrap().to_owned();
    assert_eq!(workflow["trigger"]["filter"]["from"], "*@example.com");

    // Without gmail.modify the label step cannot run: the run says why and
    // how to fix it, and sends nothing.
    let first = deliver(&w, from("Bob Builder <bob@example.com>", "Invoice 1001"));
    poll(&w).await;
    let listed = runs(&w, &workflow_id).await;
    assert_eq!(listed.len(), 1, "{listed:?}");
    let failed = &listed[0];
    assert_eq!(failed["status"], "failed", "{failed}");
    assert_eq!(failed["trigger"], "new_mail");
    assert_eq!(failed["error"]["code"], "missing_scopes", "{failed}");
    let said = failed["error"]["message"].as_str().unwrap();
    assert!(
        said.contains("gmail.modify") && said.contains("/reconnect"),
        "{said}"
    );
    assert_eq!(w.sandbox.sent_count(ANN).unwrap(), 0);
    assert!(posted.lock().unwrap().is_empty());
    let connection = w.integration(&id).await;
    assert_eq!(
        connection["status"], "connected",
        "auto-draft keeps its connection"
    );

    // The workflow's page says so before anyone looks at a run, with the
    // reconnect that comes back to it.
    let (cookie, _) = common::ui::session(&w, w.tenant.user, w.tenant.workspace).await;
    let (_, html) = common::ui::page(&w, &cookie, &format!("/workflows/{workflow_id}")).await;
    let html = html.replace("&#x2f;", "/");
    assert!(
        html.contains("Step 1 cannot run:")
            && html.contains("(https://www.googleapis.com/auth/gmail.modify)")
            && html.contains(&format!(
                "/api/integrations/{id}/reconnect?return_to=%2Fworkflows%2F{workflow_id}"
            )),
        "{html}"
    );

    // The reconnect asks for the one more permission, on top of the grant.
    let consent = reconnect_url(&w, &id).await;
    assert!(consent.contains("gmail.modify"), "{consent}");
    let redirect = w.sandbox.approve(&consent, Consent::allow_all()).unwrap();
    w.callback(&redirect, None).await;
    let rerun = w
        .app
        .client
        .post(w.app.url(&format!(
            "/api/runs/{}/rerun",
            failed["id"].as_str().unwrap()
        )))
        .bearer_auth(&w.tenant.key)
        .send()
        .await
        .unwrap();
    assert_eq!(rerun.status(), 202);
    drain(&w).await;

    // Then: one message that matches, one from elsewhere, one without the
    // word; a sync finds all three (and auto-draft handles every one).
    let history_calls = w.sandbox.call_count("history.list");
    let second =
        deliver(
            &w,
            from("Accounts <billing@example.com>", "Your INVOICE 1002")
                .attachment(Attachment::new("invoice.pdf", "application/pdf", "%PDF")),
        );
    let elsewhere = deliver(&w, from("Eve <eve@example.net>", "Invoice 1003"));
    let other_subject = deliver(&w, from("Bob Builder <bob@example.com>", "Lunch?"));
    poll(&w).await;
    assert_eq!(
        w.sandbox.call_count("history.list"),
        history_calls + 1,
        "one sync of the mailbox feeds auto-draft and the workflow"
    );
    // Found again (a poll, a catch-up after the history expired): no
    // second run.
    w.sandbox.expire_history(ANN).unwrap();
    poll(&w).await;
    poll(&w).await;

    let listed = runs(&w, &workflow_id).await;
    let succeeded: Vec<&Value> = listed
        .iter()
        .filter(|run| run["status"] == "succeeded")
        .collect();
    assert_eq!(
        succeeded.len(),
        2,
        "the re-run of the first and a run for the second: {listed:#?}"
    );
    assert_eq!(listed.len(), 3, "and the failed first run: {listed:#?}");
    let mut answered: Vec<String> = succeeded
        .iter()
        .map(|run| run["input"]["message"]["id"].as_str().unwrap().to_owned())
        .collect();
    answered.sort();
    let mut expected = vec![first.id.clone(), second.id.clone()];
    expected.sort();
    assert_eq!(answered, expected);

    let messages = w.sandbox.messages(ANN).unwrap();
    for delivered in [&first, &second] {
        let original = messages.iter().find(|m| m.id == delivered.id).unwrap();
        assert!(
            original.label_names.iter().any(|name| name == "Invoices"),
            "{:?}",
            original.label_names
        );
        // The reply: in the thread, threaded by its headers, to the sender.
        let reply = messages
            .iter()
            .find(|m| m.thread_id == delivered.thread_id && m.label_ids.iter().any(|l| l == "SENT"))
            .unwrap_or_else(|| panic!("a reply in thread {}", delivered.thread_id));
        assert_eq!(reply.subject, format!("Re: {}", original.subject));
        let bare = |id: &String| id.trim_matches(['<', '>']).to_owned();
        assert_eq!(
            reply.references.last().map(bare),
            original.message_id.as_ref().map(bare),
            "{}",
            reply.raw
        );
        assert!(reply.raw.contains("In-Reply-To:"), "{}", reply.raw);
        assert!(
            reply.raw.contains("Auto-Submitted: auto-replied"),
            "{}",
            reply.raw
        );
        assert!(reply.text.contains(&original.subject), "{}", reply.text);
    }
    for untouched in [&elsewhere, &other_subject] {
        let message = messages.iter().find(|m| m.id == untouched.id).unwrap();
        assert!(!message.label_names.iter().any(|name| name == "Invoices"));
    }
    assert_eq!(w.sandbox.sent_count(ANN).unwrap(), 2, "one reply each");
    assert_eq!(
        w.sandbox.labels(ANN).unwrap().len(),
        1,
        "the label was made once"
    );

    let posted = posted.lock().unwrap().clone();
    assert_eq!(posted.len(), 2, "{posted:?}");
    let mut posted_ids: Vec<String> = posted
        .iter()
        .map(|body| body["message"].as_str().unwrap().to_owned())
        .collect();
    posted_ids.sort();
    assert_eq!(posted_ids, expected);
    assert!(
        posted
            .iter()
            .all(|body| body["reply"].as_str().is_some_and(|id| !id.is_empty()))
    );
    assert!(
        posted
            .iter()
            .any(|body| body["snippet"] == "Please find it attached. Due in 30 days.")
    );

    // Auto-draft handled the same mail: every message ended, none failed.
    let state = common::autodraft::autodraft(&w, &id).await;
    assert_eq!(state["stats"]["failed"], 0, "{state}");
    assert_eq!(state["stats"]["pending"], 0, "{state}");
    let handled = state["stats"]["drafts_created"].as_i64().unwrap()
        + state["stats"]["skipped_by_reason"]
            .as_object()
            .unwrap()
            .values()
            .map(|n| n.as_i64().unwrap())
            .sum::<i64>();
    assert_eq!(handled, 4, "{state}");
}

/// Let `id` change labels: its reconnect asks for `gmail.modify` while a
/// workflow has a label step.
async fn allow_labels(w: &World, id: &str) {
    let consent = reconnect_url(w, id).await;
    assert!(consent.contains("gmail.modify"), "{consent}");
    let redirect = w.sandbox.approve(&consent, Consent::allow_all()).unwrap();
    w.callback(&redirect, None).await;
}

/// A reply into a named thread, and labels on a named message (archiving
/// it by removing INBOX), from a manual run; a new-mail job done again (a
/// restart, a second replica) starts nothing new.
#[tokio::test]
async fn a_reply_to_a_named_thread_and_label_changes_on_a_named_message() {
    let w = world_with(&[]).await;
    w.sandbox.create_account(BOB, "Bob Builder");
    let id = w.connect(Consent::allow_all()).await["integration_id"].clone();
    let delivered = deliver(&w, from("Bob Builder <bob@example.com>", "Quote"));
    let workflow = create_ok(
        &w,
        json!({"name": "Archive and answer", "trigger": {"type": "manual"},
               "steps": [
                   {"action": "gmail.reply", "integration_id": id, "thread_id": "{{ input.thread }}",
                    "cc": ["ops@example.com"], "body": "Here is our quote."},
                   {"action": "gmail.add_label", "integration_id": id, "label": "Quoted", "message_id": "{{ input.message }}"},
                   {"action": "gmail.remove_label", "integration_id": id, "label": "inbox", "message_id": "{{ input.message }}"},
                   {"action": "gmail.remove_label", "integration_id": id, "label": "Never made", "message_id": "{{ input.message }}"}
               ]}),
    )
    .await;
    allow_labels(&w, &id).await;
    let (status, started) = common::workflows::execute(
        &w,
        workflow["id"].as_str().unwrap(),
        json!({"thread": delivered.thread_id, "message": delivered.id}),
        false,
        None,
    )
    .await;
    assert_eq!(status, 202, "{started}");
    let run = common::workflows::finish(&w, started["run"]["id"].as_str().unwrap()).await;
    assert_eq!(run["status"], "succeeded", "{run:#}");
    assert_eq!(
        run["steps"][0]["output"]["thread_id"],
        delivered.thread_id.as_str()
    );
    assert_eq!(
        run["steps"][3]["output"]["changed"], false,
        "nothing to remove"
    );

    let messages = w.sandbox.messages(ANN).unwrap();
    let original = messages.iter().find(|m| m.id == delivered.id).unwrap();
    assert!(original.label_names.iter().any(|name| name == "Quoted"));
    assert!(
        !original.label_ids.iter().any(|id| id == "INBOX"),
        "archived"
    );
    let reply = messages
        .iter()
        .find(|m| m.id == run["steps"][0]["output"]["message_id"].as_str().unwrap())
        .unwrap();
    assert_eq!(reply.thread_id, delivered.thread_id);
    assert_eq!(reply.to, [BOB]);
    assert_eq!(reply.cc, ["ops@example.com"]);
    assert_eq!(reply.subject, "Re: Quote");

    // The same message's new-mail job, done again: one run per workflow
    // and message, whatever runs the job.
    let watching = create_ok(
        &w,
        json!({"name": "Watch", "trigger": {"type": "new_mail", "integration_id": id},
               "steps": [{"action": "gmail.add_label", "integration_id": id, "label": "Seen"}]}),
    )
    .await;
    let later = deliver(&w, from("Bob Builder <bob@example.com>", "Again"));
    poll(&w).await;
    let job = engine::workflows::new_mail_job(
        w.tenant.workspace,
        domain::IntegrationId::parse(&id).unwrap(),
        &store::autodraft::FoundMessage {
            gmail_message_id: later.id.clone(),
            thread_id: later.thread_id.clone(),
        },
    );
    for _ in 0..2 {
        w.app.store.enqueue_job(&job).await.unwrap();
        drain(&w).await;
    }
    let listed = runs(&w, watching["id"].as_str().unwrap()).await;
    assert_eq!(listed.len(), 1, "{listed:#?}");
    assert_eq!(listed[0]["status"], "succeeded", "{:#}", listed[0]);
}

/// With auto-draft off, the trigger's mailbox is still synced; a filter on
/// attachments and a label picks its mail; switching the workflow off stops
/// the sync.
#[tokio::test]
async fn a_trigger_syncs_its_mailbox_without_autodraft_and_filters_on_attachments_and_labels() {
    let w = world_with(&[]).await;
    let id = w.connect(Consent::allow_all()).await["integration_id"].clone();
    let mut definition = json!({
        "name": "Attachments",
        "trigger": {"type": "new_mail", "integration_id": id,
                    "filter": {"has_attachment": true, "label": "important", "to": "ann@*"}},
        "steps": [{"action": "email.send_system", "to": ["ops@example.com"],
                   "subject": "{{ input.message.subject }} from {{ input.message.from }}", "body": "{{ input.message.snippet }}"}]
    });
    let workflow = create_ok(&w, definition.clone()).await;
    let workflow_id = workflow["id"].as_str().unwrap().to_owned();
    assert_eq!(
        common::autodraft::autodraft(&w, &id).await["enabled"],
        false
    );

    let with_file = |subject: &str| {
        from("Bob <bob@example.com>", subject).attachment(Attachment::new(
            "a.txt",
            "text/plain",
            "x",
        ))
    };
    let wanted = deliver(
        &w,
        with_file("Contract").labels(["INBOX", "UNREAD", "IMPORTANT"]),
    );
    deliver(&w, with_file("Not important"));
    deliver(
        &w,
        from("Bob <bob@example.com>", "No file").labels(["INBOX", "IMPORTANT"]),
    );
    poll(&w).await;
    let listed = runs(&w, &workflow_id).await;
    assert_eq!(listed.len(), 1, "{listed:#?}");
    assert_eq!(listed[0]["status"], "succeeded", "{:#}", listed[0]);
    let message = &listed[0]["input"]["message"];
    assert_eq!(message["id"], wanted.id.as_str());
    assert_eq!(message["thread_id"], wanted.thread_id.as_str());
    assert_eq!(message["subject"], "Contract");
    assert_eq!(message["from"], "Bob <bob@example.com>");
    assert_eq!(message["to"], json!([ANN]));
    assert!(message["date"].as_str().unwrap().ends_with('Z'));
    assert_eq!(
        w.sandbox.drafts(ANN).unwrap().len(),
        0,
        "auto-draft is off: no draft"
    );

    // Disabled: the mailbox is no longer read.
    definition["enabled"] = json!(false);
    let answer = w
        .app
        .client
        .put(w.app.url(&format!("/api/workflows/{workflow_id}")))
        .bearer_auth(&w.tenant.key)
        .json(&definition)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    let history_calls = w.sandbox.call_count("history.list");
    deliver(&w, with_file("Later").labels(["INBOX", "IMPORTANT"]));
    poll(&w).await;
    assert_eq!(w.sandbox.call_count("history.list"), history_calls);
    assert_eq!(runs(&w, &workflow_id).await.len(), 1);
}

/// The trigger and the new steps are checked at the edge, by field.
#[tokio::test]
async fn triggers_and_steps_are_refused_by_field() {
    let w = world_with(&[]).await;
    let id = w.connect(Consent::allow_all()).await["integration_id"].clone();
    let answer = create(
        &w,
        &w.tenant,
        json!({
            "name": "Bad",
            "trigger": {"type": "new_mail", "integration_id": "00000000-0000-0000-0000-000000000000",
                        "filter": {"from": "example.com", "subject_contains": ""}},
            "steps": [
                {"action": "gmail.add_label", "integration_id": id},
                {"action": "gmail.reply", "integration_id": id, "body": "b", "label": "x", "thread_id": "not an id"},
            ]
        }),
    )
    .await;
    let problem = assert_problem(answer, 422, "validation_failed").await;
    let fields: Vec<&str> = problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|error| error["field"].as_str().unwrap())
        .collect();
    assert_eq!(
        fields,
        [
            "trigger.filter.from",
            "trigger.filter.subject_contains",
            "trigger.integration_id",
            "steps[0].label",
            "steps[1].label",
            "steps[1].thread_id",
        ],
        "{problem}"
    );
    for trigger in [
        json!({"type": "new_mail", "integration_id": id, "filter": {"sender": "x"}}),
        // A misspelt `filter` must not mean "any new mail".
        json!({"type": "new_mail", "integration_id": id, "filters": {"from": "*@example.com"}}),
    ] {
        let unknown = create(
            &w,
            &w.tenant,
            json!({"name": "n", "trigger": trigger,
                   "steps": [{"action": "gmail.reply", "integration_id": id, "body": "b"}]}),
        )
        .await;
        assert_eq!(unknown.status(), 422, "refused: {trigger}");
    }
    let workflow = create_ok(
        &w,
        json!({"name": "n", "trigger": {"type": "manual"},
               "steps": [{"action": "email.send_system", "to": ["ops@example.com"], "subject": "s", "body": "b"}]}),
    )
    .await;
    let answer = w
        .app
        .client
        .post(w.app.url(&format!(
            "/api/workflows/{}/execute",
            workflow["id"].as_str().unwrap()
        )))
        .bearer_auth(&w.tenant.key)
        .header("Idempotency-Key", "mailwright:new_mail:abc")
        .json(&json!({"input": {}}))
        .send()
        .await
        .unwrap();
    let problem = assert_problem(answer, 422, "validation_failed").await;
    assert_eq!(problem["errors"][0]["field"], "Idempotency-Key");
}

/// Automatic mail gets no automatic reply (the step is skipped, saying
/// why), so two programs never answer each other for ever.
#[tokio::test]
async fn an_auto_reply_is_not_answered() {
    let w = world_with(&[]).await;
    let id = w.connect(Consent::allow_all()).await["integration_id"].clone();
    let workflow = create_ok(
        &w,
        json!({"name": "Answer", "trigger": {"type": "new_mail", "integration_id": id},
               "steps": [{"action": "gmail.reply", "integration_id": id, "body": "Thanks!"}]}),
    )
    .await;
    deliver(
        &w,
        from("Robot <robot@example.com>", "Out of office").header("Auto-Submitted", "auto-replied"),
    );
    poll(&w).await;
    let listed = runs(&w, workflow["id"].as_str().unwrap()).await;
    assert_eq!(listed.len(), 1, "{listed:#?}");
    assert_eq!(listed[0]["status"], "succeeded", "{:#}", listed[0]);
    assert_eq!(
        listed[0]["steps"][0]["status"], "skipped",
        "{:#}",
        listed[0]
    );
    assert_eq!(listed[0]["steps"][0]["error"]["code"], "auto_submitted");
    assert_eq!(w.sandbox.sent_count(ANN).unwrap(), 0, "nothing sent");
}

/// Disconnecting stops the sync and drops its position: mail that arrives
/// meanwhile starts nothing; reconnecting starts it again from then, and
/// auto-draft switched on again polls.
#[tokio::test]
async fn reconnecting_resumes_the_sync_a_workflow_waits_on() {
    let w = world_with(&[]).await;
    let id = w.connect(Consent::allow_all()).await["integration_id"].clone();
    let (status, _) = put_switch(&w, &id, true).await;
    assert_eq!(status, 200);
    let workflow = create_ok(
        &w,
        json!({"name": "Tell ops", "trigger": {"type": "new_mail", "integration_id": id},
               "steps": [{"action": "email.send_system", "to": ["ops@example.com"],
                          "subject": "{{ input.message.subject }}", "body": "b"}]}),
    )
    .await;
    let workflow_id = workflow["id"].as_str().unwrap().to_owned();
    let gone = w
        .app
        .client
        .delete(w.app.url(&format!("/api/integrations/{id}")))
        .bearer_auth(&w.tenant.key)
        .send()
        .await
        .unwrap();
    assert_eq!(gone.status(), 204);
    deliver(&w, from("Bob <bob@example.com>", "While away"));
    poll(&w).await;
    let again = w.connect(Consent::allow_all()).await["integration_id"].clone();
    assert_eq!(again, id, "the same connection, made again");
    poll(&w).await;
    assert!(
        runs(&w, &workflow_id).await.is_empty(),
        "nothing from while it was disconnected"
    );

    let back = deliver(&w, from("Bob <bob@example.com>", "Back again"));
    poll(&w).await;
    let listed = runs(&w, &workflow_id).await;
    assert_eq!(listed.len(), 1, "{listed:#?}");
    assert_eq!(listed[0]["input"]["message"]["id"], back.id.as_str());

    // Auto-draft, off since the disconnect, switched on again: it polls.
    let (status, body) = put_switch(&w, &id, true).await;
    assert_eq!(status, 200, "{body}");
    let drafted = deliver(&w, from("Bob <bob@example.com>", "Can you send the file?"));
    poll(&w).await;
    let drafts = common::autodraft::drafts(&w, &id).await;
    assert!(
        drafts
            .iter()
            .any(|draft| draft["source_message_id"] == drafted.id.as_str()),
        "{drafts:#?}"
    );
}
