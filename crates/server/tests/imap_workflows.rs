//! Workflow sends from a mailbox connected by IMAP, against real servers:
//! the message goes out by SMTP submission and reaches the recipient's
//! INBOX once, with its copy in the sender's Sent folder; a retry after a
//! lost record finds the copy instead of sending again; a connection that
//! breaks after the message was handed over is said so, not sent twice.

mod common;

use common::mailservers::{ALICE, BOB, MailServers, connected_app, get_json};
use common::{Tenant, TestApp};
use serde_json::{Value, json};

/// A manual workflow that sends one message to Bob; its id.
async fn workflow(app: &TestApp, tenant: &Tenant, integration: &str, subject: &str) -> String {
    let answer = app
        .client
        .post(app.url("/api/workflows"))
        .bearer_auth(&tenant.key)
        .json(
            &json!({"name": "notify bob", "trigger": {"type": "manual"}, "steps": [
                {"action": "gmail.send_email", "integration_id": integration, "to": [BOB],
                 "subject": subject, "body": "Your order {{ input.order }} shipped."}
            ]}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 201);
    let body: Value = answer.json().await.unwrap();
    body["id"].as_str().unwrap().to_owned()
}

async fn execute(app: &TestApp, tenant: &Tenant, workflow: &str) -> String {
    let answer: Value = app
        .client
        .post(app.url(&format!("/api/workflows/{workflow}/execute?wait=false")))
        .bearer_auth(&tenant.key)
        .json(&json!({"input": {"order": 42}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    answer["run"]["id"].as_str().unwrap().to_owned()
}

/// Run queued jobs until the run has ended.
async fn finish(app: &TestApp, tenant: &Tenant, run_id: &str) -> Value {
    for _ in 0..20 {
        store::testing::make_jobs_due(&app.store).await;
        app.worker.drain().await.unwrap();
        let run = get_json(app, tenant, &format!("/api/runs/{run_id}")).await;
        if run["status"] == "succeeded" || run["status"] == "failed" {
            return run;
        }
    }
    panic!("the run did not end");
}

#[tokio::test]
async fn a_send_reaches_the_inbox_once_and_a_lost_record_does_not_send_again() {
    let mut servers = MailServers::start();
    let (app, tenant, integration) = connected_app(&servers, &[]).await;
    let workflow = workflow(&app, &tenant, &integration, "Order shipped").await;
    let run_id = execute(&app, &tenant, &workflow).await;
    let run = finish(&app, &tenant, &run_id).await;
    assert_eq!(run["status"], "succeeded", "{run}");
    assert_eq!(servers.count(BOB, "INBOX", "Subject", "Order shipped"), 1);
    assert_eq!(servers.count(ALICE, "Sent", "Subject", "Order shipped"), 1);
    let output = &run["steps"][0]["output"];
    assert!(
        output["message_id"].as_str().unwrap().ends_with(":Sent"),
        "the Sent copy: {output}"
    );

    // The worker "died" after the server took the message and before the
    // step was recorded.
    let run_uuid = uuid::Uuid::parse_str(&run_id).unwrap();
    let steps: domain::runs::RunSteps = serde_json::from_value(json!([{"index": 0, "action": "gmail.send_email", "status": "sending", "output": null, "error": null}])).unwrap();
    app.store
        .update_run(
            tenant.workspace,
            run_uuid,
            domain::runs::RunStatus::Running,
            &steps,
            None,
            None,
        )
        .await
        .unwrap();
    let job = store::jobs::NewJob::new("workflow.run", json!({"run_id": run_id}))
        .in_workspace(tenant.workspace);
    app.store.enqueue_job(&job).await.unwrap();
    let run = finish(&app, &tenant, &run_id).await;
    assert_eq!(run["status"], "succeeded", "{run}");
    assert_eq!(
        servers.count(BOB, "INBOX", "Subject", "Order shipped"),
        1,
        "no second message after the restart"
    );
    assert_eq!(
        run["steps"][0]["output"]["message_id"],
        output["message_id"]
    );
}

#[tokio::test]
async fn a_connection_dropped_after_data_is_reported_not_sent_twice() {
    let mut servers = MailServers::start();
    let (app, tenant, integration) = connected_app(&servers, &[]).await;
    let workflow = workflow(&app, &tenant, &integration, "Maybe sent").await;
    std::fs::create_dir_all(servers.dir().join("faults")).unwrap();
    std::fs::write(servers.dir().join("faults/drop-after-data"), "").unwrap();
    let run_id = execute(&app, &tenant, &workflow).await;
    let run = finish(&app, &tenant, &run_id).await;
    assert_eq!(run["status"], "failed", "{run}");
    let error = run["steps"][0]["error"].to_string();
    assert!(error.contains("send_unconfirmed"), "{run}");
    assert!(error.contains("did not send it again"), "{run}");
    assert_eq!(servers.count(BOB, "INBOX", "Subject", "Maybe sent"), 1);
    // The copy in Sent stays flagged for the person to see.
    assert_eq!(servers.count(ALICE, "Sent", "Subject", "Maybe sent"), 1);
}

#[tokio::test]
async fn a_new_mail_workflow_replies_in_the_conversation_once() {
    let mut servers = MailServers::start();
    let (app, tenant, integration) = connected_app(&servers, &[]).await;
    let created = app
        .client
        .post(app.url("/api/workflows"))
        .bearer_auth(&tenant.key)
        .json(&json!({"name": "auto-reply", "trigger": {"type": "new_mail", "integration_id": integration},
            "steps": [{"action": "gmail.reply", "integration_id": integration,
                       "body": "Thanks, {{ input.message.from }}: we are on it."}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    // The workflow's sync starts from now: let it take its first position.
    common::mailservers::poll(&app).await;
    servers.deliver(
        ALICE,
        &format!(
            "From: Bob <{BOB}>\r\nTo: {ALICE}\r\nSubject: Broken invoice\r\nMessage-ID: <invoice-1@example.test>\r\nDate: {}\r\n\r\nThe invoice link is broken.\r\n",
            chrono::Utc::now().to_rfc2822()
        ),
    );
    common::mailservers::poll(&app).await;
    common::mailservers::poll(&app).await;
    let workflow: Value = created.json().await.unwrap();
    let runs = get_json(
        &app,
        &tenant,
        &format!("/api/workflows/{}/runs", workflow["id"].as_str().unwrap()),
    )
    .await;
    assert_eq!(
        servers.count(BOB, "INBOX", "In-Reply-To", "<invoice-1@example.test>"),
        1,
        "one reply, threaded under Bob's message: {runs} {}",
        get_json(
            &app,
            &tenant,
            &format!("/api/integrations/{integration}/auto-draft")
        )
        .await
    );
    assert_eq!(
        servers.count(BOB, "INBOX", "Subject", "Re: Broken invoice"),
        1
    );
    assert_eq!(
        servers.count(ALICE, "Sent", "Subject", "Re: Broken invoice"),
        1
    );

    // The server renumbers the inbox: the catch-up finds Bob's message
    // again under a new UID, and it starts no second run (its Message-ID is
    // the run's key).
    servers.reset_uidvalidity(ALICE);
    common::mailservers::poll(&app).await;
    common::mailservers::poll(&app).await;
    assert_eq!(
        servers.count(BOB, "INBOX", "In-Reply-To", "<invoice-1@example.test>"),
        1,
        "no second reply after the renumbering"
    );
    let autodraft = get_json(
        &app,
        &tenant,
        &format!("/api/integrations/{integration}/auto-draft"),
    )
    .await;
    assert!(
        autodraft["events"].to_string().contains("inbox message(s)"),
        "a catch-up ran: {autodraft}"
    );
    assert!(
        !autodraft["events"].to_string().contains("the 0 inbox"),
        "it found the message again: {autodraft}"
    );
    let runs = get_json(
        &app,
        &tenant,
        &format!("/api/workflows/{}/runs", workflow["id"].as_str().unwrap()),
    )
    .await;
    assert_eq!(runs["runs"].as_array().unwrap().len(), 1, "{runs}");
}
