//! Workflows end to end against the Google sandbox: the seed's "create a
//! workflow with a Gmail action, execute, {success: true}, the email arrives"
//! and its failure modes (no tokens, silent failures, duplicates).

mod common;

use common::assert_problem;
use common::google::{ANN, world};
use sandbox::{Consent, Fault};
use serde_json::{Value, json};

use common::workflows::{BOB, connected, create, create_ok, execute, finish, inbox, send_step};

#[tokio::test]
async fn the_seeds_flow_connect_create_execute_success_and_exactly_one_email_arrives() {
    let (w, integration) = connected().await;
    let workflow = create_ok(&w, json!({"name": "Shipping notice", "trigger": {"type": "manual"},
        "steps": [send_step(&integration, "Bob Builder <{{ input.email }}>", "Grüße, {{ input.name }}! Bestellung 🚚")]})).await;

    // A worker runs in the background, as in `mailwright serve`.
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let worker = tokio::spawn(w.app.worker.clone().run(stopped));
    let (status, answer) = execute(
        &w,
        workflow["id"].as_str().unwrap(),
        json!({"email": BOB, "name": "Bob", "order": "A-17"}),
        true,
        None,
    )
    .await;
    let _ = stop.send(true);
    worker.await.unwrap();

    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["success"], true, "{answer}");
    assert_eq!(answer["run"]["status"], "succeeded");
    assert_eq!(answer["run"]["steps"][0]["status"], "succeeded");
    assert!(answer["run"]["steps"][0]["output"]["message_id"].is_string());

    let inbox = inbox(&w);
    assert_eq!(inbox.len(), 1, "exactly one message");
    let message = &inbox[0];
    assert!(
        message.from.as_deref().unwrap_or_default().contains(ANN),
        "{:?}",
        message.from
    );
    assert!(
        message.to.iter().any(|to| to.contains(BOB)),
        "{:?}",
        message.to
    );
    assert_eq!(
        message.subject, "Grüße, Bob! Bestellung 🚚",
        "the UTF-8 subject arrives intact"
    );
    assert!(
        message.text.contains("your order A-17 shipped"),
        "{}",
        message.text
    );
    assert!(
        message
            .message_id
            .as_deref()
            .unwrap_or_default()
            .contains("@mailwright"),
        "our Message-ID"
    );
}

/// `wait=true` is woken when this process ends the run; a run that a worker
/// of another process (another replica, `mailwright worker`) ends is not
/// announced here, and the request still answers with its end.
#[tokio::test]
async fn waiting_for_a_run_that_another_process_ends_answers_with_its_end() {
    let (w, integration) = connected().await;
    let workflow = create_ok(
        &w,
        json!({"name": "Elsewhere", "trigger": {"type": "manual"},
        "steps": [send_step(&integration, BOB, "Run elsewhere")]}),
    )
    .await;

    let other_store = w.app.db.connect().await;
    let vault = std::sync::Arc::new(w.second_process_vault().await);
    let run_workflow = engine::workflows::RunWorkflow::new(
        other_store.clone(),
        vault,
        w.app.url(""),
        domain::retry::RetryPolicy::DEFAULT,
    );
    let other_worker =
        engine::worker::Worker::new(other_store, vec![std::sync::Arc::new(run_workflow)]);
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let working = tokio::spawn(other_worker.run(stopped));
    // Well before the 30 s wait limit, at whose end the run is read anyway:
    // the waiting request reads the run now and then, not only on news.
    let (status, answer) = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        execute(
            &w,
            workflow["id"].as_str().unwrap(),
            json!({"name": "Bob", "order": "B-2"}),
            true,
            None,
        ),
    )
    .await
    .expect("answered within 10 s");
    let _ = stop.send(true);
    working.await.unwrap();

    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["success"], true, "{answer}");
    assert_eq!(answer["run"]["status"], "succeeded");
    assert_eq!(inbox(&w).len(), 1, "exactly one message");
}

