//! Exactly once on Outlook (Microsoft 365 through Microsoft Graph), through
//! kill -9: the real `mailwright serve` binary runs as a child process
//! against one database while the sandbox's Microsoft identity platform and
//! Graph run in this test process (so the mailbox outlives every kill). The
//! process is killed with SIGKILL several times, half of the kills at a
//! random moment and half while Graph has done the work (made the reply
//! draft, sent the message) and is holding back its answer
//! ([`GraphFault::held_answer`]), and started again.
//!
//! What the tests prove, by looking in the emulated mailboxes themselves:
//!
//! - auto-draft: every delivered message ends with exactly one reply draft
//!   in Drafts, in its own conversation and marked as answering it, and the
//!   auto-draft API counts each once and none as failed;
//! - workflows: every run of a `gmail.send_email` step on the Outlook
//!   connection ends `succeeded`, with exactly one copy in Sent Items and
//!   one in the recipient's inbox; a run may end `send_unconfirmed` only
//!   when Graph never took its send (its draft, marked as being sent, is
//!   still in Drafts and nothing went out).
//!
//! The kills follow a seeded random schedule; the seed is printed at the
//! start of each test and `MAILWRIGHT_OUTLOOK_RELIABILITY_SEED=<seed>`
//! replays it (the process's own timing still varies from run to run).
//! Mail is found by polling every second; the test does not depend on
//! Graph's change notifications reaching the process.

mod common;

use std::collections::BTreeMap;
use std::ops::RangeInclusive;
use std::time::{Duration, Instant};

use common::google::ANN_OUTLOOK;
use common::kills::{KillHarness, KillSettings, QueuedRun, quiet_window};
use common::process::{SaveLogOnPanic, ServeProcess};
use providers::microsoft::graph::{MARKER_PROPERTY, SENDING_PROPERTY, SOURCE_PROPERTY};
use sandbox::{GraphFault, MicrosoftDelivered, MicrosoftInbound, MicrosoftMessageView};

/// `MAILWRIGHT_JOB_LEASE_SECONDS`: a killed process's job is taken over
/// this long after it was claimed.
const JOB_LEASE: Duration = Duration::from_secs(3);
/// `MAILWRIGHT_RETRY_BASE_MILLIS`: the first retry delay.
const RETRY_BASE_MILLIS: u64 = 200;
/// How long the last process has to finish everything, once the kills are
/// over (with the configured lease; a longer effective lease is added).
const FINISH_DEADLINE: Duration = Duration::from_secs(60);
/// How many times each test kills the process (half of them while Graph
/// holds back an answer).
const KILLS: usize = 4;
/// A kill at a random moment comes this many milliseconds after the
/// process was ready (the poll runs every second).
const KILL_DELAY_MILLIS: RangeInclusive<u64> = 50..=1500;
/// How long Graph holds back its answer after doing the work.
const HOLD_MILLIS: RangeInclusive<u64> = 400..=900;
/// How long a kill meant for a held answer waits for one to begin.
const HELD_DEADLINE: Duration = Duration::from_secs(20);
/// Where the workflow's email goes: a second mailbox of the sandbox.
const DAVE: &str = "dave@fabrikam.example";
const WORKSPACE: &str = "OutlookReliability";
const SEED_VAR: &str = "MAILWRIGHT_OUTLOOK_RELIABILITY_SEED";
/// The Graph calls whose answers are held: making a reply draft, sending.
const CREATE_REPLY: &str = "/createReply";
const SEND: &str = "/send";

/// When a kill comes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum KillAt {
    /// At a random moment after the process was ready.
    Random,
    /// Shortly after Graph began to hold back an answer: the work is done
    /// in the mailbox, the process never hears of it.
    HeldAnswer,
}

/// What a test gives the process to do between kills.
enum Work<'a> {
    /// A message into Ann's inbox.
    Deliver,
    /// A run of `workflow`, queued through the process.
    Run { workflow: &'a str },
}

