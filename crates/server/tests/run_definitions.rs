//! A run executes the steps it was created with: editing or deleting its
//! workflow while it is queued, retrying or running never changes, breaks
//! or strands it. And a run that keeps failing says it is retrying (with its
//! next attempt) until its retry horizon, then fails with the reason.

mod common;

use std::time::{Duration, Instant};

use common::google::world_with;
use common::workflows::{BOB, connected, create_ok, execute, finish, inbox, send_step};
use sandbox::{Consent, Fault};
use serde_json::{Value, json};

async fn run(w: &common::google::World, id: &str) -> (u16, Value) {
    let answer = w
        .app
        .get_as(&format!("/api/runs/{id}"), &w.tenant.key)
        .await;
    let status = answer.status().as_u16();
    (status, answer.json().await.unwrap_or(Value::Null))
}

async fn replace(w: &common::google::World, id: &str, body: Value) {
    let answer = w
        .app
        .client
        .put(w.app.url(&format!("/api/workflows/{id}")))
        .bearer_auth(&w.tenant.key)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200, "{}", answer.text().await.unwrap());
}

/// The report of issue "Hard core", point 1: a step added while a run waits
/// to retry a failed send panicked every worker that took the run.
#[tokio::test]
async fn a_step_added_while_a_run_waits_to_retry_leaves_that_run_its_own_steps() {
    let (w, integration) = connected().await;
    let workflow = create_ok(
        &w,
        json!({"name": "Edited", "trigger": {"type": "manual"},
               "steps": [send_step(&integration, BOB, "First version")]}),
    )
    .await;
    let id = workflow["id"].as_str().unwrap();
    w.sandbox
        .inject_fault("messages.send", Fault::BackendError, 1);
    let (_, answer) = execute(&w, id, json!({"name": "Bob", "order": 1}), false, None).await;
    let run_id = answer["run"]["id"].as_str().unwrap().to_owned();
    w.app.worker.drain().await.unwrap();

    let (_, waiting) = run(&w, &run_id).await;
    assert_eq!(waiting["status"], "retrying", "{waiting}");
    assert!(waiting["next_attempt_at"].is_string(), "{waiting}");
    assert_eq!(waiting["error"], Value::Null, "nothing failed for good");
    assert_eq!(waiting["steps"][0]["error"]["code"], "provider_unavailable");
    assert_eq!(
        waiting["steps"][0]["definition"]["subject"],
        "First version"
    );

    // The workflow grows a second step while the run waits.
    replace(
        &w,
        id,
        json!({"name": "Edited", "trigger": {"type": "manual"},
               "steps": [send_step(&integration, BOB, "Second version"),
                         send_step(&integration, BOB, "Added step")]}),
    )
    .await;

    let ended = finish(&w, &run_id).await;
    assert_eq!(ended["status"], "succeeded", "{ended}");
    assert_eq!(ended["steps"].as_array().unwrap().len(), 1, "its own steps");
    let subjects: Vec<String> = inbox(&w).into_iter().map(|m| m.subject).collect();
    assert_eq!(subjects, ["First version"]);
    // No handler panicked on the way (each would be counted here, beside
    // the jobs that ran).
    let metrics = w.app.get("/metrics").await.text().await.unwrap();
    assert!(metrics.contains("mailwright_jobs_total"), "{metrics}");
    assert!(
        !metrics.contains("mailwright_job_panics_total"),
        "{metrics}"
    );

    // Runs started after the edit run the new definition.
    let (_, answer) = execute(&w, id, json!({"name": "Bob", "order": 2}), false, None).await;
    let later = finish(&w, answer["run"]["id"].as_str().unwrap()).await;
    assert_eq!(later["status"], "succeeded", "{later}");
    assert_eq!(later["steps"].as_array().unwrap().len(), 2);
    assert_eq!(inbox(&w).len(), 3);
}