#[tokio::test]
async fn without_the_send_scope_the_run_fails_at_once_naming_the_scope_and_the_fix() {
    let w = world().await;
    w.sandbox.create_account(BOB, "Bob");
    let scopes: Vec<&str> = domain::scopes::IntegrationType::Gmail
        .requested_scopes()
        .into_iter()
        .filter(|scope| !scope.ends_with("gmail.send") && !scope.ends_with("gmail.compose"))
        .collect();
    let integration = w.connect(Consent::allow_only(scopes)).await["integration_id"].clone();
    let workflow = create_ok(&w, json!({"name": "n", "trigger": {"type": "manual"}, "steps": [send_step(&integration, BOB, "Hi")]})).await;
    let (_, answer) = execute(
        &w,
        workflow["id"].as_str().unwrap(),
        json!({"name": "Bob", "order": 1}),
        false,
        None,
    )
    .await;
    let run = finish(&w, answer["run"]["id"].as_str().unwrap()).await;
    assert_eq!(run["status"], "failed");
    assert_eq!(run["error"]["code"], "missing_scopes");
    let message = run["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("gmail.send") && message.contains("/reconnect"),
        "{message}"
    );
    assert!(inbox(&w).is_empty());
}

#[tokio::test]
async fn a_429_then_a_500_on_send_is_retried_and_one_message_arrives() {
    let (w, integration) = connected().await;
    let workflow = create_ok(&w, json!({"name": "n", "trigger": {"type": "manual"}, "steps": [send_step(&integration, BOB, "Hi")]})).await;
    w.sandbox
        .inject_fault("messages.send", Fault::RateLimited, 1);
    w.sandbox
        .inject_fault("messages.send", Fault::BackendError, 1);
    let (status, answer) = execute(
        &w,
        workflow["id"].as_str().unwrap(),
        json!({"name": "Bob", "order": 2}),
        false,
        None,
    )
    .await;
    assert_eq!(status, 202);
    let run = finish(&w, answer["run"]["id"].as_str().unwrap()).await;
    assert_eq!(run["status"], "succeeded", "{run}");
    assert_eq!(
        inbox(&w).len(),
        1,
        "exactly one message despite the retries"
    );
}

#[tokio::test]
async fn a_send_whose_recording_was_lost_is_found_again_not_sent_twice() {
    let (w, integration) = connected().await;
    let workflow = create_ok(&w, json!({"name": "n", "trigger": {"type": "manual"}, "steps": [send_step(&integration, BOB, "Once")]})).await;
    let (_, answer) = execute(
        &w,
        workflow["id"].as_str().unwrap(),
        json!({"name": "Bob", "order": 3}),
        false,
        None,
    )
    .await;
    let run_id = answer["run"]["id"].as_str().unwrap().to_owned();
    finish(&w, &run_id).await;
    assert_eq!(inbox(&w).len(), 1);

    // The worker "died" after Gmail accepted the send and before the step was
    // recorded: the run is as a runner of an earlier version left it just
    // before calling Gmail (no copy of the step, `sending`).
    let run_uuid = uuid::Uuid::parse_str(&run_id).unwrap();
    let steps: domain::runs::RunSteps = serde_json::from_value(json!([{"index": 0, "action": "gmail.send_email", "status": "sending", "output": null, "error": null}])).unwrap();
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

    let run = finish(&w, &run_id).await;
    assert_eq!(run["status"], "succeeded");
    assert_eq!(inbox(&w).len(), 1, "no second message after the restart");
    let sent = w.sandbox.sent_messages(ANN).unwrap();
    assert_eq!(sent.len(), 1);
    assert_eq!(
        run["steps"][0]["output"]["message_id"], sent[0].id,
        "the sender's copy, found by Message-ID"
    );
}

