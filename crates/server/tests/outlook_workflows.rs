//! Workflow sends from an Outlook mailbox, through the sandbox's Graph: the
//! message reaches the recipient once and its copy is in Sent Items; a run
//! whose worker died after Graph took the send finds it there (by its
//! marker) instead of sending again; one that died after making the draft
//! sends that draft.

mod common;

use common::google::{ANN_OUTLOOK, World, world};
use common::workflows::{create_ok, finish};
use sandbox::{Consent, GraphFault, MicrosoftInbound};
use serde_json::{Value, json};

const DAVE: &str = "dave@contoso.example";

async fn connected() -> (World, String) {
    let w = world().await;
    w.sandbox.microsoft().create_account(DAVE, "Dave Example");
    let id = w.connect_outlook(Consent::allow_all()).await["integration_id"].clone();
    (w, id)
}

async fn workflow(w: &World, steps: Value) -> String {
    workflow_with_trigger(w, json!({"type": "manual"}), steps).await
}

async fn workflow_with_trigger(w: &World, trigger: Value, steps: Value) -> String {
    let created = create_ok(
        w,
        json!({"name": "outlook", "trigger": trigger, "steps": steps}),
    )
    .await;
    created["id"].as_str().unwrap().to_owned()
}

async fn execute(w: &World, workflow: &str, input: Value) -> String {
    let (status, answer) = common::workflows::execute(w, workflow, input, false, None).await;
    assert_eq!(status, 202, "{answer}");
    answer["run"]["id"].as_str().unwrap().to_owned()
}

fn count(w: &World, email: &str, folder: &str, subject: &str) -> usize {
    w.sandbox
        .microsoft()
        .messages(email, folder)
        .into_iter()
        .filter(|message| message.subject == subject)
        .count()
}

/// The run's one step as "sending" again: its worker died after the
/// provider took the message, before the step was recorded.
async fn lose_the_record(w: &World, run_id: &str) {
    let run_uuid = uuid::Uuid::parse_str(run_id).unwrap();
    let steps: domain::runs::RunSteps = serde_json::from_value(json!([{"index": 0,
        "action": "gmail.send_email", "status": "sending", "output": null, "error": null}]))
    .unwrap();
    w.app
        .store
        .update_run(
            w.tenant.workspace,
            run_uuid,
            domain::runs::RunStatus::Running,
            &steps,
            None,
            None,
        )
        .await
        .unwrap();
    let job = store::jobs::NewJob::new("workflow.run", json!({"run_id": run_id}))
        .in_workspace(w.tenant.workspace);
    w.app.store.enqueue_job(&job).await.unwrap();
}

#[tokio::test]
async fn a_send_reaches_the_recipient_once_and_a_lost_record_does_not_send_again() {
    let (w, integration) = connected().await;
    let workflow = workflow(
        &w,
        json!([{"action": "gmail.send_email", "integration_id": integration, "to": [DAVE],
            "subject": "Order shipped", "body": "Your order {{ input.order }} shipped."}]),
    )
    .await;
    let run_id = execute(&w, &workflow, json!({"order": 42})).await;
    let run = finish(&w, &run_id).await;
    assert_eq!(run["status"], "succeeded", "{run}");
    assert_eq!(count(&w, DAVE, "inbox", "Order shipped"), 1);
    assert_eq!(count(&w, ANN_OUTLOOK, "sentitems", "Order shipped"), 1);
    assert_eq!(count(&w, ANN_OUTLOOK, "drafts", "Order shipped"), 0);
    let sent = &w.sandbox.microsoft().messages(DAVE, "inbox")[0];
    assert!(
        sent.body.contains("Your order 42 shipped."),
        "{}",
        sent.body
    );

    lose_the_record(&w, &run_id).await;
    let again = finish(&w, &run_id).await;
    assert_eq!(again["status"], "succeeded", "{again}");
    assert_eq!(
        count(&w, DAVE, "inbox", "Order shipped"),
        1,
        "no second message after the restart"
    );
    assert_eq!(w.sandbox.microsoft().call_count("graph.send"), 1);
}