#[tokio::test]
async fn a_step_removed_while_a_run_is_queued_still_runs_in_that_run() {
    let (w, integration) = connected().await;
    let workflow = create_ok(
        &w,
        json!({"name": "Shrinks", "trigger": {"type": "manual"},
               "steps": [send_step(&integration, BOB, "One"), send_step(&integration, BOB, "Two")]}),
    )
    .await;
    let id = workflow["id"].as_str().unwrap();
    let (_, answer) = execute(&w, id, json!({"name": "Bob", "order": 1}), false, None).await;
    let run_id = answer["run"]["id"].as_str().unwrap().to_owned();
    replace(
        &w,
        id,
        json!({"name": "Shrinks", "trigger": {"type": "manual"},
               "steps": [send_step(&integration, BOB, "Only")]}),
    )
    .await;
    let ended = finish(&w, &run_id).await;
    assert_eq!(ended["status"], "succeeded", "{ended}");
    let mut subjects: Vec<String> = inbox(&w).into_iter().map(|m| m.subject).collect();
    subjects.sort();
    assert_eq!(subjects, ["One", "Two"]);
}

/// Deleting a workflow deletes its runs: one that was queued or waiting to
/// retry never sends, and its job ends without an error.
#[tokio::test]
async fn a_workflow_deleted_while_its_runs_are_queued_and_retrying_sends_nothing_more() {
    let (w, integration) = connected().await;
    let workflow = create_ok(
        &w,
        json!({"name": "Deleted", "trigger": {"type": "manual"},
               "steps": [send_step(&integration, BOB, "Never")]}),
    )
    .await;
    let id = workflow["id"].as_str().unwrap();
    w.sandbox
        .inject_fault("messages.send", Fault::BackendError, 1);
    let (_, retrying) = execute(&w, id, json!({"name": "Bob", "order": 1}), false, None).await;
    w.app.worker.drain().await.unwrap();
    let retrying = retrying["run"]["id"].as_str().unwrap().to_owned();
    assert_eq!(run(&w, &retrying).await.1["status"], "retrying");
    let (_, queued) = execute(&w, id, json!({"name": "Bob", "order": 2}), false, None).await;
    let queued = queued["run"]["id"].as_str().unwrap().to_owned();

    let deleted = w
        .app
        .client
        .delete(w.app.url(&format!("/api/workflows/{id}")))
        .bearer_auth(&w.tenant.key)
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 204);
    store::testing::make_jobs_due(&w.app.store).await;
    w.app.worker.drain().await.unwrap();
    for run_id in [&retrying, &queued] {
        assert_eq!(run(&w, run_id).await.0, 404, "deleted with its workflow");
    }
    assert!(inbox(&w).is_empty(), "nothing was sent");
}

