//! For `scripts/bench-autodraft.sh`: auto-draft with the built-in drafter
//! against the Google sandbox. N mailboxes are connected (OAuth through the
//! sandbox) and switched on; inbound mail is delivered in bursts spread
//! round-robin across them, and each burst is announced by Gmail pushes
//! (`push` mode) or left for the poller to find (`poll` mode). Measures
//! drafts per second (first delivery to last draft recorded), the latency
//! from delivery (UTC clock right after the sandbox stored the message) to
//! the `draft_metadata` row's `created_at`, Gmail quota units per drafted
//! message, and resident memory (the sandbox and the load generator live in
//! the same process). SQLite, or PostgreSQL when
//! `MAILWRIGHT_TEST_POSTGRES_URL` is set.
//!
//! Usage: bench_autodraft [MAILBOXES] [MESSAGES] [BURST] [WORKERS] [MODE] [GAP_MS]
//! Defaults: 1000 20000 1000 4 push 0; in poll mode MESSAGES defaults to
//! 5000 and GAP_MS (the pause between the starts of two bursts) to 20000.
//! Env: MAILWRIGHT_AUTODRAFT_POLL_SECONDS (default 60), BENCH_DEADLINE_SECONDS
//! (default 900), BENCH_CONNECT_CONCURRENCY (default 16).

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use base64::Engine;
use chrono::{DateTime, Utc};
use domain::IntegrationId;
use sandbox::{AccountSpec, Consent, InboundMessage, OAuthClient, Sandbox, SandboxConfig};
use serde_json::{Value, json};

const PUSH_TOKEN: &str = "bench-push-token-0123456789abcdef";

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|line| line.starts_with("VmRSS:"))
                .and_then(|line| line.split_whitespace().nth(1))
                .and_then(|kib| kib.parse().ok())
        })
        .unwrap_or(0)
}

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