#[tokio::test]
async fn a_worker_killed_after_gmail_accepted_the_send_does_not_send_again() {
    let (w, integration) = connected().await;
    let workflow = create_ok(&w, json!({"name": "n", "trigger": {"type": "manual"}, "steps": [send_step(&integration, BOB, "Exactly once")]})).await;
    let (_, answer) = execute(
        &w,
        workflow["id"].as_str().unwrap(),
        json!({"name": "Bob", "order": 4}),
        false,
        None,
    )
    .await;
    let run_id = answer["run"]["id"].as_str().unwrap().to_owned();

    // Gmail takes the message at once but holds its answer back; the worker
    // is killed while it waits.
    w.sandbox
        .stall_answer_after_commit("messages.send", std::time::Duration::from_secs(60), 1);
    let worker = w.app.worker.clone();
    let doomed = tokio::spawn(async move { worker.run_next().await });
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while inbox(&w).is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "the send never happened"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    doomed.abort();
    let _ = doomed.await;

    // Restart: the job's lease runs out and another worker takes it over.
    store::testing::expire_job_leases(&w.app.store).await;
    let run = finish(&w, &run_id).await;
    assert_eq!(run["status"], "succeeded", "{run}");
    assert_eq!(inbox(&w).len(), 1, "no second message after the restart");
    assert_eq!(w.sandbox.call_count("messages.send"), 1);
}

#[tokio::test]
async fn the_same_idempotency_key_is_the_same_run_for_execute_and_webhooks() {
    let (w, integration) = connected().await;
    let workflow = create_ok(&w, json!({"name": "n", "trigger": {"type": "webhook"}, "steps": [send_step(&integration, BOB, "Hook")]})).await;
    let id = workflow["id"].as_str().unwrap();

    let (first_status, first) = execute(
        &w,
        id,
        json!({"name": "B", "order": 4}),
        false,
        Some("order-4"),
    )
    .await;
    let (second_status, second) = execute(
        &w,
        id,
        json!({"name": "B", "order": 4}),
        false,
        Some("order-4"),
    )
    .await;
    assert_eq!((first_status, second_status), (202, 202), "never a 409");
    assert_eq!(first["run"]["id"], second["run"]["id"]);

    let hook = workflow["webhook_url"].as_str().unwrap().to_owned();
    assert!(hook.contains(&format!("/api/hooks/{id}?token=")));
    let deliver = |key: &'static str| {
        w.app
            .client
            .post(&hook)
            .header("Idempotency-Key", key)
            .json(&json!({"name": "C", "order": 5}))
            .send()
    };
    let one: Value = deliver("delivery-1").await.unwrap().json().await.unwrap();
    let again: Value = deliver("delivery-1").await.unwrap().json().await.unwrap();
    assert_eq!(one["run_id"], again["run_id"]);

    let runs: Value = w
        .app
        .get_as(&format!("/api/workflows/{id}/runs"), &w.tenant.key)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(runs["runs"].as_array().unwrap().len(), 2, "{runs}");

    // A wrong token is indistinguishable from an unknown workflow.
    let wrong = w
        .app
        .client
        .post(w.app.url(&format!("/api/hooks/{id}?token=wrong")))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_problem(wrong, 404, "not_found").await;
    w.app.worker.drain().await.unwrap();
    assert_eq!(inbox(&w).len(), 2, "one message per run");
}