/// With a retry horizon of two seconds, a send that keeps failing is
/// `retrying` (next attempt shown) until the horizon, then `failed` with the
/// last error and how long it was tried.
#[tokio::test]
async fn a_run_that_keeps_failing_retries_until_its_horizon_then_fails_saying_so() {
    let w = world_with(&[
        ("MAILWRIGHT_RETRY_HORIZON_HOURS", "0.0005".into()),
        ("MAILWRIGHT_RETRY_BASE_MILLIS", "10".into()),
    ])
    .await;
    w.sandbox.create_account(BOB, "Bob Builder");
    let integration = w.connect(Consent::allow_all()).await["integration_id"].clone();
    let workflow = create_ok(
        &w,
        json!({"name": "Outage", "trigger": {"type": "manual"}, "notify_on_failure": true,
               "steps": [send_step(&integration, BOB, "During an outage")]}),
    )
    .await;
    w.sandbox
        .inject_fault("messages.send", Fault::BackendError, 10_000);
    let (_, answer) = execute(
        &w,
        workflow["id"].as_str().unwrap(),
        json!({"name": "Bob", "order": 1}),
        false,
        None,
    )
    .await;
    let run_id = answer["run"]["id"].as_str().unwrap().to_owned();
    w.app.worker.drain().await.unwrap();
    let (_, waiting) = run(&w, &run_id).await;
    assert_eq!(waiting["status"], "retrying", "{waiting}");

    let deadline = Instant::now() + Duration::from_secs(30);
    let ended = loop {
        store::testing::make_jobs_due(&w.app.store).await;
        w.app.worker.drain().await.unwrap();
        let (_, current) = run(&w, &run_id).await;
        if current["status"] == "failed" {
            break current;
        }
        assert!(
            Instant::now() < deadline,
            "the run gave up by now: {current}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(ended["error"]["code"], "provider_unavailable", "{ended}");
    let message = ended["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("Gmail did not answer") && message.contains("gave up after"),
        "{message}"
    );
    assert_eq!(ended["steps"][0]["status"], "failed");
    assert!(inbox(&w).is_empty());
    // Failed for good at the horizon: the workflow asked to be told.
    let notices: Vec<serde_json::Value> = w
        .outbox()
        .await
        .into_iter()
        .filter(|email| email["kind"] == "workflow_run_failed")
        .collect();
    assert_eq!(notices.len(), 1, "{notices:?}");
}

/// Edited and deleted while their runs are in the middle of a send (Gmail
/// holds back its answers): the edited workflow's run finishes its own two
/// steps; the deleted one's run, already sending, goes with its workflow
/// without an error; nothing is sent twice.
#[tokio::test]
async fn workflows_edited_and_deleted_while_their_runs_are_running() {
    let (w, integration) = connected().await;
    let edited = create_ok(
        &w,
        json!({"name": "Edited while running", "trigger": {"type": "manual"},
               "steps": [send_step(&integration, BOB, "One"), send_step(&integration, BOB, "Two")]}),
    )
    .await;
    let deleted = create_ok(
        &w,
        json!({"name": "Deleted while running", "trigger": {"type": "manual"},
               "steps": [send_step(&integration, BOB, "Gone")]}),
    )
    .await;
    let (edited_id, deleted_id) = (
        edited["id"].as_str().unwrap(),
        deleted["id"].as_str().unwrap(),
    );
    w.sandbox
        .stall_answer_after_commit("messages.send", Duration::from_millis(1500), 2);
    let (_, edited_run) = execute(
        &w,
        edited_id,
        json!({"name": "Bob", "order": 1}),
        false,
        None,
    )
    .await;
    let (_, deleted_run) = execute(
        &w,
        deleted_id,
        json!({"name": "Bob", "order": 2}),
        false,
        None,
    )
    .await;
    let (edited_run, deleted_run) = (
        edited_run["run"]["id"].as_str().unwrap().to_owned(),
        deleted_run["run"]["id"].as_str().unwrap().to_owned(),
    );

    // Two workers, each in the middle of its run's first send.
    let (first, second) = (w.app.worker.clone(), w.app.worker.clone());
    let working = tokio::spawn(async move {
        let (a, b) = tokio::join!(first.run_next(), second.run_next());
        (a.map(|_| ()), b.map(|_| ()))
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    while inbox(&w).len() < 2 {
        assert!(Instant::now() < deadline, "both sends reached Gmail");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(run(&w, &edited_run).await.1["status"], "running");
    replace(
        &w,
        edited_id,
        json!({"name": "Edited while running", "trigger": {"type": "manual"},
               "steps": [send_step(&integration, BOB, "Replaced")]}),
    )
    .await;
    let gone = w
        .app
        .client
        .delete(w.app.url(&format!("/api/workflows/{deleted_id}")))
        .bearer_auth(&w.tenant.key)
        .send()
        .await
        .unwrap();
    assert_eq!(gone.status(), 204);

    let (a, b) = working.await.unwrap();
    a.unwrap();
    b.unwrap();
    let ended = finish(&w, &edited_run).await;
    assert_eq!(ended["status"], "succeeded", "{ended}");
    assert_eq!(ended["steps"].as_array().unwrap().len(), 2, "its own steps");
    assert_eq!(run(&w, &deleted_run).await.0, 404);
    store::testing::make_jobs_due(&w.app.store).await;
    w.app.worker.drain().await.unwrap();
    let mut subjects: Vec<String> = inbox(&w).into_iter().map(|m| m.subject).collect();
    subjects.sort();
    assert_eq!(
        subjects,
        ["Gone", "One", "Two"],
        "each once, nothing replaced mid-run"
    );
}