/// The shared kill harness, with Microsoft's sandbox, and the work handed
/// out so far.
struct Harness {
    base: KillHarness,
    delivered: Vec<MicrosoftDelivered>,
    runs: Vec<QueuedRun>,
    /// Every line of the processes killed so far, by name.
    killed: Vec<(String, Vec<String>)>,
}

impl std::ops::Deref for Harness {
    type Target = KillHarness;

    fn deref(&self) -> &KillHarness {
        &self.base
    }
}

impl std::ops::DerefMut for Harness {
    fn deref_mut(&mut self) -> &mut KillHarness {
        &mut self.base
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
        let base = KillHarness::new(settings, |sandbox, env, sandbox_url| {
            let microsoft = sandbox.microsoft();
            microsoft.create_account(ANN_OUTLOOK, "Ann Example");
            microsoft.create_account(DAVE, "Dave Example");
            env.with_microsoft_sandbox(sandbox_url)
        })
        .await;
        Harness {
            base,
            delivered: Vec::new(),
            runs: Vec::new(),
            killed: Vec::new(),
        }
    }

    /// Half the kills at random moments, half while an answer is held, in
    /// a random order.
    fn kill_plan(&mut self) -> Vec<KillAt> {
        let mut plan: Vec<KillAt> = (0..KILLS)
            .map(|n| {
                if n % 2 == 0 {
                    KillAt::HeldAnswer
                } else {
                    KillAt::Random
                }
            })
            .collect();
        self.rng.shuffle(&mut plan);
        plan
    }

    fn ms(&self, email: &str, folder: &str) -> Vec<MicrosoftMessageView> {
        self.sandbox.microsoft().messages(email, folder)
    }

    /// Answers Graph has begun to hold back so far.
    fn held(&self) -> u64 {
        self.sandbox.microsoft().call_count("graph.held")
    }

    /// Message number `n` of the test, from its own outside sender, into
    /// Ann's Outlook inbox.
    fn deliver(&self, n: usize) -> MicrosoftDelivered {
        let mut inbound = MicrosoftInbound::new(
            &format!("client{n}@company{n}.example"),
            ANN_OUTLOOK,
            &format!("Proposal {n}: can we meet?"),
            &format!(
                "Hi Ann,\n\nCould we meet on Tuesday to go over proposal {n}?\n\nThanks,\nClient {n}"
            ),
        );
        inbound.from_name = Some(format!("Client {n}"));
        self.sandbox
            .microsoft()
            .deliver(inbound)
            .expect("the sandbox takes the message")
    }

    /// One more piece of `work`.
    async fn work_one(&mut self, process: &ServeProcess, work: &Work<'_>) {
        match work {
            Work::Deliver => {
                let delivered = self.deliver(self.delivered.len());
                self.delivered.push(delivered);
            }
            Work::Run { workflow } => {
                let run = self.queue_run(process, workflow, self.runs.len()).await;
                self.runs.push(run);
            }
        }
    }