#[tokio::test]
async fn header_injection_is_refused_at_creation_and_fails_the_run_when_it_comes_from_input() {
    let (w, integration) = connected().await;
    let answer = create(&w, &w.tenant, json!({"name": "n", "trigger": {"type": "manual"},
        "steps": [send_step(&integration, "bob@example.com\r\nBcc: spy@evil.example", "Hi\r\nBcc: spy@evil.example")]})).await;
    let problem = assert_problem(answer, 422, "validation_failed").await;
    let fields: Vec<&str> = problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|error| error["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["steps[0].to[0]", "steps[0].subject"]);

    let workflow = create_ok(
        &w,
        json!({"name": "n", "trigger": {"type": "manual"},
        "steps": [send_step(&integration, "{{ input.email }}", "Hello {{ input.name }}")]}),
    )
    .await;
    let id = workflow["id"].as_str().unwrap();
    for input in [
        json!({"email": BOB, "name": "Bob\r\nBcc: spy@evil.example", "order": 1}),
        json!({"email": "bob@example.com\nBcc: spy@evil.example", "name": "Bob", "order": 1}),
    ] {
        let (_, answer) = execute(&w, id, input, false, None).await;
        let run = finish(&w, answer["run"]["id"].as_str().unwrap()).await;
        assert_eq!(run["status"], "failed");
        assert_eq!(run["error"]["code"], "validation_failed", "{run}");
    }
    assert!(inbox(&w).is_empty(), "nothing sent");
    assert!(
        w.sandbox
            .messages("spy@evil.example")
            .map(|messages| messages.is_empty())
            .unwrap_or(true)
    );
}

#[tokio::test]
async fn definitions_are_validated_field_by_field() {
    let (w, integration) = connected().await;
    let other = w.app.tenant("other").await;
    for (step, field) in [
        (
            json!({"action": "gmail.teleport", "integration_id": integration, "to": [BOB], "subject": "s", "body": "b"}),
            "steps[0].action",
        ),
        (
            json!({"action": "gmail.send_email", "integration_id": other.integration_id, "to": [BOB], "subject": "s", "body": "b"}),
            "steps[0].integration_id",
        ),
        (
            json!({"action": "gmail.send_email", "to": [BOB], "subject": "s", "body": "b"}),
            "steps[0].integration_id",
        ),
        (
            json!({"action": "gmail.send_email", "integration_id": integration, "to": ["bob"], "subject": "s", "body": "b"}),
            "steps[0].to[0]",
        ),
        (
            json!({"action": "gmail.send_email", "integration_id": integration, "to": [BOB], "subject": "{{ input.x", "body": "b"}),
            "steps[0].subject",
        ),
        (
            json!({"action": "gmail.send_email", "integration_id": integration, "to": [BOB], "body": "b"}),
            "steps[0].subject",
        ),
    ] {
        let problem = assert_problem(
            create(
                &w,
                &w.tenant,
                json!({"name": "n", "trigger": {"type": "manual"}, "steps": [step]}),
            )
            .await,
            422,
            "validation_failed",
        )
        .await;
        assert_eq!(problem["errors"][0]["field"], field, "{problem}");
    }
}

#[tokio::test]
async fn workflows_can_be_read_replaced_disabled_and_deleted() {
    let (w, integration) = connected().await;
    let workflow = create_ok(&w, json!({"name": "First", "trigger": {"type": "manual"}, "steps": [send_step(&integration, BOB, "s")]})).await;
    let id = workflow["id"].as_str().unwrap();
    let url = w.app.url(&format!("/api/workflows/{id}"));
    let replaced: Value = w
        .app
        .client
        .put(&url)
        .bearer_auth(&w.tenant.key)
        .json(&json!({"name": "Second", "enabled": false, "trigger": {"type": "manual"},
                      "steps": [{"action": "email.send_system", "to": ["ops@example.com"], "subject": "Order {{ input.order }}", "body": "b"}]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (replaced["name"].clone(), replaced["enabled"].clone()),
        (json!("Second"), json!(false))
    );
    let (status, answer) = execute(&w, id, json!({"order": 1}), false, None).await;
    assert_eq!(status, 409, "a disabled workflow does not run: {answer}");

    w.app.client.put(&url).bearer_auth(&w.tenant.key).json(&json!({"name": "Second", "trigger": {"type": "manual"},
        "steps": [{"action": "email.send_system", "to": ["ops@example.com"], "subject": "Order {{ input.order }}", "body": "b"}]}))
        .send().await.unwrap();
    let (_, answer) = execute(&w, id, json!({"order": 7}), false, None).await;
    let run = finish(&w, answer["run"]["id"].as_str().unwrap()).await;
    assert_eq!(run["status"], "succeeded");
    let outbox: Value = w
        .app
        .get_as("/api/system-emails", &w.tenant.key)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        outbox["emails"][0]["subject"], "Order 7",
        "email.send_system goes through the outbox: {outbox}"
    );
    assert_eq!(
        outbox["emails"][0]["status"], "logged",
        "no mail provider: logged"
    );

    let deleted = w
        .app
        .client
        .delete(&url)
        .bearer_auth(&w.tenant.key)
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 204);
    assert_problem(
        w.app
            .get_as(&format!("/api/workflows/{id}"), &w.tenant.key)
            .await,
        404,
        "not_found",
    )
    .await;
}

#[tokio::test]
async fn a_schedule_missed_while_down_runs_once_not_once_per_missed_tick() {
    let w = world().await;
    let workflow = create_ok(&w, json!({"name": "Every five minutes", "trigger": {"type": "schedule", "cron": "*/5 * * * *"},
        "steps": [{"action": "email.send_system", "to": ["ops@example.com"], "subject": "Tick", "body": "Scheduled at {{ input.scheduled_at }}"}]})).await;
    let id = uuid::Uuid::parse_str(workflow["id"].as_str().unwrap()).unwrap();
    let next: chrono::DateTime<chrono::Utc> =
        workflow["next_run_at"].as_str().unwrap().parse().unwrap();
    assert!(next > chrono::Utc::now());
    assert_eq!(
        w.app.scheduler.tick(store::now()).await.unwrap(),
        0,
        "not due yet"
    );

    // The service was down for three hours: 36 ticks were missed.
    let three_hours_ago = store::now() - chrono::Duration::hours(3);
    assert!(
        w.app
            .store
            .advance_schedule(w.tenant.workspace, id, next, Some(three_hours_ago))
            .await
            .unwrap()
    );
    assert_eq!(w.app.scheduler.tick(store::now()).await.unwrap(), 1);
    assert_eq!(
        w.app.scheduler.tick(store::now()).await.unwrap(),
        0,
        "and only once"
    );

    let runs: Value = w
        .app
        .get_as(&format!("/api/workflows/{id}/runs"), &w.tenant.key)
        .await
        .json()
        .await
        .unwrap();
    let runs = runs["runs"].as_array().unwrap().clone();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0]["trigger"], "schedule");
    let run = finish(&w, runs[0]["id"].as_str().unwrap()).await;
    assert_eq!(run["status"], "succeeded");
    let after: Value = w
        .app
        .get_as(&format!("/api/workflows/{id}"), &w.tenant.key)
        .await
        .json()
        .await
        .unwrap();
    let next_again: chrono::DateTime<chrono::Utc> =
        after["next_run_at"].as_str().unwrap().parse().unwrap();
    assert!(
        next_again > chrono::Utc::now(),
        "the next tick is in the future"
    );

    let problem = assert_problem(
        create(&w, &w.tenant, json!({"name": "n", "trigger": {"type": "schedule", "cron": "every day"},
            "steps": [{"action": "email.send_system", "to": ["ops@example.com"], "subject": "s", "body": "b"}]})).await,
        422,
        "validation_failed",
    )
    .await;
    assert_eq!(problem["errors"][0]["field"], "trigger.cron");
}

