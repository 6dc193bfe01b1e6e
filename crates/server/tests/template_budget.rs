//! Step templates render within a budget (instructions, output, built bytes,
//! time) off the async runtime: a tenant's template cannot stall the server
//! for other workspaces, nor write huge rows; what the template alone shows
//! will exceed the budget is refused when the workflow is saved.

mod common;

use std::time::{Duration, Instant};

use common::assert_problem;
use common::google::{World, world};
use common::workflows::{create, create_ok, execute};
use serde_json::{Value, json};

/// A step that queues a system email (no Gmail needed) with this body.
fn report(body: &str) -> Value {
    json!({"name": "Report", "trigger": {"type": "manual"},
           "steps": [{"action": "email.send_system", "to": ["ops@example.com"],
                      "subject": "Report", "body": body}]})
}

async fn run(w: &World, id: &str) -> Value {
    w.app
        .get_as(&format!("/api/runs/{id}"), &w.tenant.key)
        .await
        .json()
        .await
        .unwrap()
}

/// Queue a run (`wait=false`) and return its id.
async fn start(w: &World, workflow: &Value, input: Value) -> String {
    let (status, answer) = execute(w, workflow["id"].as_str().unwrap(), input, false, None).await;
    assert_eq!(status, 202, "{answer}");
    answer["run"]["id"].as_str().unwrap().to_owned()
}

/// The run failed at once (not retried) with `validation_failed` naming the
/// body; its message.
async fn failed_on_body(w: &World, id: &str) -> String {
    let run = run(w, id).await;
    assert_eq!(run["status"], "failed", "{run}");
    assert_eq!(run["error"]["code"], "validation_failed", "{run}");
    assert_eq!(run["steps"][0]["status"], "failed", "{run}");
    assert_eq!(run["steps"][0]["error"], run["error"], "{run}");
    let message = run["error"]["message"].as_str().unwrap().to_owned();
    assert!(message.starts_with("Step 1's message "), "{message}");
    message
}