    /// Kill number `kill`: Graph holds back the next two answers of calls
    /// on `held_path`; `items` pieces of `work` are handed out at random
    /// moments, and `serve` is killed as `at` says and started again. The
    /// pieces not handed out before the kill go to the new process.
    async fn kill_and_restart(
        &mut self,
        serve: &mut ServeProcess,
        kill: usize,
        at: KillAt,
        held_path: &str,
        work: &Work<'_>,
        items: usize,
    ) {
        let hold = Duration::from_millis(self.rng.u64(HOLD_MILLIS));
        let microsoft = self.sandbox.microsoft();
        microsoft.clear_graph_faults();
        microsoft.fail_graph_calls(GraphFault::held_answer(2, hold).on_path(held_path));
        let held_before = self.held();
        let armed = Instant::now();
        let mut kill_at = match at {
            KillAt::Random => Some(armed + Duration::from_millis(self.rng.u64(KILL_DELAY_MILLIS))),
            KillAt::HeldAnswer => None,
        };
        let mut to_do = items;
        let mut held_at = None;
        loop {
            let now = Instant::now();
            if kill_at.is_some_and(|at| now >= at) {
                break;
            }
            if kill_at.is_none() && self.held() > held_before {
                // Well within the hold: the answer is still on its way.
                let within = self.rng.u64(0..=hold.as_millis() as u64 / 3);
                held_at = Some(now);
                kill_at = Some(now + Duration::from_millis(within));
                continue;
            }
            assert!(
                kill_at.is_some() || now < armed + HELD_DEADLINE,
                "kill #{kill}: no answer of {held_path} held within {HELD_DEADLINE:?} \
                 ({to_do} of {items} pieces of work not handed out yet)\n--- last lines of {} ---\n{}",
                serve.name,
                serve.tail(60)
            );
            if to_do > 0 && self.rng.u8(..4) == 0 {
                self.work_one(serve, work).await;
                to_do -= 1;
            }
            let until_kill = kill_at.map_or(Duration::from_millis(10), |at| {
                at.saturating_duration_since(Instant::now())
            });
            tokio::time::sleep(until_kill.min(Duration::from_millis(10))).await;
        }
        serve.kill_9();
        let when = match held_at {
            Some(held_at) => format!(
                "{:?} into a {hold:?} hold of {held_path}",
                held_at.elapsed()
            ),
            None => format!("{:?} after the kill was planned", armed.elapsed()),
        };
        self.say(format_args!(
            "kill -9 #{kill} of {} ({at:?}, {when}): {} messages delivered, {} runs queued; \
             {} drafts, {} in Sent Items",
            serve.name,
            self.delivered.len(),
            self.runs.len(),
            self.ms(ANN_OUTLOOK, "drafts").len(),
            self.ms(ANN_OUTLOOK, "sentitems").len(),
        ));
        self.killed.push((serve.name.clone(), serve.lines()));
        *serve = self.start(&format!("serve#{kill}")).await;
        for _ in 0..to_do {
            self.work_one(serve, work).await;
        }
    }

    /// Whether auto-draft is finished with every delivered message: the API
    /// has nothing pending and has dealt with as many as were delivered.
    async fn drafting_finished(
        &self,
        process: &ServeProcess,
        integration: &str,
    ) -> Result<(), String> {
        let state = self
            .get(
                process,
                &format!("/api/integrations/{integration}/auto-draft"),
            )
            .await;
        let stats = &state["stats"];
        let count = |name: &str| stats[name].as_u64().unwrap_or(0);
        let dealt_with = count("drafts_created") + count("skipped") + count("failed");
        if stats["pending"] == 0 && dealt_with >= self.delivered.len() as u64 {
            Ok(())
        } else {
            Err(format!(
                "{} messages delivered, {} drafts in Outlook, stats {stats}",
                self.delivered.len(),
                self.ms(ANN_OUTLOOK, "drafts").len()
            ))
        }
    }