/// A run that failed at step 2 of 3 re-runs from step 2: step 1's email is
/// not sent again, steps 2 and 3 run as the workflow now defines them.
#[tokio::test]
async fn a_failed_run_reruns_from_its_failed_step_without_sending_step_one_again() {
    let (w, integration) = connected().await;
    let steps = |first: &str, second: &str| {
        json!([
            send_step(&integration, BOB, first),
            send_step(&integration, second, "Two"),
            send_step(&integration, BOB, "Three"),
        ])
    };
    let workflow = create_ok(
        &w,
        json!({"name": "Three steps", "trigger": {"type": "manual"}, "steps": steps("One", "{{ input.second }}")}),
    )
    .await;
    let workflow_id = workflow["id"].as_str().unwrap().to_owned();
    let replace = |steps: Value| {
        let w = &w;
        let workflow_id = workflow_id.clone();
        async move {
            let answer = w
                .app
                .client
                .put(w.app.url(&format!("/api/workflows/{workflow_id}")))
                .bearer_auth(&w.tenant.key)
                .json(
                    &json!({"name": "Three steps", "trigger": {"type": "manual"}, "steps": steps}),
                )
                .send()
                .await
                .unwrap();
            assert_eq!(answer.status(), 200);
        }
    };
    let rerun = |id: String| {
        let w = &w;
        async move {
            let answer = w
                .app
                .client
                .post(w.app.url(&format!("/api/runs/{id}/rerun")))
                .bearer_auth(&w.tenant.key)
                .send()
                .await
                .unwrap();
            let status = answer.status().as_u16();
            (status, answer.json::<Value>().await.unwrap())
        }
    };
    // Two runs fail at step 2 (the input has no `second`).
    let mut failed = Vec::new();
    for order in ["A-1", "A-2"] {
        let (_, started) = execute(
            &w,
            &workflow_id,
            json!({"name": "Bob", "order": order}),
            false,
            None,
        )
        .await;
        let id = started["run"]["id"].as_str().unwrap().to_owned();
        let run = finish(&w, &id).await;
        assert_eq!(run["status"], "failed", "{run}");
        assert_eq!(run["steps"][0]["status"], "succeeded");
        assert_eq!(run["steps"][1]["status"], "failed");
        failed.push(id);
    }
    let subjects = |w: &common::google::World| -> Vec<String> {
        let mut sent: Vec<String> = inbox(w)
            .into_iter()
            .map(|message| message.subject)
            .collect();
        sent.sort();
        sent
    };
    assert_eq!(subjects(&w), vec!["One", "One"]);

    // Fixed at step 2 (step 1 unchanged), the first re-runs from step 2.
    replace(steps("One", BOB)).await;
    // As if its step 2 had reached Gmail before failing: the re-run finds
    // that message under the failed run's Message-ID, and sends no other.
    let reached = format!("<run-{}.1@mailwright>", failed[0]);
    w.sandbox
        .deliver(&sandbox::InboundMessage {
            raw: Some(format!(
                "From: {ANN}\r\nTo: {ANN}\r\nSubject: Two\r\nMessage-ID: {reached}\r\n\r\nSent before the failure.\r\n"
            )),
            ..sandbox::InboundMessage::new(ANN, ANN, "Two", "").labels(["SENT"])
        })
        .unwrap();
    let (status, answer) = rerun(failed[0].clone()).await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(answer["run"]["rerun_of"], failed[0].as_str());
    assert_eq!(
        answer["run"]["steps"][0]["status"], "succeeded",
        "step 1 is kept"
    );
    let rerun_id = answer["run"]["id"].as_str().unwrap().to_owned();
    let (_, again) = rerun(failed[0].clone()).await;
    assert_eq!(
        again["run"]["id"],
        rerun_id.as_str(),
        "asked twice: the same re-run"
    );
    let done = finish(&w, &rerun_id).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(done["rerun_of"], failed[0].as_str());
    assert_eq!(
        subjects(&w),
        vec!["One", "One", "Three"],
        "step 1's email was not sent again, nor step 2's, which had reached Gmail"
    );
    assert_eq!(
        done["steps"][1]["output"]["rfc822_message_id"],
        reached.as_str(),
        "{done}"
    );

    // A run that did not fail is refused; so is one whose done step changed.
    let (status, refused) = rerun(rerun_id.clone()).await;
    assert_eq!(status, 409, "{refused}");
    assert_eq!(refused["code"], "conflict");
    replace(steps("Uno", BOB)).await;
    let (status, refused) = rerun(failed[1].clone()).await;
    assert_eq!(status, 409, "{refused}");
    assert!(
        refused["detail"]
            .as_str()
            .unwrap()
            .contains("Step 1 changed"),
        "{refused}"
    );
    assert_eq!(subjects(&w).len(), 3, "nothing more was sent");
}

