//! Exactly once, through kill -9: the real `mailwright serve` binary runs as
//! child processes against one database while the Google sandbox runs in
//! this test process (so Gmail's state outlives every kill). The processes
//! are killed with SIGKILL at random moments, some of them while Gmail has
//! accepted a draft or a send and is holding back its answer, and started
//! again.
//!
//! What the suite proves, by looking in the sandbox mailbox itself:
//!
//! - auto-draft: every delivered message ends with exactly one reply draft,
//!   in its own thread, and the auto-draft API counts each once and none as
//!   failed;
//! - workflows: every queued run ends `succeeded` and Gmail holds exactly one
//!   sent message per run (its Message-ID is `<run-{id}.0@mailwright>`);
//! - two processes sharing one database split the work, and when one dies
//!   for good the other finishes everything, still exactly once;
//! - with a fifth of Gmail's calls failing at random (429 with Retry-After,
//!   500, 503, connections dropped before a call, and writes applied whose
//!   answer is lost), everything is still drafted and sent exactly once.
//!
//! The kills and the chaos follow a seeded random schedule; the seed is
//! printed at the start of each test and `MAILWRIGHT_RELIABILITY_SEED=<seed>`
//! replays the schedule (the processes' own timing still varies from run to
//! run, and with it which call each failure strikes).

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::google::ANN;
use common::kills::{KillHarness, KillSettings, QueuedRun, quiet_window};
use common::process::{SaveLogOnPanic, ServeProcess};
use sandbox::{Chaos, ChaosReport, Delivered, InboundMessage};

/// `MAILWRIGHT_JOB_LEASE_SECONDS`: a killed process's job is taken over
/// this long after it was claimed.
const JOB_LEASE: Duration = Duration::from_secs(3);
/// `MAILWRIGHT_RETRY_BASE_MILLIS`: the first retry delay.
const RETRY_BASE_MILLIS: u64 = 200;
/// How long the last process has to finish everything, once the kills are
/// over (with the configured lease; a longer effective lease is added).
const FINISH_DEADLINE: Duration = Duration::from_secs(90);
/// How many times the drafting and sending tests kill the process.
const KILLS: usize = 6;
/// A kill comes this many milliseconds after the process was ready.
const KILL_DELAY_MILLIS: std::ops::RangeInclusive<u64> = 50..=700;
/// Where the workflow's email goes: no sandbox mailbox, an outside address.
const CUSTOMER: &str = "orders@customer.example";
const WORKSPACE: &str = "Reliability";
const SEED_VAR: &str = "MAILWRIGHT_RELIABILITY_SEED";
/// The chance that chaos fails a Gmail call.
const CHAOS_PROBABILITY: f64 = 0.2;
/// Messages delivered and runs queued under chaos, at the least.
const CHAOS_WORK: usize = 32;
/// More of each when the work so far did not meet every kind of failure.
const CHAOS_TOP_UP: usize = 8;
/// How many top-ups the chaos test may make.
const CHAOS_TOP_UPS: usize = 5;
/// At least this many failures injected in all.
const CHAOS_MIN_FAILURES: u64 = 20;

/// The shared kill harness, with Gmail's sandbox.
struct Harness(KillHarness);

impl std::ops::Deref for Harness {
    type Target = KillHarness;

    fn deref(&self) -> &KillHarness {
        &self.0
    }
}

impl std::ops::DerefMut for Harness {
    fn deref_mut(&mut self) -> &mut KillHarness {
        &mut self.0
    }
}

impl Harness {
    async fn new(test: &'static str) -> Harness {
        let settings = KillSettings {
            test,
            seed_var: SEED_VAR,
            workspace: WORKSPACE,
            job_lease: JOB_LEASE,
            retry_base_millis: RETRY_BASE_MILLIS,
            finish_deadline: FINISH_DEADLINE,
        };
        Harness(
            KillHarness::new(settings, |_, env, sandbox_url| {
                env.with_google_sandbox(sandbox_url)
            })
            .await,
        )
    }

