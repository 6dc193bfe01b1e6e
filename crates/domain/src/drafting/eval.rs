//! The auto-draft evaluation: labelled inbound messages
//! (`benchmarks/autodraft-eval/messages.jsonl`) run through the built-in
//! pipeline's decisions (the message rules, a thread the person already
//! answered, the language, then the built-in drafter's type), scored
//! against the expected decision, skip reason and type. The example
//! `eval_autodraft` prints the score; a test fails below the recorded
//! baseline.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::drafting::language::detect_or_english;
use crate::drafting::{DraftRequest, builtin_draft};
use crate::mail::{Address, Message, Placement, skip_reason_for};

/// The mailbox owner of every labelled message.
pub const OWNER: &str = "ann@example.com";

/// One labelled message (one line of the set).
#[derive(Debug, Clone, Deserialize)]
pub struct Case {
    pub id: String,
    pub category: String,
    pub language: String,
    pub from: String,
    pub subject: String,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    #[serde(default)]
    pub labels: Vec<String>,
    pub text: String,
    /// The person already answered in the thread after this message.
    #[serde(default)]
    pub owner_replied_after: bool,
    pub expected: Expected,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Expected {
    /// `draft` or `skip`.
    pub decision: String,
    pub reason: Option<String>,
    #[serde(rename = "type")]
    pub draft_type: Option<String>,
}

/// What the pipeline decides for a case: a draft of a type, or a skip
/// reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Draft(String),
    Skip(&'static str),
}

/// Parse the set: one JSON object per non-empty line; a bad line is an
/// error naming it.
pub fn parse_cases(jsonl: &str) -> Result<Vec<Case>, String> {
    jsonl
        .lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(number, line)| {
            serde_json::from_str(line).map_err(|error| format!("line {}: {error}", number + 1))
        })
        .collect()
}

fn address(text: &str) -> Address {
    match text.rsplit_once('<') {
        Some((name, rest)) => Address {
            name: Some(name.trim().trim_matches('"').to_owned()).filter(|name| !name.is_empty()),
            address: rest.trim_end_matches('>').trim().to_owned(),
        },
        None => Address {
            name: None,
            address: text.trim().to_owned(),
        },
    }
}

/// The case as the pipeline reads a message.
pub fn message_of(case: &Case) -> Message {
    let has = |label: &str| case.labels.iter().any(|l| l == label);
    let mut headers: Vec<(String, String)> = vec![
        ("From".into(), case.from.clone()),
        ("Subject".into(), case.subject.clone()),
    ];
    headers.extend(
        case.headers
            .iter()
            .map(|(name, value)| (name.clone(), value.clone())),
    );
    Message {
        id: case.id.clone(),
        thread_id: case.id.clone(),
        placement: Placement {
            inbox: has("INBOX"),
            spam_or_trash: has("SPAM") || has("TRASH"),
            sent: has("SENT"),
            draft: has("DRAFT"),
            promotions: has("CATEGORY_PROMOTIONS"),
        },
        from: Some(address(&case.from)),
        headers,
        text: case.text.clone(),
        label_ids: case.labels.clone(),
        ..Message::default()
    }
}

/// The built-in pipeline's decision, in the pipeline's order.
pub fn decide(case: &Case) -> Decision {
    let message = message_of(case);
    if let Some(reason) = skip_reason_for(&message, OWNER) {
        return Decision::Skip(reason.code());
    }
    if case.owner_replied_after {
        return Decision::Skip(crate::mail::SkipReason::ThreadLatestFromOwner.code());
    }
    if detect_or_english(&case.subject, &case.text).is_none() {
        return Decision::Skip(crate::mail::SkipReason::UnsupportedLanguage.code());
    }
    let sender = address(&case.from);
    let draft = builtin_draft(&DraftRequest {
        sender_name: sender.name,
        sender_address: sender.address,
        subject: case.subject.clone(),
        text: case.text.clone(),
        owner_name: Some("Ann Example".into()),
        owner_address: OWNER.into(),
        earlier: Vec::new(),
        signature: None,
        instructions: None,
        style: None,
    });
    Decision::Draft(draft.label.draft_type().to_owned())
}