/// Opt-in per workflow: one email to the owner when a run fails for good.
#[tokio::test]
async fn a_workflow_that_asks_emails_its_owner_once_per_run_that_fails_for_good() {
    let (w, integration) = connected().await;
    let failing = |notify: bool| {
        json!({"name": if notify { "Told" } else { "Quiet" }, "trigger": {"type": "manual"}, "notify_on_failure": notify,
               "steps": [send_step(&integration, "{{ input.missing }}", "Hi")]})
    };
    let told = create_ok(&w, failing(true)).await;
    assert_eq!(told["notify_on_failure"], true);
    let quiet = create_ok(&w, failing(false)).await;
    for workflow in [&told, &quiet, &told] {
        let (_, started) =
            execute(&w, workflow["id"].as_str().unwrap(), json!({}), false, None).await;
        let run = finish(&w, started["run"]["id"].as_str().unwrap()).await;
        assert_eq!(run["status"], "failed", "{run}");
    }
    w.app.worker.drain().await.unwrap();
    let notices: Vec<Value> = w
        .outbox()
        .await
        .into_iter()
        .filter(|email| email["kind"] == "workflow_run_failed")
        .collect();
    assert_eq!(
        notices.len(),
        2,
        "one per failed run of the workflow that asks: {notices:?}"
    );
    assert!(
        notices
            .iter()
            .all(|email| email["subject"] == "A run of \"Told\" failed"),
        "{notices:?}"
    );
    assert!(
        notices[0]["text"].as_str().unwrap().contains("/runs/"),
        "it links the run: {notices:?}"
    );
}