    /// Connect Ann's Gmail through `process`, consenting in the sandbox.
    async fn connect_gmail(&self, process: &ServeProcess) -> String {
        process
            .connect_gmail(&self.sandbox, &self.client, &self.key)
            .await
    }

    async fn enable_autodraft(&self, process: &ServeProcess, integration: &str) {
        process
            .enable_autodraft(&self.client, &self.key, integration)
            .await;
    }

    /// Message number `n` of the test, from its own outside sender, in
    /// Ann's inbox.
    fn deliver(&self, n: usize) -> Delivered {
        let message = InboundMessage::new(
            format!("Client {n} <client{n}@company{n}.example>"),
            ANN,
            format!("Proposal {n}: can we meet?"),
            format!(
                "Hi Ann,\n\nCould we meet on Tuesday to go over proposal {n}?\n\nThanks,\nClient {n}"
            ),
        );
        self.sandbox
            .deliver(&message)
            .expect("the sandbox takes the message")
            .into_iter()
            .find(|delivered| delivered.email == ANN)
            .expect("delivered to Ann")
    }

    /// Make the next `times` answers of `method` come `stall` after Gmail
    /// took the request, so that a kill is likely to land between Gmail's
    /// accept and the process recording it.
    fn stall_answers(&mut self, method: &str, times: u32) {
        let stall = Duration::from_millis(self.rng.u64(100..=400));
        self.sandbox.clear_faults();
        self.sandbox.stall_answer_after_commit(method, stall, times);
    }

    fn kill_delay(&mut self) -> Duration {
        Duration::from_millis(self.rng.u64(KILL_DELAY_MILLIS))
    }

    /// The drafts in Ann's mailbox, by thread.
    fn drafts_by_thread(&self) -> BTreeMap<String, Vec<sandbox::DraftView>> {
        let mut by_thread: BTreeMap<String, Vec<sandbox::DraftView>> = BTreeMap::new();
        for draft in self.sandbox.drafts(ANN).unwrap() {
            by_thread
                .entry(draft.message.thread_id.clone())
                .or_default()
                .push(draft);
        }
        by_thread
    }

    /// Whether auto-draft is finished with `delivered`: as many drafts in
    /// Gmail as messages, and the API counting as many and nothing pending.
    async fn drafting_finished(
        &self,
        process: &ServeProcess,
        integration: &str,
        delivered: &[Delivered],
    ) -> Result<(), String> {
        let in_gmail = self.sandbox.drafts(ANN).unwrap().len();
        let state = self
            .get(
                process,
                &format!("/api/integrations/{integration}/auto-draft"),
            )
            .await;
        let stats = &state["stats"];
        let finished = in_gmail >= delivered.len()
            && stats["drafts_created"].as_u64() >= Some(delivered.len() as u64)
            && stats["pending"] == 0;
        if finished {
            Ok(())
        } else {
            Err(format!(
                "{} messages delivered, {in_gmail} drafts in Gmail, stats {stats}",
                delivered.len()
            ))
        }
    }

    /// Every delivered message has exactly one draft, in its own thread,
    /// naming it; no other drafts; the API counts each once, none failed.
    async fn assert_exactly_one_draft_per_message(
        &self,
        process: &ServeProcess,
        integration: &str,
        delivered: &[Delivered],
    ) {
        let by_thread = self.drafts_by_thread();
        let mut problems = Vec::new();
        for message in delivered {
            match by_thread.get(&message.thread_id).map(Vec::as_slice) {
                None | Some([]) => problems.push(format!("message {} has no draft", message.id)),
                Some([draft]) => {
                    let source = format!("X-Mailwright-Source: {}", message.id);
                    if !draft.message.raw.contains(&source) {
                        problems.push(format!(
                            "the draft {} in the thread of {} does not name it",
                            draft.draft_id, message.id
                        ));
                    }
                }
                Some(drafts) => problems.push(format!(
                    "message {} has {} drafts: {:?}",
                    message.id,
                    drafts.len(),
                    drafts.iter().map(|d| &d.draft_id).collect::<Vec<_>>()
                )),
            }
        }
        let threads: Vec<&String> = delivered.iter().map(|m| &m.thread_id).collect();
        for (thread, drafts) in &by_thread {
            if !threads.contains(&thread) {
                problems.push(format!(
                    "{} draft(s) in thread {thread}, which no delivered message started",
                    drafts.len()
                ));
            }
        }
        let total: usize = by_thread.values().map(Vec::len).sum();
        assert!(
            problems.is_empty() && total == delivered.len(),
            "{} messages, {total} drafts in Gmail:\n{}",
            delivered.len(),
            problems.join("\n")
        );

        let ids: Vec<&str> = delivered.iter().map(|m| m.id.as_str()).collect();
        self.assert_the_api_counts_each_draft_once(process, integration, &ids)
            .await;
    }