/// Precision and recall of one label.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct LabelScore {
    pub expected: usize,
    pub predicted: usize,
    pub correct: usize,
}

impl LabelScore {
    pub fn precision(&self) -> f64 {
        ratio(self.correct, self.predicted)
    }

    pub fn recall(&self) -> f64 {
        ratio(self.correct, self.expected)
    }
}

fn ratio(part: usize, whole: usize) -> f64 {
    if whole == 0 {
        1.0
    } else {
        part as f64 / whole as f64
    }
}

/// The score of a run over the set.
#[derive(Debug, Clone, Default)]
pub struct Score {
    pub cases: usize,
    /// Draft or skip, and for a skip the right reason.
    pub decisions_correct: usize,
    /// Of the cases expected and decided as drafts: the right type.
    pub drafts_both: usize,
    pub types_correct: usize,
    /// Per skip reason, and `draft`.
    pub by_reason: BTreeMap<String, LabelScore>,
    /// Cases decided wrongly: (id, expected, decided).
    pub misses: Vec<(String, String, String)>,
}

impl Score {
    /// Decisions right (draft or skip, and which skip), of all cases.
    pub fn accuracy(&self) -> f64 {
        ratio(self.decisions_correct, self.cases)
    }

    /// Types right, of the drafts both expected and made.
    pub fn type_accuracy(&self) -> f64 {
        ratio(self.types_correct, self.drafts_both)
    }
}

/// Score the built-in pipeline over `cases`.
pub fn score(cases: &[Case]) -> Score {
    let mut score = Score {
        cases: cases.len(),
        ..Score::default()
    };
    for case in cases {
        let expected = match case.expected.reason.as_deref() {
            Some(reason) if case.expected.decision == "skip" => reason.to_owned(),
            _ => "draft".to_owned(),
        };
        let decision = decide(case);
        let decided = match &decision {
            Decision::Skip(reason) => (*reason).to_owned(),
            Decision::Draft(_) => "draft".to_owned(),
        };
        score
            .by_reason
            .entry(expected.clone())
            .or_default()
            .expected += 1;
        score
            .by_reason
            .entry(decided.clone())
            .or_default()
            .predicted += 1;
        if expected == decided {
            score.decisions_correct += 1;
            score.by_reason.entry(expected.clone()).or_default().correct += 1;
        } else {
            score
                .misses
                .push((case.id.clone(), expected.clone(), decided.clone()));
        }
        if let (Decision::Draft(made), Some(wanted)) = (&decision, &case.expected.draft_type) {
            score.drafts_both += 1;
            if made == wanted {
                score.types_correct += 1;
            }
        }
    }
    score
}

/// The score as the example prints it (and `benchmarks/` records it).
pub fn report(score: &Score) -> String {
    let mut out = format!(
        "cases: {}\ndecision accuracy: {:.1}% ({} of {})\ntype accuracy (drafts): {:.1}% ({} of {})\n\nreason                      expected  predicted  precision  recall\n",
        score.cases,
        score.accuracy() * 100.0,
        score.decisions_correct,
        score.cases,
        score.type_accuracy() * 100.0,
        score.types_correct,
        score.drafts_both,
    );
    for (reason, label) in &score.by_reason {
        out.push_str(&format!(
            "{reason:<28}{:>8}{:>11}{:>10.1}%{:>7.1}%\n",
            label.expected,
            label.predicted,
            label.precision() * 100.0,
            label.recall() * 100.0
        ));
    }
    if !score.misses.is_empty() {
        out.push_str("\nmissed (id: expected → decided):\n");
        for (id, expected, decided) in &score.misses {
            out.push_str(&format!("  {id}: {expected} → {decided}\n"));
        }
    }
    out
}