/// Steps use each other: a later step's templates read an earlier step's
/// output (`steps[0].message_id`), and a step whose `condition` is false is
/// skipped, shown as such, and sends nothing.
#[tokio::test]
async fn later_steps_read_earlier_outputs_and_a_false_condition_skips_a_step() {
    let (w, integration) = connected().await;
    let mut second = send_step(&integration, BOB, "Follow-up to {{ steps[0].message_id }}");
    second["condition"] = json!("steps[0].message_id and input.vip is defined and input.vip");
    let mut third = send_step(&integration, BOB, "Always");
    third["condition"] = json!("not (input.vip is defined and input.vip)");
    let workflow = create_ok(
        &w,
        json!({"name": "Chained", "trigger": {"type": "manual"},
               "steps": [send_step(&integration, BOB, "First"), second, third]}),
    )
    .await;
    let id = workflow["id"].as_str().unwrap().to_owned();

    let (_, vip) = execute(
        &w,
        &id,
        json!({"name": "Bob", "order": "1", "vip": true}),
        false,
        None,
    )
    .await;
    let vip = finish(&w, vip["run"]["id"].as_str().unwrap()).await;
    assert_eq!(vip["status"], "succeeded", "{vip}");
    let first_id = vip["steps"][0]["output"]["message_id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(vip["steps"][1]["status"], "succeeded");
    assert_eq!(vip["steps"][2]["status"], "skipped", "{vip}");
    assert!(vip["steps"][2]["output"].is_null());
    let subjects: Vec<String> = inbox(&w)
        .into_iter()
        .map(|message| message.subject)
        .collect();
    assert!(
        subjects.contains(&format!("Follow-up to {first_id}")),
        "step 2 read step 1's output: {subjects:?}"
    );
    assert!(!subjects.contains(&"Always".to_owned()), "{subjects:?}");

    let (_, plain) = execute(&w, &id, json!({"name": "Bob", "order": "2"}), false, None).await;
    let plain = finish(&w, plain["run"]["id"].as_str().unwrap()).await;
    assert_eq!(plain["status"], "succeeded", "{plain}");
    assert_eq!(plain["steps"][1]["status"], "skipped");
    assert_eq!(plain["steps"][2]["status"], "succeeded");
    assert_eq!(inbox(&w).len(), 4, "First, Follow-up, First, Always");

    // A condition is an expression, checked when the workflow is saved.
    let mut broken = send_step(&integration, BOB, "x");
    broken["condition"] = json!("{{ input.vip }}");
    let answer = create(
        &w,
        &w.tenant,
        json!({"name": "n", "trigger": {"type": "manual"}, "steps": [broken]}),
    )
    .await;
    let problem = assert_problem(answer, 422, "validation_failed").await;
    assert_eq!(
        problem["errors"][0]["field"], "steps[0].condition",
        "{problem}"
    );
}

/// A receiver for `http.post` steps: answers 500 to the first POST, then
/// 200; records each body and `Idempotency-Key`.
async fn flaky_receiver() -> (
    String,
    std::sync::Arc<std::sync::Mutex<Vec<(String, Value)>>>,
) {
    use std::sync::{Arc, Mutex};
    let seen: Arc<Mutex<Vec<(String, Value)>>> = Arc::default();
    let recorded = Arc::clone(&seen);
    let app = axum::Router::new().route(
        "/in",
        axum::routing::post(move |headers: axum::http::HeaderMap, body: String| {
            let recorded = Arc::clone(&recorded);
            async move {
                let key = headers
                    .get("idempotency-key")
                    .and_then(|value| value.to_str().ok())
                    .unwrap_or_default()
                    .to_owned();
                let mut seen = recorded.lock().unwrap();
                seen.push((key, serde_json::from_str(&body).unwrap_or(Value::Null)));
                if seen.len() == 1 {
                    axum::http::StatusCode::INTERNAL_SERVER_ERROR
                } else {
                    axum::http::StatusCode::OK
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/in", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, seen)
}

/// `http.post` sends a JSON body built from the input and earlier steps,
/// retries a 500 with the same Idempotency-Key, and is refused on a private
/// address unless the operator allows it.
#[tokio::test]
async fn an_http_post_step_posts_json_and_retries_with_the_same_key() {
    let w = common::google::world_with(&[(
        "MAILWRIGHT_OUTBOUND_ALLOW_PRIVATE_NETWORKS",
        "true".into(),
    )])
    .await;
    w.sandbox.create_account(BOB, "Bob Builder");
    let integration = w.connect(Consent::allow_all()).await["integration_id"].clone();
    let (url, seen) = flaky_receiver().await;
    let post = json!({"action": "http.post", "url": url,
        "body": "{\"sent\": \"{{ steps[0].message_id }}\", \"name\": \"{{ input.name }}\"}"});
    let workflow = create_ok(
        &w,
        json!({"name": "Tell the shop", "trigger": {"type": "manual"},
               "steps": [send_step(&integration, BOB, "Shipped"), post]}),
    )
    .await;
    let (_, started) = execute(
        &w,
        workflow["id"].as_str().unwrap(),
        json!({"name": "Bob", "order": "1"}),
        false,
        None,
    )
    .await;
    let run = finish(&w, started["run"]["id"].as_str().unwrap()).await;
    assert_eq!(run["status"], "succeeded", "{run}");
    assert_eq!(run["steps"][1]["output"]["status"], 200, "{run}");
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2, "a 500, then the retry: {seen:?}");
    assert_eq!(seen[0].0, seen[1].0, "the same Idempotency-Key");
    assert!(!seen[0].0.is_empty());
    assert_eq!(seen[1].1["name"], "Bob");
    assert_eq!(seen[1].1["sent"], run["steps"][0]["output"]["message_id"]);

    // Refused at save: email fields on an http.post, a missing URL.
    let answer = create(
        &w,
        &w.tenant,
        json!({"name": "n", "trigger": {"type": "manual"},
        "steps": [{"action": "http.post", "to": [BOB], "body": "{}"}]}),
    )
    .await;
    let problem = assert_problem(answer, 422, "validation_failed").await;
    let fields: Vec<&str> = problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert!(
        fields.contains(&"steps[0].to") && fields.contains(&"steps[0].url"),
        "{problem}"
    );
}

#[tokio::test]
async fn an_http_post_to_a_private_address_fails_without_the_operators_setting() {
    let (w, integration) = connected().await;
    let workflow = create_ok(
        &w,
        json!({"name": "Internal", "trigger": {"type": "manual"},
               "steps": [send_step(&integration, BOB, "Hi"),
                         {"action": "http.post", "url": "http://127.0.0.1:9/in", "body": "{}"}]}),
    )
    .await;
    let (_, started) = execute(
        &w,
        workflow["id"].as_str().unwrap(),
        json!({"name": "B", "order": "1"}),
        false,
        None,
    )
    .await;
    let run = finish(&w, started["run"]["id"].as_str().unwrap()).await;
    assert_eq!(run["status"], "failed", "{run}");
    assert_eq!(run["error"]["code"], "http_refused", "{run}");
}