    /// Whether every run has ended (succeeded or failed), and Gmail has sent
    /// at least one message per run.
    async fn runs_finished(
        &self,
        process: &ServeProcess,
        runs: &[QueuedRun],
    ) -> Result<(), String> {
        let sent = self.sandbox.sent_count(ANN).unwrap();
        if sent < runs.len() {
            return Err(format!("{} runs queued, {sent} messages sent", runs.len()));
        }
        for run in runs {
            let answer = self.get(process, &format!("/api/runs/{}", run.id)).await;
            if answer["status"] != "succeeded" && answer["status"] != "failed" {
                return Err(format!(
                    "{sent} messages sent for {} runs; run {} is {}",
                    runs.len(),
                    run.id,
                    answer["status"]
                ));
            }
        }
        Ok(())
    }

    /// Every run succeeded, and Gmail holds exactly one sent message for
    /// each (by its Message-ID), with that run's subject, and no other.
    async fn assert_exactly_one_sent_message_per_run(
        &self,
        process: &ServeProcess,
        runs: &[QueuedRun],
    ) {
        let mut not_succeeded = Vec::new();
        for run in runs {
            let answer = self.get(process, &format!("/api/runs/{}", run.id)).await;
            if answer["status"] != "succeeded" {
                not_succeeded.push(answer);
            }
        }
        assert!(
            not_succeeded.is_empty(),
            "{} of {} runs did not succeed: {not_succeeded:#?}",
            not_succeeded.len(),
            runs.len()
        );

        let sent = self.sandbox.sent_messages(ANN).unwrap();
        let mut by_message_id: BTreeMap<String, Vec<&sandbox::MessageView>> = BTreeMap::new();
        for message in &sent {
            let id = message
                .message_id
                .as_deref()
                .unwrap_or_default()
                .trim_matches(['<', '>'])
                .to_owned();
            by_message_id.entry(id).or_default().push(message);
        }
        let mut problems = Vec::new();
        for run in runs {
            let message_id = format!("run-{}.0@mailwright", run.id);
            match by_message_id.get(&message_id).map(Vec::as_slice) {
                None | Some([]) => problems.push(format!("run {} sent nothing", run.id)),
                Some([message]) => {
                    if message.subject != run.subject {
                        problems.push(format!(
                            "run {} sent {:?}, expected {:?}",
                            run.id, message.subject, run.subject
                        ));
                    }
                }
                Some(messages) => problems.push(format!(
                    "run {} sent {} messages: {:?}",
                    run.id,
                    messages.len(),
                    messages.iter().map(|m| &m.id).collect::<Vec<_>>()
                )),
            }
        }
        assert!(
            problems.is_empty() && sent.len() == runs.len(),
            "{} runs, {} messages sent:\n{}",
            runs.len(),
            sent.len(),
            problems.join("\n")
        );
    }

    /// How many runs `process` ended and messages it drafted so far.
    async fn work_done_by(&self, process: &ServeProcess) -> WorkDone {
        let metrics = self
            .client
            .get(process.url("/metrics"))
            .send()
            .await
            .unwrap_or_else(|error| panic!("GET /metrics from {}: {error}", process.name))
            .text()
            .await
            .unwrap();
        WorkDone {
            runs: metric_sum(
                &metrics,
                "mailwright_workflow_runs_total",
                "outcome=\"succeeded\"",
            ),
            drafts: metric_sum(
                &metrics,
                "mailwright_autodraft_messages_total",
                "outcome=\"drafted\"",
            ),
        }
    }