fn email_of(n: usize) -> String {
    format!("user{n}@example.com")
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted
        .get(((sorted.len() as f64 * p) as usize).min(sorted.len().saturating_sub(1)))
        .copied()
        .unwrap_or(f64::NAN)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let number = |index: usize, default: usize| -> usize {
        args.get(index)
            .map(|arg| arg.parse().expect("a number"))
            .unwrap_or(default)
    };
    let mode = args.get(4).cloned().unwrap_or_else(|| "push".to_owned());
    let push = match mode.as_str() {
        "push" => true,
        "poll" => false,
        other => anyhow::bail!("MODE is `push` or `poll`, not `{other}`"),
    };
    let mailboxes = number(0, 1000);
    let messages = number(1, if push { 20_000 } else { 5000 });
    let burst = number(2, 1000).max(1);
    let workers = number(3, 4);
    let gap = Duration::from_millis(number(5, if push { 0 } else { 20_000 }) as u64);
    let poll_seconds = env_number("MAILWRIGHT_AUTODRAFT_POLL_SECONDS", 60);
    let deadline = Duration::from_secs(env_number("BENCH_DEADLINE_SECONDS", 900));
    let connect_concurrency = env_number("BENCH_CONNECT_CONCURRENCY", 16) as usize;
    mailwright::app::install_crypto_provider();

    let rss_start = rss_kib();
    let mut sandbox_config = SandboxConfig::default();
    for n in 0..mailboxes {
        sandbox_config =
            sandbox_config.with_account(AccountSpec::new(email_of(n), format!("User {n}")));
    }
    let sandbox = Sandbox::new(sandbox_config);
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
        ("MAILWRIGHT_PUSH_TOKEN".to_owned(), PUSH_TOKEN.to_owned()),
        (
            "MAILWRIGHT_AUTODRAFT_POLL_SECONDS".to_owned(),
            poll_seconds.to_string(),
        ),
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

    // Connect every mailbox through the sandbox's consent and switch auto-draft on.
    let rss_before_connect = rss_kib();
    let connect_started = Instant::now();
    let mut integrations: Vec<Option<IntegrationId>> = vec![None; mailboxes];
    let mut in_flight = tokio::task::JoinSet::new();
    for n in 0..mailboxes {
        while in_flight.len() >= connect_concurrency {
            let (n, id) = in_flight.join_next().await.unwrap()??;
            integrations[n] = Some(id);
        }
        let (http, base, key, sandbox) = (http.clone(), base.clone(), key.clone(), sandbox.clone());
        in_flight.spawn(async move {
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
                Consent::allow_all().as_account(email_of(n)),
            )?;
            let location =
                mailwright::ui::connect_confirm::finish_consent_as_browser(&http, &redirect)
                    .await?;
            let id = url::Url::parse(&format!("http://x{location}"))?
                .query_pairs()
                .find(|(name, _)| name == "integration_id")
                .map(|(_, value)| value.into_owned())
                .ok_or_else(|| anyhow::anyhow!("mailbox {n} not connected: {location}"))?;
            let switched = http
                .put(format!("{base}/api/integrations/{id}/auto-draft"))
                .bearer_auth(&key)
                .json(&json!({"enabled": true}))
                .send()
                .await?;
            anyhow::ensure!(
                switched.status() == 200,
                "enabling mailbox {n}: {} {}",
                switched.status(),
                switched.text().await?
            );
            anyhow::Ok((n, IntegrationId::parse(&id)?))
        });
    }
    while let Some(done) = in_flight.join_next().await {
        let (n, id) = done??;
        integrations[n] = Some(id);
    }
    let integrations: Vec<IntegrationId> = integrations.into_iter().map(Option::unwrap).collect();
    let connect_time = connect_started.elapsed();
    let rss_enabled = rss_kib();
    eprintln!(
        "connected and enabled {mailboxes} mailboxes in {:.1} s",
        connect_time.as_secs_f64()
    );

    // The measured phase.
    let quota_before: u64 = (0..mailboxes)
        .map(|n| sandbox.quota_used(&email_of(n)))
        .sum();
    let calls_before = sandbox.call_counts();
    let drafts_create_before = sandbox.call_count("drafts.create");
    let mut delivered_at: HashMap<(usize, String), DateTime<Utc>> =
        HashMap::with_capacity(messages);
    let started = Instant::now();
    let first_delivery = Utc::now();
    let mut next_mailbox = 0;
    let mut sent = 0;
    let mut burst_index: u32 = 0;
    let mut push_failures = 0;
    while sent < messages {
        let burst_start = started + gap * burst_index;
        tokio::time::sleep_until(burst_start.into()).await;
        let size = burst.min(messages - sent);
        let mut touched = Vec::new();
        for _ in 0..size {
            let n = next_mailbox;
            next_mailbox = (next_mailbox + 1) % mailboxes;
            let k = sent;
            let message = InboundMessage::new(
                format!("Sender {k} <s{k}@example.net>"),
                email_of(n),
                format!("Meeting {k}"),
                format!("Hi,\n\nCould we meet on Tuesday?\n\nThanks,\nSender {k}"),
            );
            let delivered = sandbox.deliver(&message)?;
            let at = Utc::now();
            for copy in delivered {
                delivered_at.insert((n, copy.id), at);
            }
            touched.push(n);
            sent += 1;
        }
        touched.sort_unstable();
        touched.dedup();
        if push {
            let mut pushes = tokio::task::JoinSet::new();
            for n in touched {
                while pushes.len() >= 32 {
                    if !pushes.join_next().await.unwrap()?? {
                        push_failures += 1;
                    }
                }
                let email = email_of(n);
                let data = base64::engine::general_purpose::STANDARD.encode(
                    json!({"emailAddress": email, "historyId": sandbox.history_id(&email)?})
                        .to_string(),
                );
                let (http, url) = (
                    http.clone(),
                    format!("{base}/api/push/gmail?token={PUSH_TOKEN}"),
                );
                pushes.spawn(async move {
                    let answer = http
                        .post(url)
                        .json(&json!({"message": {"data": data, "messageId": "1"},
                                      "subscription": "projects/bench/subscriptions/mailwright"}))
                        .send()
                        .await?;
                    anyhow::Ok(answer.status() == 200)
                });
            }
            while let Some(done) = pushes.join_next().await {
                if !done?? {
                    push_failures += 1;
                }
            }
        }
        burst_index += 1;
    }
    let delivery_time = started.elapsed();
    eprintln!(
        "delivered {sent} messages in {burst_index} bursts in {:.1} s",
        delivery_time.as_secs_f64()
    );

    // Wait for a drafts.create call per message (or the deadline), then for
    // the rows recording them.
    let give_up = started + deadline;
    let mut last_report = Instant::now();
    loop {
        let created = sandbox.call_count("drafts.create") - drafts_create_before;
        if created >= messages as u64 || Instant::now() > give_up {
            break;
        }
        if last_report.elapsed() > Duration::from_secs(10) {
            eprintln!(
                "  {:.0} s: {created} drafts.create calls",
                started.elapsed().as_secs_f64()
            );
            last_report = Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut records = Vec::new();
    loop {
        records.clear();
        for id in &integrations {
            records.extend(
                store
                    .autodraft_drafts(workspace.id, *id, 1_000_000)
                    .await?
                    .into_iter()
                    .map(move |record| (*id, record)),
            );
        }
        if records.len() >= messages || Instant::now() > give_up {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let waited = started.elapsed();
    let calls_after = sandbox.call_counts();
    let quota_after: u64 = (0..mailboxes)
        .map(|n| sandbox.quota_used(&email_of(n)))
        .sum();
    let rss_after = rss_kib();

    // Latencies, and exactly one draft per message.
    let index: HashMap<IntegrationId, usize> = integrations
        .iter()
        .enumerate()
        .map(|(n, id)| (*id, n))
        .collect();
    let mut latencies = Vec::with_capacity(records.len());
    let mut unknown = 0;
    let mut last_draft = first_delivery;
    let mut per_source: HashMap<(usize, String), usize> = HashMap::new();
    for (id, record) in &records {
        let n = index[id];
        let key = (n, record.source_message_id.clone());
        *per_source.entry(key.clone()).or_default() += 1;
        last_draft = last_draft.max(record.created_at);
        match delivered_at.get(&key) {
            Some(at) => latencies
                .push((record.created_at - *at).num_microseconds().unwrap_or(0) as f64 / 1000.0),
            None => unknown += 1,
        }
    }
    latencies.sort_by(|a, b| a.total_cmp(b));
    let duplicates: usize = per_source.values().map(|count| count - 1).sum();
    let undrafted = delivered_at
        .keys()
        .filter(|key| !per_source.contains_key(*key))
        .count();
    let gmail_drafts: usize = (0..mailboxes)
        .map(|n| sandbox.drafts(&email_of(n)).map(|d| d.len()).unwrap_or(0))
        .sum();
    let (mut skipped, mut failed, mut pending) = (0, 0, 0);
    if records.len() != messages || gmail_drafts != messages {
        for id in &integrations {
            let stats = store.autodraft_stats(workspace.id, *id).await?;
            skipped += stats.skipped_by_reason.values().sum::<i64>();
            failed += stats.failures_by_reason.values().sum::<i64>();
            pending += stats.pending;
        }
    }

    let drafted = records.len();
    let span = (last_draft - first_delivery)
        .num_microseconds()
        .unwrap_or(0) as f64
        / 1e6;
    let quota = quota_after - quota_before;
    let calls: BTreeMap<String, u64> = calls_after
        .iter()
        .filter_map(|(method, after)| {
            let delta = after - calls_before.get(method).copied().unwrap_or(0);
            (delta > 0).then(|| (method.clone(), delta))
        })
        .collect();
    let mib = |kib: u64| kib as f64 / 1024.0;
    println!(
        "backend={:?} mode={mode} mailboxes={mailboxes} messages={messages} burst={burst} gap_ms={} workers={workers} poll_s={poll_seconds}",
        store.backend(),
        gap.as_millis(),
    );
    println!(
        "  drafted={drafted} gmail_drafts={gmail_drafts} drafts_per_s={:.0} span_s={span:.2} delivery_s={:.2} p50_ms={:.0} p99_ms={:.0} max_ms={:.0}",
        drafted as f64 / span,
        delivery_time.as_secs_f64(),
        percentile(&latencies, 0.50),
        percentile(&latencies, 0.99),
        latencies.last().copied().unwrap_or(f64::NAN),
    );
    println!(
        "  quota_units={quota} quota_per_draft={:.2} calls={}",
        quota as f64 / drafted.max(1) as f64,
        calls
            .iter()
            .map(|(method, count)| format!("{method}:{count}"))
            .collect::<Vec<_>>()
            .join(",")
    );
    println!(
        "  rss_mib: start={:.1} before_connect={:.1} enabled={:.1} after_run={:.1} per_enabled_mailbox_kib={:.1} (sandbox in process) connect_s={:.1}",
        mib(rss_start),
        mib(rss_before_connect),
        mib(rss_enabled),
        mib(rss_after),
        (rss_enabled.saturating_sub(rss_before_connect)) as f64 / mailboxes.max(1) as f64,
        connect_time.as_secs_f64(),
    );
    if drafted != messages
        || gmail_drafts != messages
        || duplicates > 0
        || undrafted > 0
        || unknown > 0
        || push_failures > 0
    {
        println!(
            "  MISMATCH: expected {messages} drafts, one per message: rows={drafted} in_gmail={gmail_drafts} duplicates={duplicates} undrafted={undrafted} unknown_source={unknown} push_failures={push_failures} skipped={skipped} failed={failed} pending={pending} (waited {:.0} s)",
            waited.as_secs_f64()
        );
    }
    drop(db);
    Ok(())
}
