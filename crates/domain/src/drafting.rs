//! Auto-draft's vocabulary and the built-in drafter: draft types, labels as a
//! generator gives them, reply subjects and quoting, and a deterministic
//! rule-based classifier with one reply template per type.
//!
//! Draft types are an open vocabulary: a label nobody anticipated is kept as
//! given and counted as `other`, because a label is never a reason to lose a
//! draft.

use std::fmt;

/// How much of a message's text a drafter looks at. The ask is nearly always
/// near the top, and it bounds the work (and an LLM prompt) per message.
pub const TEXT_LIMIT: usize = 4000;

/// The `generator` of drafts written by [`builtin_draft`].
pub const BUILTIN_GENERATOR: &str = "builtin";

/// The first [`TEXT_LIMIT`] characters of `text`.
pub fn text_excerpt(text: &str) -> &str {
    match text.char_indices().nth(TEXT_LIMIT) {
        Some((end, _)) => &text[..end],
        None => text,
    }
}

/// The known draft types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DraftType {
    Reply,
    Forward,
    New,
    InformationRequest,
    Acknowledgment,
    Scheduling,
    DocumentRequest,
    FollowUp,
    Confirmation,
    Question,
    ThankYou,
    Invitation,
    Reminder,
    Update,
    Introduction,
}

impl DraftType {
    pub const ALL: [DraftType; 15] = [
        DraftType::Reply,
        DraftType::Forward,
        DraftType::New,
        DraftType::InformationRequest,
        DraftType::Acknowledgment,
        DraftType::Scheduling,
        DraftType::DocumentRequest,
        DraftType::FollowUp,
        DraftType::Confirmation,
        DraftType::Question,
        DraftType::ThankYou,
        DraftType::Invitation,
        DraftType::Reminder,
        DraftType::Update,
        DraftType::Introduction,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DraftType::Reply => "reply",
            DraftType::Forward => "forward",
            DraftType::New => "new",
            DraftType::InformationRequest => "information_request",
            DraftType::Acknowledgment => "acknowledgment",
            DraftType::Scheduling => "scheduling",
            DraftType::DocumentRequest => "document_request",
            DraftType::FollowUp => "follow_up",
            DraftType::Confirmation => "confirmation",
            DraftType::Question => "question",
            DraftType::ThankYou => "thank_you",
            DraftType::Invitation => "invitation",
            DraftType::Reminder => "reminder",
            DraftType::Update => "update",
            DraftType::Introduction => "introduction",
        }
    }

    /// The exact snake_case name only; [`DraftLabel::parse`] is the lenient one.
    pub fn parse(text: &str) -> Option<DraftType> {
        DraftType::ALL
            .into_iter()
            .find(|kind| kind.as_str() == text)
    }
}

impl fmt::Display for DraftType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Labels are stored and shown; past this they are noise.
const LABEL_MAX_CHARS: usize = 64;

/// A generator's label, kept as given (trimmed, at most 64 characters, never
/// empty: an empty one becomes `reply`) plus the known type it normalises to,
/// if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DraftLabel {
    label: String,
    known: Option<DraftType>,
}

impl DraftLabel {
    /// Keeps the label as given and recognises it leniently: lower case,
    /// any run of non-alphanumerics as one `_`, then the exact type names,
    /// then a few common aliases.
    pub fn parse(raw: &str) -> DraftLabel {
        // A stray newline from a model must not reach logs or the database.
        let cleaned: String = raw
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        let trimmed = cleaned.trim();
        if trimmed.is_empty() {
            return DraftLabel::known(DraftType::Reply);
        }
        let label: String = trimmed.chars().take(LABEL_MAX_CHARS).collect();
        let label = label.trim_end().to_owned();
        let key = label_key(&label);
        let known = DraftType::parse(&key).or_else(|| alias(&key));
        DraftLabel { label, known }
    }

    pub fn known(label: DraftType) -> DraftLabel {
        DraftLabel {
            label: label.as_str().to_owned(),
            known: Some(label),
        }
    }

    /// The label as given (trimmed and truncated), e.g. `urgent_callback` or
    /// `Document Request`.
    pub fn label(&self) -> &str {
        &self.label
    }

    pub fn known_type(&self) -> Option<DraftType> {
        self.known
    }