#[tokio::test]
async fn a_new_mail_workflow_replies_in_the_conversation_once() {
    let (w, integration) = connected().await;
    workflow_with_trigger(
        &w,
        json!({"type": "new_mail", "integration_id": integration}),
        json!([{"action": "gmail.reply", "integration_id": integration,
            "body": "Thanks, {{ input.message.from }}: we are on it."}]),
    )
    .await;
    // The workflow's sync starts from now: let it take its first position.
    common::autodraft::poll(&w).await;
    let original = w
        .sandbox
        .microsoft()
        .deliver(MicrosoftInbound::new(
            DAVE,
            ANN_OUTLOOK,
            "Broken invoice",
            "The link is broken.",
        ))
        .unwrap();
    common::autodraft::poll(&w).await;
    common::autodraft::poll(&w).await;
    let replies: Vec<_> = w
        .sandbox
        .microsoft()
        .messages(DAVE, "inbox")
        .into_iter()
        .filter(|message| message.subject == "Re: Broken invoice")
        .collect();
    assert_eq!(replies.len(), 1, "one reply: {replies:?}");
    assert_eq!(
        replies[0].in_reply_to.as_deref(),
        Some(original.internet_message_id.as_str())
    );
    assert!(
        replies[0].body.contains("we are on it"),
        "{}",
        replies[0].body
    );
    let sent = w.sandbox.microsoft().messages(ANN_OUTLOOK, "sentitems");
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].conversation_id, original.conversation_id);
}

#[tokio::test]
async fn a_send_whose_answer_was_lost_is_found_in_sent_items_not_sent_again() {
    let (w, integration) = connected().await;
    let workflow = workflow(
        &w,
        json!([{"action": "gmail.send_email", "integration_id": integration, "to": [DAVE],
            "subject": "Lost send", "body": "Once only."}]),
    )
    .await;
    // Graph sends the message, and its 202 never reaches us.
    w.sandbox
        .microsoft()
        .fail_graph_calls(GraphFault::lost_answer(1).on_path("/send"));
    let run_id = execute(&w, &workflow, json!({})).await;
    let run = finish(&w, &run_id).await;
    assert_eq!(run["status"], "succeeded", "{run}");
    assert_eq!(w.sandbox.microsoft().call_count("graph.fault"), 1);
    assert_eq!(count(&w, DAVE, "inbox", "Lost send"), 1, "sent once");
    assert_eq!(w.sandbox.microsoft().call_count("graph.send"), 1);
}

#[tokio::test]
async fn a_label_step_on_outlook_fails_saying_labels_are_gmails() {
    let (w, integration) = connected().await;
    let original = w
        .sandbox
        .microsoft()
        .deliver(MicrosoftInbound::new(DAVE, ANN_OUTLOOK, "Tag me", "Hi"))
        .unwrap();
    let workflow = workflow(
        &w,
        json!([{"action": "gmail.add_label", "integration_id": integration,
            "label": "Important", "message_id": "{{ input.message }}"}]),
    )
    .await;
    let run_id = execute(&w, &workflow, json!({"message": original.id})).await;
    let run = finish(&w, &run_id).await;
    assert_eq!(run["status"], "failed", "{run}");
    let error = run["steps"][0]["error"].to_string();
    assert!(error.contains("Labels are Gmail's"), "{run}");
    assert_eq!(
        w.integration(&integration).await["status"],
        "connected",
        "the connection is not blamed"
    );
}

#[tokio::test]
async fn a_throttled_send_is_sent_later_and_an_unknown_one_is_not_sent_twice() {
    let (w, integration) = connected().await;
    let send = |subject: &str| {
        json!([{"action": "gmail.send_email", "integration_id": integration, "to": [DAVE],
            "subject": subject, "body": "Once only."}])
    };
    // Refused before Graph took it: sent on the retry.
    let throttled = workflow(&w, send("Throttled send")).await;
    w.sandbox
        .microsoft()
        .fail_graph_calls(GraphFault::throttle(1, 1).on_path("/send"));
    let run = finish(&w, &execute(&w, &throttled, json!({})).await).await;
    assert_eq!(run["status"], "succeeded", "{run}");
    assert_eq!(count(&w, DAVE, "inbox", "Throttled send"), 1);

    // No answer at all (a gateway timeout before Graph acted, as far as
    // anyone can tell): never sent twice, the step says so.
    let unknown = workflow(&w, send("Unknown send")).await;
    w.sandbox
        .microsoft()
        .fail_graph_calls(GraphFault::status(504, 1).on_path("/send"));
    let run = finish(&w, &execute(&w, &unknown, json!({})).await).await;
    assert_eq!(run["status"], "failed", "{run}");
    assert!(
        run["steps"][0]["error"]
            .to_string()
            .contains("send_unconfirmed"),
        "{run}"
    );
    assert_eq!(
        count(&w, DAVE, "inbox", "Unknown send"),
        0,
        "not sent twice"
    );
}