    /// Watch Gmail for `window` after the work is done: nothing more is
    /// drafted or sent (a job left behind by a killed process would show up
    /// once its lease expired).
    async fn assert_nothing_more_happens(&self, window: Duration) {
        let drafts = self.sandbox.drafts(ANN).unwrap().len();
        let sent = self.sandbox.sent_count(ANN).unwrap();
        let until = Instant::now() + window;
        while Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(200)).await;
            assert_eq!(
                (
                    self.sandbox.drafts(ANN).unwrap().len(),
                    self.sandbox.sent_count(ANN).unwrap()
                ),
                (drafts, sent),
                "(drafts, sent) changed after the work was done"
            );
        }
    }
}

/// What one process did, from its own `/metrics`.
struct WorkDone {
    /// Runs it ended (`mailwright_workflow_runs_total`).
    runs: u64,
    /// Messages it drafted (`mailwright_autodraft_messages_total`, drafted).
    drafts: u64,
}

/// The sum of the samples of `metric` whose labels contain `label`.
fn metric_sum(metrics: &str, metric: &str, label: &str) -> u64 {
    metrics
        .lines()
        .filter(|line| {
            line.strip_prefix(metric)
                .is_some_and(|rest| rest.starts_with('{') && rest.contains(label))
        })
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

/// Lines of all the processes that say a retry found Gmail's effect of an
/// earlier, killed attempt and recorded it instead of repeating it.
fn recoveries(processes: &[Vec<String>]) -> (usize, usize) {
    let lines = processes.iter().flatten();
    let mut adopted_drafts = 0;
    let mut found_sends = 0;
    for line in lines {
        if line.contains("\"how\":\"adopted\"") {
            adopted_drafts += 1;
        }
        if line.contains("found the message of an earlier attempt") {
            found_sends += 1;
        }
    }
    (adopted_drafts, found_sends)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_while_drafting_leaves_exactly_one_draft_per_message() {
    let mut h = Harness::new("kill_9_while_drafting_leaves_exactly_one_draft_per_message").await;
    let mut serve = h.start("serve#0").await;
    let (lease, deadline) = h.lease_and_deadline(&serve);
    let integration = h.connect_gmail(&serve).await;
    h.enable_autodraft(&serve, &integration).await;

    let mut delivered: Vec<Delivered> = (0..10).map(|n| h.deliver(n)).collect();
    let mut logs = Vec::new();
    for kill in 1..=KILLS {
        h.stall_answers("drafts.create", 2);
        let delay = h.kill_delay();
        let kill_at = Instant::now() + delay;
        // Three more messages at random moments before the kill.
        let mut to_deliver = 3;
        while Instant::now() < kill_at {
            if to_deliver > 0 && h.rng.u8(..4) == 0 {
                delivered.push(h.deliver(delivered.len()));
                to_deliver -= 1;
            }
            let until_kill = kill_at.saturating_duration_since(Instant::now());
            tokio::time::sleep(until_kill.min(Duration::from_millis(10))).await;
        }
        for _ in 0..to_deliver {
            delivered.push(h.deliver(delivered.len()));
        }
        serve.kill_9();
        h.say(format_args!(
            "kill -9 #{kill} of {} {delay:?} after ready: {} messages delivered, {} drafts in Gmail",
            serve.name,
            delivered.len(),
            h.sandbox.drafts(ANN).unwrap().len()
        ));
        logs.push(serve.lines());
        serve = h.start(&format!("serve#{kill}")).await;
    }
    // A last few after the last restart: the clean run drafts them too.
    while delivered.len() < 34 {
        delivered.push(h.deliver(delivered.len()));
    }

    h.wait_for("auto-draft finished", deadline, &serve, || {
        h.drafting_finished(&serve, &integration, &delivered)
    })
    .await;
    h.assert_nothing_more_happens(quiet_window(lease)).await;
    h.assert_exactly_one_draft_per_message(&serve, &integration, &delivered)
        .await;
    logs.push(serve.lines());
    let (adopted, _) = recoveries(&logs);
    h.say(format_args!(
        "{} messages, {} drafts, {KILLS} kills; {adopted} draft(s) of killed attempts adopted",
        delivered.len(),
        delivered.len()
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_while_sending_leaves_exactly_one_sent_message_per_run() {
    let mut h = Harness::new("kill_9_while_sending_leaves_exactly_one_sent_message_per_run").await;
    let mut serve = h.start("serve#0").await;
    let (lease, deadline) = h.lease_and_deadline(&serve);
    let integration = h.connect_gmail(&serve).await;
    let workflow = h.create_send_workflow(&serve, &integration, CUSTOMER).await;

    let mut runs = Vec::new();
    for n in 0..10 {
        runs.push(h.queue_run(&serve, &workflow, n).await);
    }
    let mut logs = Vec::new();
    for kill in 1..=KILLS {
        h.stall_answers("messages.send", 2);
        let delay = h.kill_delay();
        let kill_at = Instant::now() + delay;
        // Four more runs at random moments before the kill.
        let mut to_queue = 4;
        while Instant::now() < kill_at {
            if to_queue > 0 && h.rng.u8(..4) == 0 {
                runs.push(h.queue_run(&serve, &workflow, runs.len()).await);
                to_queue -= 1;
            }
            let until_kill = kill_at.saturating_duration_since(Instant::now());
            tokio::time::sleep(until_kill.min(Duration::from_millis(10))).await;
        }
        for _ in 0..to_queue {
            runs.push(h.queue_run(&serve, &workflow, runs.len()).await);
        }
        serve.kill_9();
        h.say(format_args!(
            "kill -9 #{kill} of {} {delay:?} after ready: {} runs queued, {} messages sent",
            serve.name,
            runs.len(),
            h.sandbox.sent_count(ANN).unwrap()
        ));
        logs.push(serve.lines());
        serve = h.start(&format!("serve#{kill}")).await;
    }
    while runs.len() < 38 {
        runs.push(h.queue_run(&serve, &workflow, runs.len()).await);
    }

    h.wait_for("every run ended", deadline, &serve, || {
        h.runs_finished(&serve, &runs)
    })
    .await;
    h.assert_nothing_more_happens(quiet_window(lease)).await;
    h.assert_exactly_one_sent_message_per_run(&serve, &runs)
        .await;
    logs.push(serve.lines());
    let (_, found) = recoveries(&logs);
    h.say(format_args!(
        "{} runs, {} messages sent, {KILLS} kills; {found} send(s) of killed attempts found instead of repeated",
        runs.len(),
        h.sandbox.sent_count(ANN).unwrap()
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_share_the_work_and_one_dying_loses_nothing() {
    let mut h = Harness::new("two_processes_share_the_work_and_one_dying_loses_nothing").await;
    let mut first = h.start("serve-A").await;
    let mut second = h.start("serve-B").await;
    let (lease, deadline) = h.lease_and_deadline(&first);
    let integration = h.connect_gmail(&first).await;
    h.enable_autodraft(&first, &integration).await;
    let workflow = h.create_send_workflow(&first, &integration, CUSTOMER).await;

    // 26 runs and 18 messages in a random order, the runs queued on both
    // processes in turn; after a random part of it, a burst of 4 runs on
    // the one that dies and 2 messages, Gmail holding back its answers, and
    // the kill while that burst is in flight. The rest goes to the survivor.
    let mut work: Vec<bool> = std::iter::repeat_n(true, 26)
        .chain(std::iter::repeat_n(false, 18))
        .collect();
    h.rng.shuffle(&mut work);
    let kill_after = h.rng.usize(12..32);
    let first_dies = h.rng.bool();

    let mut runs = Vec::new();
    let mut delivered = Vec::new();
    let mut victim_work = None;
    for (step, is_run) in work.into_iter().enumerate() {
        if is_run {
            let on_first = match victim_work {
                None => runs.len() % 2 == 0,
                Some(_) => !first_dies,
            };
            let process = if on_first { &first } else { &second };
            runs.push(h.queue_run(process, &workflow, runs.len()).await);
        } else {
            delivered.push(h.deliver(delivered.len()));
        }
        tokio::time::sleep(Duration::from_millis(h.rng.u64(0..=80))).await;
        if step != kill_after {
            continue;
        }
        let victim = if first_dies { &mut first } else { &mut second };
        // Held back longer than the kill comes: the kill lands between
        // Gmail's accept and the victim recording it.
        let stall = Duration::from_millis(h.rng.u64(800..=1500));
        h.sandbox.clear_faults();
        h.sandbox
            .stall_answer_after_commit("messages.send", stall, 2);
        h.sandbox
            .stall_answer_after_commit("drafts.create", stall, 2);
        for _ in 0..4 {
            runs.push(h.queue_run(victim, &workflow, runs.len()).await);
        }
        for _ in 0..2 {
            delivered.push(h.deliver(delivered.len()));
        }
        let delay = Duration::from_millis(h.rng.u64(50..=350));
        tokio::time::sleep(delay).await;
        let done = h.work_done_by(victim).await;
        victim.kill_9();
        h.say(format_args!(
            "kill -9 of {} for good, {delay:?} after a burst: {} runs and {} messages so far, \
             {} sent and {} drafts in Gmail; it had ended {} runs and drafted {} messages",
            victim.name,
            runs.len(),
            delivered.len(),
            h.sandbox.sent_count(ANN).unwrap(),
            h.sandbox.drafts(ANN).unwrap().len(),
            done.runs,
            done.drafts
        ));
        victim_work = Some(done);
    }
    let (victim, survivor) = if first_dies {
        (&mut first, &mut second)
    } else {
        (&mut second, &mut first)
    };
    assert!(!victim.is_running(), "{} stays dead", victim.name);

    h.wait_for(
        "the survivor finished every run",
        deadline,
        survivor,
        || h.runs_finished(survivor, &runs),
    )
    .await;
    h.wait_for(
        "the survivor finished auto-draft",
        deadline,
        survivor,
        || h.drafting_finished(survivor, &integration, &delivered),
    )
    .await;
    h.assert_nothing_more_happens(quiet_window(lease)).await;
    assert!(survivor.is_running(), "{} is still running", survivor.name);
    h.assert_exactly_one_sent_message_per_run(survivor, &runs)
        .await;
    h.assert_exactly_one_draft_per_message(survivor, &integration, &delivered)
        .await;

    // Both did a share of the work.
    let victim_work = victim_work.expect("the kill happened");
    let survivor_work = h.work_done_by(survivor).await;
    assert!(
        victim_work.runs + victim_work.drafts > 0,
        "{} had done nothing before it died",
        victim.name
    );
    assert!(
        survivor_work.runs + survivor_work.drafts > 0,
        "{} did nothing",
        survivor.name
    );
    let (adopted, found) = recoveries(&[victim.lines(), survivor.lines()]);
    h.say(format_args!(
        "{} runs and {} messages done exactly once: {} ended {} runs and drafted {} messages, \
         then died; {} ended {} runs and drafted {} messages; \
         {adopted} draft(s) adopted, {found} send(s) found instead of repeated",
        runs.len(),
        delivered.len(),
        victim.name,
        victim_work.runs,
        victim_work.drafts,
        survivor.name,
        survivor_work.runs,
        survivor_work.drafts,
    ));
}

/// Whether `report` has every kind of failure, and enough of them.
fn chaos_complete(report: &ChaosReport) -> bool {
    let kinds = [
        report.rate_limited,
        report.backend_error,
        report.unavailable,
        report.dropped_before,
        report.dropped_after_write,
    ];
    kinds.iter().all(|&n| n >= 1) && report.total() >= CHAOS_MIN_FAILURES
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fifth_of_gmail_calls_failing_loses_and_duplicates_nothing() {
    let mut h = Harness::new("a_fifth_of_gmail_calls_failing_loses_and_duplicates_nothing").await;
    let serve = h.start("serve#0").await;
    let _log = SaveLogOnPanic {
        process: &serve,
        path: std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("reliability-chaos-{}.log", h.seed)),
    };
    let (lease, deadline) = h.lease_and_deadline(&serve);
    // Set up before the chaos: connecting and switching on are not struck.
    let integration = h.connect_gmail(&serve).await;
    h.enable_autodraft(&serve, &integration).await;
    let workflow = h.create_send_workflow(&serve, &integration, CUSTOMER).await;

    let chaos_seed = h.rng.u64(..);
    h.sandbox
        .set_chaos(Chaos::new(CHAOS_PROBABILITY, chaos_seed))
        .expect("valid chaos");
    h.say(format_args!(
        "chaos on: {CHAOS_PROBABILITY} of every Gmail call fails (chaos seed {chaos_seed}, \
         from {SEED_VAR}={})",
        h.seed
    ));

    // The work, messages and runs in a random order with short pauses;
    // once it is done, more of it while some kind of failure has not struck
    // yet (a write whose answer is lost is the rarest: 1 write in 25).
    let mut runs = Vec::new();
    let mut delivered = Vec::new();
    let mut batch = CHAOS_WORK;
    let mut top_ups = 0;
    loop {
        let mut work: Vec<bool> = std::iter::repeat_n(true, batch)
            .chain(std::iter::repeat_n(false, batch))
            .collect();
        h.rng.shuffle(&mut work);
        for is_run in work {
            if is_run {
                runs.push(h.queue_run(&serve, &workflow, runs.len()).await);
            } else {
                delivered.push(h.deliver(delivered.len()));
            }
            tokio::time::sleep(Duration::from_millis(h.rng.u64(0..=30))).await;
        }
        h.say(format_args!(
            "{} messages delivered and {} runs queued; chaos so far: {:?}",
            delivered.len(),
            runs.len(),
            h.sandbox.chaos_report()
        ));
        h.wait_for("every run ended", deadline, &serve, || {
            h.runs_finished(&serve, &runs)
        })
        .await;
        h.wait_for("auto-draft finished", deadline, &serve, || {
            h.drafting_finished(&serve, &integration, &delivered)
        })
        .await;
        let report = h.sandbox.chaos_report();
        if chaos_complete(&report) {
            break;
        }
        assert!(
            top_ups < CHAOS_TOP_UPS,
            "{} messages and {} runs did not meet every kind of failure, \
             or not {CHAOS_MIN_FAILURES} failures: {report:?}",
            delivered.len(),
            runs.len()
        );
        top_ups += 1;
        batch = CHAOS_TOP_UP;
        h.say(format_args!(
            "top-up {top_ups}: {CHAOS_TOP_UP} more of each, as chaos has not struck every way yet: {report:?}"
        ));
    }

    // Still under chaos: nothing late shows up (a retry of work already
    // done would).
    h.assert_nothing_more_happens(quiet_window(lease)).await;
    h.sandbox.clear_chaos();
    let report = h.sandbox.chaos_report();
    h.assert_exactly_one_sent_message_per_run(&serve, &runs)
        .await;
    h.assert_exactly_one_draft_per_message(&serve, &integration, &delivered)
        .await;
    assert!(chaos_complete(&report), "{report:?}");
    assert!(
        serve.lines().iter().all(|line| !line.contains("panicked")),
        "the process panicked:\n{}",
        serve.tail(60)
    );
    let (adopted, found) = recoveries(&[serve.lines()]);
    h.say(format_args!(
        "{} messages and {} runs done exactly once through {} injected failures {report:?} \
         ({top_ups} top-up(s)); {adopted} draft(s) adopted, {found} send(s) found instead of repeated",
        delivered.len(),
        runs.len(),
        report.total(),
    ));
}