/// The attack of the review: nested loops over huge ranges, run twice with
/// `wait=false`, and a template that runs out of time. While they render,
/// another workspace's client (on its own thread) is answered promptly;
/// each run then fails with `validation_failed` and a message naming the
/// limit. One runtime thread serves the app and its workers here: a render
/// on it would hold every answer until it ended.
#[tokio::test]
async fn heavy_templates_fail_their_runs_while_other_workspaces_are_answered() {
    let w = world().await;
    let other = w.app.bare_tenant("other").await;

    // The literal form is refused at creation (see below); with the bound
    // in the input it can only be stopped while it runs.
    let loops = create_ok(
        &w,
        report(
            "{% for a in range(input.n) %}{% for b in range(input.n) %}{% for c in range(input.n) %}x{% endfor %}{% endfor %}{% endfor %}",
        ),
    )
    .await;
    // Few instructions, each slow: only the clock stops it.
    let slow = create_ok(
        &w,
        report(
            "{% for i in range(input.n) %}{% if range(100000)|max > 0 %}{% endif %}{% endfor %}done",
        ),
    )
    .await;
    let first = start(&w, &loops, json!({"n": 100000})).await;
    let second = start(&w, &loops, json!({"n": 100000})).await;
    let third = start(&w, &slow, json!({"n": 10000})).await;

    // The other workspace's client: its own thread and runtime, asking
    // `/api/me` every 50 ms until told to stop.
    let (me_url, key) = (w.app.url("/api/me"), other.key.clone());
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (ready, warm) = std::sync::mpsc::channel();
    let asking = {
        let stop = std::sync::Arc::clone(&stop);
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let client = reqwest::Client::new();
                let me = || async {
                    let started = Instant::now();
                    let answer = client.get(&me_url).bearer_auth(&key).send().await.unwrap();
                    assert_eq!(answer.status(), 200);
                    started.elapsed()
                };
                // Warm connections (HTTP, and the database pool, which opens
                // more as the workers take some): opening one is not measured.
                futures_util::future::join_all((0..6).map(|_| me())).await;
                ready.send(()).unwrap();
                let mut answered = Vec::new();
                while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                    answered.push(me().await);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                answered
            })
        })
    };
    // The server answers the warm-up on this thread's runtime.
    let deadline = Instant::now() + Duration::from_secs(10);
    while warm.try_recv().is_err() {
        assert!(Instant::now() < deadline, "the other client did not start");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    // Two workers draining at once, as in `serve` with background workers.
    let started = Instant::now();
    let drains: Vec<_> = (0..2)
        .map(|_| {
            let worker = w.app.worker.clone();
            tokio::spawn(async move { worker.drain().await.unwrap() })
        })
        .collect();
    let ran: usize = tokio::time::timeout(
        Duration::from_secs(30),
        futures_util::future::join_all(drains),
    )
    .await
    .expect("the runs end")
    .into_iter()
    .map(Result::unwrap)
    .sum();
    let drained = started.elapsed();
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    // Joined off this runtime, which answers the client's last request.
    let answered = tokio::task::spawn_blocking(move || asking.join().unwrap())
        .await
        .unwrap();
    assert_eq!(ran, 3, "three runs");
    let slowest = answered.iter().max().unwrap();
    eprintln!(
        "{} answers while rendering for {drained:?}, slowest {slowest:?}: {answered:?}",
        answered.len()
    );
    assert!(
        answered.len() >= 10,
        "answered throughout the 2 s render: {answered:?}"
    );
    // Blocked, the runtime would answer only after the 2 s render (the
    // review saw no answer in 20 s); answers take a few milliseconds.
    assert!(
        *slowest < Duration::from_millis(100),
        "another workspace waited: {answered:?}"
    );

    for id in [&first, &second] {
        let message = failed_on_body(&w, id).await;
        assert!(
            message.contains("100000 template instructions"),
            "{message}"
        );
    }
    let message = failed_on_body(&w, &third).await;
    assert!(message.contains("longer than 2 s"), "{message}");
    assert!(
        drained < Duration::from_secs(6),
        "the slow render stopped at its limit: {drained:?}"
    );
    assert!(w.outbox().await.is_empty(), "nothing was queued");
}

/// `{{ 'x' * 10000000 }}` used to queue a 10 MB email. Its literal form is
/// refused at creation; a workflow saved before the check, or the same
/// repetition from the input, fails its run at once without building it.
#[tokio::test]
async fn a_huge_repetition_fails_its_run_fast_and_writes_nothing() {
    let w = world().await;
    let from_input = create_ok(&w, report("{{ input.s * input.n }}")).await;
    // As stored before templates were checked for their budget.
    let stored = store::workflows::Workflow {
        id: uuid::Uuid::now_v7(),
        workspace: w.tenant.workspace,
        name: "Saved earlier".into(),
        enabled: true,
        trigger: json!({"type": "manual"}),
        steps: report("{{ 'x' * 10000000 }}")["steps"].clone(),
        webhook_secret: None,
        notify_on_failure: false,
        next_run_at: None,
        created_at: store::now(),
        updated_at: store::now(),
    };
    w.app.store.create_workflow(&stored).await.unwrap();
    let stored = json!({"id": stored.id.to_string()});

    let runs = [
        start(&w, &from_input, json!({"s": "x", "n": 10_000_000})).await,
        start(&w, &stored, json!({})).await,
    ];
    let started = Instant::now();
    assert_eq!(w.app.worker.drain().await.unwrap(), 2);
    let drained = started.elapsed();
    assert!(
        drained < domain::workflows::RENDER_TIME_LIMIT,
        "refused before building it, not at the time limit: {drained:?}"
    );
    for id in &runs {
        let message = failed_on_body(&w, id).await;
        assert!(message.contains("4194304 bytes"), "{message}");
        let row = run(&w, id).await.to_string();
        assert!(row.len() < 10_000, "a small run row: {} bytes", row.len());
    }
    assert!(w.outbox().await.is_empty(), "no 10 MB email was queued");
}

