//! For `scripts/bench-workflows.sh`: executions per second of a one-step
//! `gmail.send_email` workflow against the Google sandbox, `wait=false`, the
//! queue drained by the in-process workers; and the time from execute to the
//! run's end (the Gmail send recorded), p50/p99. SQLite, or PostgreSQL when
//! `MAILWRIGHT_TEST_POSTGRES_URL` is set.
//!
//! Usage: bench_workflows RUNS CONCURRENCY WORKERS [RATE]
//!
//! Without RATE the clients execute as fast as they are answered, which
//! measures throughput; the queue then grows faster than it drains, so the
//! latency is mostly time spent behind the backlog. With RATE (executions per
//! second) the executes are offered at that pace (at most CONCURRENCY
//! unanswered), so the latency is a run's own time at that load.
//!
//! `answer_p50_ms` / `answer_p99_ms`: how long `execute` took to answer, as
//! the client sees it. With `BENCH_WAIT=1` the executes ask `wait=true`
//! (answered when the run ends), so that is the time a caller waits for a
//! run's result.

use std::time::{Duration, Instant};

use sandbox::{AccountSpec, Consent, OAuthClient, Sandbox, SandboxConfig};
use serde_json::{Value, json};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .map(|arg| arg.parse().expect("numbers"))
        .collect();
    let (runs, concurrency, workers, rate) = (
        args.first().copied().unwrap_or(2000),
        args.get(1).copied().unwrap_or(32),
        args.get(2).copied().unwrap_or(8),
        args.get(3).copied(),
    );
    mailwright::app::install_crypto_provider();

    let sandbox = Sandbox::new(
        SandboxConfig::default()
            .with_account(AccountSpec::new("ann@example.com", "Ann"))
            .with_account(AccountSpec::new("bob@example.com", "Bob")),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let google = format!("http://{}", listener.local_addr()?);
    tokio::spawn(sandbox::serve(listener, sandbox.clone()));

    let db = store::testing::TestDatabase::new().await;
    let store = db.connect().await;
    store.migrate().await?;
    let env = vec![
        ("MAILWRIGHT_LISTEN".to_owned(), "127.0.0.1:0".to_owned()),
        (
            "MAILWRIGHT_DATA_DIR".to_owned(),
            db.data_dir().display().to_string(),
        ),
        ("MAILWRIGHT_DATABASE_URL".to_owned(), db.url.expose()),
        (
            "MAILWRIGHT_ENCRYPTION_KEYS".to_owned(),
            "bench:bWFpbHdyaWdodC10ZXN0LWtleS0wMTIzNDU2Nzg5YWI=".to_owned(),
        ),
        (
            "MAILWRIGHT_GOOGLE_CLIENT_ID".to_owned(),
            "bench-client".to_owned(),
        ),
        (
            "MAILWRIGHT_GOOGLE_CLIENT_SECRET".to_owned(),
            "bench-secret".to_owned(),
        ),
        (
            "MAILWRIGHT_GOOGLE_AUTH_URL".to_owned(),
            format!("{google}/o/oauth2/v2/auth"),
        ),
        (
            "MAILWRIGHT_GOOGLE_TOKEN_URL".to_owned(),
            format!("{google}/token"),
        ),
        (
            "MAILWRIGHT_GOOGLE_REVOKE_URL".to_owned(),
            format!("{google}/revoke"),
        ),
        (
            "MAILWRIGHT_GOOGLE_USERINFO_URL".to_owned(),
            format!("{google}/v1/userinfo"),
        ),
        ("MAILWRIGHT_GMAIL_API_URL".to_owned(), google.clone()),
    ];
    let (config, _) = mailwright::Config::load(env, None)?;
    let workspace = store.create_workspace("bench").await?;
    let owner = store.create_user(Some("owner@example.com"), None).await?;
    store
        .add_member(workspace.id, owner.id, store::tenancy::Role::Owner)
        .await?;
    let (_, key) =
        mailwright::auth::accounts::issue_api_key(&store, workspace.id, owner.id, "bench").await?;
    let key = secrecy::ExposeSecret::expose_secret(&key).to_owned();

    let application = mailwright::Application::build(config, store.clone())
        .await?
        .with_background_workers(workers);
    let base = format!("http://{}", application.local_addr());
    sandbox.register_client(OAuthClient::new(
        "bench-client",
        "bench-secret",
        [format!("{base}/api/auth/oauth/google/callback")],
    ));
    tokio::spawn(application.run_until(std::future::pending()));

    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let connect: Value = http
        .post(format!("{base}/api/integrations/google/connect"))
        .bearer_auth(&key)
        .json(&json!({"type": "gmail"}))
        .send()
        .await?
        .json()
        .await?;
    let redirect = sandbox.approve(
        connect["authorization_url"].as_str().unwrap(),
        Consent::allow_all(),
    )?;
    let location =
        mailwright::ui::connect_confirm::finish_consent_as_browser(&http, &redirect).await?;
    let integration = url::Url::parse(&format!("http://x{location}"))?
        .query_pairs()
        .find(|(name, _)| name == "integration_id")
        .map(|(_, value)| value.into_owned())
        .expect("connected");
    let workflow: Value = http
        .post(format!("{base}/api/workflows"))
        .bearer_auth(&key)
        .json(&json!({"name": "bench", "trigger": {"type": "manual"}, "steps": [{"action": "gmail.send_email",
            "integration_id": integration, "to": ["bob@example.com"], "subject": "Order {{ input.n }}", "body": "Shipped."}]}))
        .send()
        .await?
        .json()
        .await?;
    let wait = std::env::var("BENCH_WAIT").is_ok_and(|value| value == "1");
    let execute = format!(
        "{base}/api/workflows/{}/execute?wait={wait}",
        workflow["id"].as_str().unwrap()
    );
    let mut answer_ms = Vec::with_capacity(runs);

    let started = Instant::now();
    let mut run_ids = Vec::with_capacity(runs);
    let mut in_flight = tokio::task::JoinSet::new();
    let mut pace = rate.map(|rate| {
        let mut interval = tokio::time::interval(Duration::from_secs_f64(1.0 / rate as f64));
        // A late tick is not made up with a burst: the offered rate stays at most RATE.
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        interval
    });
    for n in 0..runs {
        if let Some(pace) = pace.as_mut() {
            pace.tick().await;
        }
        while in_flight.len() >= concurrency {
            let (id, ms) = in_flight.join_next().await.unwrap()??;
            run_ids.push(id);
            answer_ms.push(ms);
        }
        let (http, execute, key) = (http.clone(), execute.clone(), key.clone());
        in_flight.spawn(async move {
            let sent_at = Instant::now();
            let answer: Value = http
                .post(&execute)
                .bearer_auth(&key)
                .json(&json!({"input": {"n": n}}))
                .send()
                .await?
                .json()
                .await?;
            let ms = sent_at.elapsed().as_secs_f64() * 1000.0;
            anyhow::Ok((
                answer["run"]["id"].as_str().unwrap_or_default().to_owned(),
                ms,
            ))
        });
    }
    while let Some(done) = in_flight.join_next().await {
        let (id, ms) = done??;
        run_ids.push(id);
        answer_ms.push(ms);
    }
    let accepted = started.elapsed();

    // Wait until every run has ended.
    let give_up = Instant::now() + Duration::from_secs(600);
    loop {
        let sent = sandbox.sent_count("ann@example.com")?;
        if sent >= runs || Instant::now() > give_up {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let drained = started.elapsed();
    let mut latencies = Vec::with_capacity(runs);
    let mut failed = 0;
    for id in &run_ids {
        let run = store.run(workspace.id, uuid::Uuid::parse_str(id)?).await?;
        match (run.status.as_str(), run.finished_at) {
            ("succeeded", Some(finished)) => latencies
                .push((finished - run.created_at).num_microseconds().unwrap_or(0) as f64 / 1000.0),
            _ => failed += 1,
        }
    }
    latencies.sort_by(|a, b| a.total_cmp(b));
    answer_ms.sort_by(|a, b| a.total_cmp(b));
    let percentile = |values: &[f64], p: f64| {
        values
            .get(((values.len() as f64 * p) as usize).min(values.len().saturating_sub(1)))
            .copied()
            .unwrap_or(f64::NAN)
    };
    let sent = sandbox.sent_messages("ann@example.com")?.len();
    println!(
        "backend={:?} runs={runs} concurrency={concurrency} workers={workers} rate={} accepted_per_s={:.0} completed_per_s={:.0} p50_ms={:.1} p99_ms={:.1} failed={failed} messages_sent={sent} wait={wait} answer_p50_ms={:.1} answer_p99_ms={:.1}",
        store.backend(),
        rate.map_or("unpaced".to_owned(), |rate| format!("{rate}/s")),
        runs as f64 / accepted.as_secs_f64(),
        runs as f64 / drained.as_secs_f64(),
        percentile(&latencies, 0.50),
        percentile(&latencies, 0.99),
        percentile(&answer_ms, 0.50),
        percentile(&answer_ms, 0.99),
    );
    drop(db);
    Ok(())
}