    /// Every delivered message has exactly one reply draft in Drafts, in
    /// its conversation, answering it and marked with it; no other drafts;
    /// the API counts each once, none failed, and lists exactly those
    /// drafts.
    async fn assert_exactly_one_draft_per_message(
        &self,
        process: &ServeProcess,
        integration: &str,
    ) {
        let drafts = self.ms(ANN_OUTLOOK, "drafts");
        let mut by_conversation: BTreeMap<&str, Vec<&MicrosoftMessageView>> = BTreeMap::new();
        for draft in &drafts {
            by_conversation
                .entry(draft.conversation_id.as_str())
                .or_default()
                .push(draft);
        }
        let mut problems = Vec::new();
        for message in &self.delivered {
            match by_conversation
                .get(message.conversation_id.as_str())
                .map(Vec::as_slice)
            {
                None | Some([]) => problems.push(format!("message {} has no draft", message.id)),
                Some([draft]) => {
                    if property(draft, SOURCE_PROPERTY) != Some(message.id.as_str()) {
                        problems.push(format!(
                            "the draft {} in the conversation of {} is not marked as answering it: {:?}",
                            draft.id, message.id, draft.extended_properties
                        ));
                    }
                    if draft.in_reply_to.as_deref() != Some(message.internet_message_id.as_str()) {
                        problems.push(format!(
                            "the draft {} answers {:?}, not {}",
                            draft.id, draft.in_reply_to, message.internet_message_id
                        ));
                    }
                }
                Some(drafts) => problems.push(format!(
                    "message {} has {} drafts: {:?}",
                    message.id,
                    drafts.len(),
                    drafts
                        .iter()
                        .map(|d| (&d.id, property(d, SOURCE_PROPERTY)))
                        .collect::<Vec<_>>()
                )),
            }
        }
        for (conversation, drafts) in &by_conversation {
            if !self
                .delivered
                .iter()
                .any(|m| m.conversation_id == *conversation)
            {
                problems.push(format!(
                    "{} draft(s) in conversation {conversation}, which no delivered message started",
                    drafts.len()
                ));
            }
        }
        assert!(
            problems.is_empty() && drafts.len() == self.delivered.len(),
            "{} messages, {} drafts in Outlook:\n{}",
            self.delivered.len(),
            drafts.len(),
            problems.join("\n")
        );

        let ids: Vec<&str> = self.delivered.iter().map(|m| m.id.as_str()).collect();
        let listed = self
            .assert_the_api_counts_each_draft_once(process, integration, &ids)
            .await;
        // The drafts recorded are the ones in Outlook (an adopted draft is
        // recorded under its own id, not a second one's).
        let mut recorded: Vec<&str> = listed
            .iter()
            .map(|draft| draft["provider_draft_id"].as_str().unwrap())
            .collect();
        recorded.sort_unstable();
        let mut in_outlook: Vec<&str> = drafts.iter().map(|d| d.id.as_str()).collect();
        in_outlook.sort_unstable();
        assert_eq!(recorded, in_outlook, "the drafts recorded are Outlook's");
    }

    /// Whether every run has ended (succeeded or failed).
    async fn runs_finished(&self, process: &ServeProcess) -> Result<(), String> {
        for run in &self.runs {
            let answer = self.get(process, &format!("/api/runs/{}", run.id)).await;
            if answer["status"] != "succeeded" && answer["status"] != "failed" {
                return Err(format!(
                    "{} runs queued, {} in Sent Items; run {} is {}",
                    self.runs.len(),
                    self.ms(ANN_OUTLOOK, "sentitems").len(),
                    run.id,
                    answer["status"]
                ));
            }
        }
        Ok(())
    }