/// Ordinary templates (loops over the input, filters, arithmetic) render as
/// before, on a blocking thread.
#[tokio::test]
async fn a_normal_template_still_renders() {
    let w = world().await;
    let workflow = create_ok(
        &w,
        json!({"name": "Order", "trigger": {"type": "manual"},
               "steps": [{"action": "email.send_system", "to": ["{{ input.email }}"],
                          "subject": "Order {{ input.order ~ '' }} for {{ input.name|title }}",
                          "body": "{% set ns = namespace(total=0) %}{% for item in input.items|sort(attribute='name') %}{{ loop.index }}. {{ item.name }} x{{ item.qty }} = {{ item.qty * item.price }}\n{% set ns.total = ns.total + item.qty * item.price %}{% endfor %}Total: {{ ns.total }} ({{ input.items|map(attribute='name')|join(', ') }})"}]}),
    )
    .await;
    let (status, answer) = execute(
        &w,
        workflow["id"].as_str().unwrap(),
        json!({"email": "ada@example.com", "name": "ada lovelace", "order": "A-17",
               "items": [{"name": "tea", "qty": 2, "price": 3}, {"name": "cake", "qty": 1, "price": 4}]}),
        false,
        None,
    )
    .await;
    assert_eq!(status, 202, "{answer}");
    w.app.worker.drain().await.unwrap();
    let run = run(&w, answer["run"]["id"].as_str().unwrap()).await;
    assert_eq!(run["status"], "succeeded", "{run}");
    let emails = w.outbox().await;
    assert_eq!(emails.len(), 1, "{emails:?}");
    assert_eq!(emails[0]["to"], "ada@example.com");
    assert_eq!(emails[0]["subject"], "Order A-17 for Ada Lovelace");
    assert_eq!(
        emails[0]["text"],
        "1. cake x1 = 4\n2. tea x2 = 6\nTotal: 10 (tea, cake)"
    );
}

/// What the template alone shows will exceed the budget is a 422 naming the
/// field, before anything runs.
#[tokio::test]
async fn creation_refuses_what_the_template_alone_shows() {
    let w = world().await;
    for (body, field, says) in [
        (
            report(
                "{% for a in range(100000) %}{% for b in range(100000) %}{% for c in range(100000) %}x{% endfor %}{% endfor %}{% endfor %}",
            ),
            "steps[0].body",
            "template instructions",
        ),
        (report("{{ 'x' * 10000000 }}"), "steps[0].body", "4194304"),
        (report("{{ 'x' * 300000 }}"), "steps[0].body", "262144"),
        (
            report("{% set text %}{{ input.a }}{% endset %}{{ text }}"),
            "steps[0].body",
            "not support",
        ),
        (
            json!({"name": "n", "trigger": {"type": "manual"},
                   "steps": [{"action": "email.send_system", "to": ["{{ 'x' * 10000000 }}@example.com"],
                              "subject": "{{ 'y' * 300000 }}", "body": "b"}]}),
            "steps[0].to[0]",
            "4194304",
        ),
    ] {
        let started = Instant::now();
        let answer = create(&w, &w.tenant, body.clone()).await;
        let problem = assert_problem(answer, 422, "validation_failed").await;
        assert!(started.elapsed() < Duration::from_secs(2), "{body}");
        assert_eq!(problem["errors"][0]["field"], field, "{problem}");
        let message = problem["errors"][0]["message"].as_str().unwrap();
        assert!(message.contains(says), "{message}");
    }
    // Under a condition on the input it may never run: saved, and judged when it does.
    create_ok(
        &w,
        report("{% if input.verbose %}{{ 'x' * 10000000 }}{% endif %}ok"),
    )
    .await;
}