    /// The stats bucket: the known type's name, or `other`.
    pub fn draft_type(&self) -> &'static str {
        self.known.map_or("other", DraftType::as_str)
    }
}

impl fmt::Display for DraftLabel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.label)
    }
}

fn label_key(label: &str) -> String {
    let mut key = String::with_capacity(label.len());
    for c in label.chars().flat_map(char::to_lowercase) {
        if c.is_alphanumeric() {
            key.push(c);
        } else if !key.is_empty() && !key.ends_with('_') {
            key.push('_');
        }
    }
    while key.ends_with('_') {
        key.pop();
    }
    key
}

fn alias(key: &str) -> Option<DraftType> {
    Some(match key {
        "thanks" | "thankyou" | "thank" | "thanks_note" => DraftType::ThankYou,
        "ack" | "acknowledge" | "acknowledged" | "acknowledgement" => DraftType::Acknowledgment,
        "meeting_request" | "meeting" | "schedule" | "schedule_meeting" | "appointment" => {
            DraftType::Scheduling
        }
        "info_request"
        | "request_for_information"
        | "information"
        | "info"
        | "inquiry"
        | "enquiry" => DraftType::InformationRequest,
        "followup" | "follow" => DraftType::FollowUp,
        "intro" | "introductions" => DraftType::Introduction,
        "invite" | "invitations" => DraftType::Invitation,
        "document" | "documents" | "doc_request" | "documents_request" | "file_request" => {
            DraftType::DocumentRequest
        }
        "fwd" | "fw" => DraftType::Forward,
        "confirm" => DraftType::Confirmation,
        "remind" | "reminders" => DraftType::Reminder,
        "status_update" | "updates" | "fyi" => DraftType::Update,
        "questions" => DraftType::Question,
        "response" | "answer" => DraftType::Reply,
        "new_email" | "new_message" => DraftType::New,
        _ => return None,
    })
}

/// `Re: <subject>` without stacking prefixes: leading `Re:` (any case, also
/// `Re[2]:`, possibly repeated) collapse into one `Re: `; other prefixes such
/// as `Fwd:` stay. An empty subject gives `Re:`. The result is one line, so
/// it is safe in a header.
pub fn reply_subject(original: &str) -> String {
    let flat = one_line(original);
    let rest = strip_prefixes(&flat, false);
    if rest.is_empty() {
        "Re:".to_owned()
    } else {
        format!("Re: {rest}")
    }
}

/// The original quoted below a reply, the way mail clients do it:
/// `On {date}, {sender} wrote:` then every line prefixed with `> ` (empty
/// lines with `>`). An empty `date` gives `{sender} wrote:`.
pub fn quote(sender: &str, date: &str, text: &str) -> String {
    quote_in(language::Language::English, sender, date, text)
}

/// [`quote`] with the attribution line in `language` (`Am {date} schrieb
/// {sender}:`), as a mail client set to it would write it.
pub fn quote_in(language: language::Language, sender: &str, date: &str, text: &str) -> String {
    use language::Language;
    let sender = one_line(sender);
    let date = one_line(date);
    let who = match (sender.is_empty(), language) {
        (false, _) => sender.as_str(),
        (true, Language::English) => "the sender",
        (true, Language::German) => "der Absender",
        (true, Language::French) => "l'expéditeur",
        (true, Language::Spanish) => "el remitente",
        (true, Language::Portuguese) => "o remetente",
    };
    let mut out = match (date.is_empty(), language) {
        (true, Language::English) => format!("{who} wrote:"),
        (true, Language::German) => format!("{who} schrieb:"),
        (true, Language::French) => format!("{who} a écrit :"),
        (true, Language::Spanish) => format!("{who} escribió:"),
        (true, Language::Portuguese) => format!("{who} escreveu:"),
        (false, Language::English) => format!("On {date}, {who} wrote:"),
        (false, Language::German) => format!("Am {date} schrieb {who}:"),
        (false, Language::French) => format!("Le {date}, {who} a écrit :"),
        (false, Language::Spanish) => format!("El {date}, {who} escribió:"),
        (false, Language::Portuguese) => format!("Em {date}, {who} escreveu:"),
    };
    capitalise_first(&mut out);
    let text = text.replace("\r\n", "\n").replace('\r', "\n");
    let lines: Vec<&str> = text.split('\n').map(str::trim_end).collect();
    let first = lines.iter().position(|line| !line.is_empty());
    let last = lines.iter().rposition(|line| !line.is_empty());
    if let (Some(first), Some(last)) = (first, last) {
        for line in &lines[first..=last] {
            out.push('\n');
            if line.is_empty() {
                out.push('>');
            } else {
                out.push_str("> ");
                out.push_str(line);
            }
        }
    }
    out
}