    /// Every run succeeded with exactly one message in Ann's Sent Items
    /// (found by its marker, Mailwright's Message-ID `<run-{id}.0@mailwright>`)
    /// and one in Dave's inbox; or it failed `send_unconfirmed` and nothing
    /// went out: its one draft, marked as being sent, is still in Drafts.
    /// Nothing else was sent or left in Drafts. The runs that ended
    /// `send_unconfirmed`.
    async fn assert_exactly_one_message_per_run(&self, process: &ServeProcess) -> usize {
        let sent = self.ms(ANN_OUTLOOK, "sentitems");
        let drafts = self.ms(ANN_OUTLOOK, "drafts");
        let received = self.ms(DAVE, "inbox");
        let marked = |messages: &[MicrosoftMessageView], run: &QueuedRun| -> usize {
            messages.iter().filter(|m| marks_run(m, run)).count()
        };
        let mut problems = Vec::new();
        let mut unconfirmed = 0;
        for run in &self.runs {
            let answer = self.get(process, &format!("/api/runs/{}", run.id)).await;
            let in_sent = marked(&sent, run);
            let in_drafts = marked(&drafts, run);
            let with_subject: Vec<&MicrosoftMessageView> = received
                .iter()
                .filter(|m| m.subject == run.subject)
                .collect();
            let step_error = &answer["steps"][0]["error"];
            let outcome = if answer["status"] == "succeeded" {
                (in_sent, with_subject.len(), in_drafts) == (1, 1, 0)
            } else if answer["status"] == "failed" && step_error["code"] == "send_unconfirmed" {
                unconfirmed += 1;
                let draft_marked_sending = drafts
                    .iter()
                    .any(|d| marks_run(d, run) && property(d, SENDING_PROPERTY) == Some("1"));
                (in_sent, with_subject.len(), in_drafts) == (0, 0, 1) && draft_marked_sending
            } else {
                false
            };
            if !outcome {
                problems.push(format!(
                    "run {} is {} ({step_error}): {in_sent} in Sent Items, {} in Dave's inbox \
                     with its subject, {in_drafts} in Drafts",
                    run.id,
                    answer["status"],
                    with_subject.len()
                ));
            }
            if let Some(message) = with_subject.first()
                && !message
                    .body
                    .contains(&format!("your order {} is on its way", run.order))
            {
                problems.push(format!(
                    "run {}: Dave's copy says {:?}",
                    run.id, message.body
                ));
            }
        }
        let confirmed = self.runs.len() - unconfirmed;
        assert!(
            problems.is_empty()
                && sent.len() == confirmed
                && received.len() == confirmed
                && drafts.len() == unconfirmed,
            "{} runs ({unconfirmed} send_unconfirmed): {} in Sent Items, {} in Dave's inbox, \
             {} in Drafts:\n{}",
            self.runs.len(),
            sent.len(),
            received.len(),
            drafts.len(),
            problems.join("\n")
        );
        unconfirmed
    }

    /// Watch the mailboxes for `window` after the work is done: nothing
    /// more is drafted or sent (a job left behind by a killed process
    /// would show up once its lease expired).
    async fn assert_nothing_more_happens(&self, window: Duration) {
        let counts = || {
            (
                self.ms(ANN_OUTLOOK, "drafts").len(),
                self.ms(ANN_OUTLOOK, "sentitems").len(),
                self.ms(DAVE, "inbox").len(),
            )
        };
        let before = counts();
        let until = Instant::now() + window;
        while Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(200)).await;
            assert_eq!(
                counts(),
                before,
                "(drafts, Sent Items, Dave's inbox) changed after the work was done"
            );
        }
    }
}

impl Drop for Harness {
    /// A failing test leaves the whole log of every killed process behind
    /// (the live one's is kept by [`SaveLogOnPanic`]).
    fn drop(&mut self) {
        if !std::thread::panicking() {
            return;
        }
        for (name, lines) in &self.killed {
            let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
                .join(format!("{}-{}-{name}.log", self.test, self.seed));
            match std::fs::write(&path, lines.join("\n") + "\n") {
                Ok(()) => eprintln!("the whole log of {name} is in {}", path.display()),
                Err(error) => eprintln!("could not write {}: {error}", path.display()),
            }
        }
    }
}

/// The value of `message`'s extended property `id` (named properties
/// compared as Graph does: the type and set in any case).
fn property<'a>(message: &'a MicrosoftMessageView, id: &str) -> Option<&'a str> {
    message
        .extended_properties
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(id))
        .map(|(_, value)| value.as_str())
}

/// Whether `message` carries the marker of `run`'s email: Mailwright's
/// Message-ID of it, `<run-{id}.0@mailwright>`.
fn marks_run(message: &MicrosoftMessageView, run: &QueuedRun) -> bool {
    property(message, MARKER_PROPERTY).is_some_and(|value| {
        value.trim_matches(['<', '>']) == format!("run-{}.0@mailwright", run.id)
    })
}