/// What the drafter sees of the inbound message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DraftRequest {
    /// The display name from `From`, if any.
    pub sender_name: Option<String>,
    pub sender_address: String,
    pub subject: String,
    /// The plain-text body; drafters use only [`text_excerpt`] of it.
    pub text: String,
    /// The mailbox owner's name, for the signature; without it the draft ends
    /// with a closing line only.
    pub owner_name: Option<String>,
    pub owner_address: String,
    /// The conversation before this message, oldest first (each text
    /// trimmed of quoted history: [`without_quoted_history`]).
    pub earlier: Vec<EarlierMessage>,
    /// The person's mail signature (plain text), which ends every draft as
    /// Gmail would add it.
    pub signature: Option<String>,
    /// What the person asks of every draft ("sign as Dr. Lee", "never
    /// promise a date"), for the model.
    pub instructions: Option<String>,
    /// How the person writes (learnt from their sent mail, or set by them).
    pub style: Option<style::StyleProfile>,
}

/// A message earlier in the conversation, as the model reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EarlierMessage {
    /// `Name <address>` or the address.
    pub from: String,
    pub date: String,
    /// The text without its quoted history, at most [`EARLIER_TEXT_LIMIT`].
    pub text: String,
}

/// How many earlier messages of a thread the model reads (the newest).
pub const EARLIER_MESSAGES: usize = 5;
/// Characters of each earlier message's text the model reads.
pub const EARLIER_TEXT_LIMIT: usize = 1500;

/// `text` without the history mail clients quote below a reply (`> `
/// lines, and everything from an `On ... wrote:` line on), at most
/// [`EARLIER_TEXT_LIMIT`] characters.
pub fn without_quoted_history(text: &str) -> String {
    let text = strip_quoted_history(text);
    match text.char_indices().nth(EARLIER_TEXT_LIMIT) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text,
    }
}

/// `text` without the history mail clients quote below a reply (`> `
/// lines, and everything from an `On ... wrote:` line on, in the five
/// languages the built-in drafter writes), whole.
pub fn strip_quoted_history(text: &str) -> String {
    let text = text.replace("\r\n", "\n");
    let mut kept = Vec::new();
    for line in text.lines() {
        let trimmed = line.trim();
        let attribution = trimmed.ends_with("wrote:")
            || trimmed.ends_with("schrieb:")
            || trimmed.ends_with("a écrit :")
            || trimmed.ends_with("a écrit:")
            || trimmed.ends_with("escribió:")
            || trimmed.ends_with("escreveu:")
            || trimmed.starts_with("-----Original Message-----");
        if attribution {
            break;
        }
        if trimmed.starts_with('>') {
            continue;
        }
        kept.push(line.trim_end());
    }
    kept.join("\n").trim().to_owned()
}

/// A generated reply: the body only (subject, quoting and headers are the
/// caller's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeneratedDraft {
    pub label: DraftLabel,
    pub body: String,
    /// `builtin` or `llm:<model>`.
    pub generator: String,
    /// The model's tokens for it (prompt and answer), as the model said.
    pub tokens: Option<u64>,
    /// How sure the model said it is that the reply is wanted and right,
    /// in percent (the built-in drafter says nothing).
    pub confidence: Option<u8>,
}

mod builtin;
pub mod eval;
pub mod language;
mod localized;
pub mod outcome;
mod phrases;
pub mod rules;
pub mod style;

pub use builtin::{
    builtin_classify, builtin_draft, builtin_draft_in, greeting_name, with_signature,
};
use builtin::{capitalise_first, one_line, strip_prefixes};

#[cfg(test)]
#[path = "drafting_tests.rs"]
mod tests;