/// How many lines of the processes say a retry found Graph's effect of a
/// killed attempt and took it instead of repeating it.
fn recoveries(logs: &[(String, Vec<String>)], says: &[&str]) -> usize {
    logs.iter()
        .flat_map(|(_, lines)| lines)
        .filter(|line| says.iter().any(|said| line.contains(said)))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_while_drafting_leaves_exactly_one_outlook_draft_per_message() {
    let mut h =
        Harness::new("kill_9_while_drafting_leaves_exactly_one_outlook_draft_per_message").await;
    let mut serve = h.start("serve#0").await;
    let (lease, deadline) = h.lease_and_deadline(&serve);
    let integration = serve.connect_outlook(&h.sandbox, &h.client, &h.key).await;
    serve
        .enable_autodraft(&h.client, &h.key, &integration)
        .await;

    for _ in 0..6 {
        h.work_one(&serve, &Work::Deliver).await;
    }
    let plan = h.kill_plan();
    for (kill, at) in (1..=KILLS).zip(plan) {
        h.kill_and_restart(&mut serve, kill, at, CREATE_REPLY, &Work::Deliver, 3)
            .await;
    }
    h.sandbox.microsoft().clear_graph_faults();
    // A last few after the last restart: the clean run drafts them too.
    for _ in 0..3 {
        h.work_one(&serve, &Work::Deliver).await;
    }
    let _log = SaveLogOnPanic {
        process: &serve,
        path: std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("{}-{}-{}.log", h.test, h.seed, serve.name)),
    };

    h.wait_for("auto-draft finished", deadline, &serve, || {
        h.drafting_finished(&serve, &integration)
    })
    .await;
    h.assert_nothing_more_happens(quiet_window(lease)).await;
    h.assert_exactly_one_draft_per_message(&serve, &integration)
        .await;
    let mut logs = h.killed.clone();
    logs.push((serve.name.clone(), serve.lines()));
    let adopted = recoveries(
        &logs,
        &[
            "\"how\":\"adopted\"",
            "adopted a draft an earlier attempt made",
        ],
    );
    h.say(format_args!(
        "{} messages, one draft each, after {KILLS} kills; {} answers held, \
         {adopted} line(s) of drafts of killed attempts adopted",
        h.delivered.len(),
        h.held()
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_while_sending_leaves_exactly_one_outlook_message_per_run() {
    let mut h =
        Harness::new("kill_9_while_sending_leaves_exactly_one_outlook_message_per_run").await;
    let mut serve = h.start("serve#0").await;
    let (lease, deadline) = h.lease_and_deadline(&serve);
    let integration = serve.connect_outlook(&h.sandbox, &h.client, &h.key).await;
    let workflow = h.create_send_workflow(&serve, &integration, DAVE).await;
    let work = Work::Run {
        workflow: &workflow,
    };

    for _ in 0..6 {
        h.work_one(&serve, &work).await;
    }
    let plan = h.kill_plan();
    for (kill, at) in (1..=KILLS).zip(plan) {
        h.kill_and_restart(&mut serve, kill, at, SEND, &work, 4)
            .await;
    }
    h.sandbox.microsoft().clear_graph_faults();
    for _ in 0..4 {
        h.work_one(&serve, &work).await;
    }
    let _log = SaveLogOnPanic {
        process: &serve,
        path: std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("{}-{}-{}.log", h.test, h.seed, serve.name)),
    };

    h.wait_for("every run ended", deadline, &serve, || {
        h.runs_finished(&serve)
    })
    .await;
    h.assert_nothing_more_happens(quiet_window(lease)).await;
    let unconfirmed = h.assert_exactly_one_message_per_run(&serve).await;
    let mut logs = h.killed.clone();
    logs.push((serve.name.clone(), serve.lines()));
    let found = recoveries(
        &logs,
        &[
            "found the message of an earlier attempt",
            "the message was sent by an earlier attempt",
        ],
    );
    h.say(format_args!(
        "{} runs after {KILLS} kills: {} sent once each, {unconfirmed} send_unconfirmed \
         (never sent); {} answers held, {found} line(s) of sends of killed attempts found \
         instead of repeated",
        h.runs.len(),
        h.runs.len() - unconfirmed,
        h.held()
    ));
}
