//! One account's mail: messages, threads, drafts and history records.

use std::collections::BTreeSet;

use chrono::{DateTime, Duration, NaiveDate, Utc};

use super::mime::{self, ParsedMail};

pub const INBOX: &str = "INBOX";
pub const SENT: &str = "SENT";
pub const DRAFT: &str = "DRAFT";
pub const SPAM: &str = "SPAM";
pub const TRASH: &str = "TRASH";
pub const UNREAD: &str = "UNREAD";
pub const STARRED: &str = "STARRED";
pub const IMPORTANT: &str = "IMPORTANT";

/// System labels `labels.list` reports.
pub const SYSTEM_LABELS: &[&str] = &[
    INBOX,
    SENT,
    DRAFT,
    SPAM,
    TRASH,
    UNREAD,
    STARRED,
    IMPORTANT,
    "CATEGORY_PERSONAL",
    "CATEGORY_SOCIAL",
    "CATEGORY_PROMOTIONS",
    "CATEGORY_UPDATES",
    "CATEGORY_FORUMS",
];

#[derive(Clone, Debug)]
pub struct StoredMessage {
    pub id: String,
    pub thread_id: String,
    pub label_ids: Vec<String>,
    pub raw: Vec<u8>,
    pub internal_date: DateTime<Utc>,
    pub history_id: u64,
    pub parsed: ParsedMail,
}

impl StoredMessage {
    pub fn has_label(&self, label: &str) -> bool {
        self.label_ids.iter().any(|l| l.eq_ignore_ascii_case(label))
    }
}

#[derive(Clone, Debug)]
pub struct StoredDraft {
    pub id: String,
    pub message_id: String,
}

#[derive(Clone, Debug)]
pub enum HistoryChange {
    MessageAdded {
        message_id: String,
        thread_id: String,
        label_ids: Vec<String>,
    },
    MessageDeleted {
        message_id: String,
        thread_id: String,
    },
}

#[derive(Clone, Debug)]
pub struct HistoryRecord {
    pub id: u64,
    pub change: HistoryChange,
}

#[derive(Clone, Debug)]
pub struct Mailbox {
    pub messages: Vec<StoredMessage>,
    pub drafts: Vec<StoredDraft>,
    pub history: Vec<HistoryRecord>,
    /// Records older than this are gone; a `startHistoryId` below it is 404.
    pub history_floor: u64,
    pub history_id: u64,
    pub watch_expiration: Option<DateTime<Utc>>,
    /// The watch's `labelIds` (changes to other labels are not published).
    pub watch_labels: Vec<String>,
    /// The history id up to which changes were published.
    pub watch_published: u64,
}

/// How a new message picks its thread.
pub enum Threading<'a> {
    /// `messages.send`/`drafts.create`: only the requested thread, and only
    /// when headers and subject qualify (Gmail's documented criteria).
    Requested(Option<&'a str>),
    /// Inbound mail: any thread it replies to with a matching subject.
    Inbound,
}

pub struct NewMessage {
    pub id: String,
    pub raw: Vec<u8>,
    pub label_ids: Vec<String>,
    pub internal_date: DateTime<Utc>,
}

impl Mailbox {
    pub fn new(history_id: u64) -> Self {
        Self {
            messages: Vec::new(),
            drafts: Vec::new(),
            history: Vec::new(),
            history_floor: history_id,
            history_id,
            watch_expiration: None,
            watch_labels: Vec::new(),
            watch_published: history_id,
        }
    }

    pub fn message(&self, id: &str) -> Option<&StoredMessage> {
        self.messages.iter().find(|m| m.id == id)
    }

    pub fn thread(&self, thread_id: &str) -> Vec<&StoredMessage> {
        self.messages
            .iter()
            .filter(|m| m.thread_id == thread_id)
            .collect()
    }

    pub fn thread_count(&self) -> usize {
        self.messages
            .iter()
            .map(|m| &m.thread_id)
            .collect::<BTreeSet<_>>()
            .len()
    }

    fn qualifies_for(&self, thread_id: &str, parsed: &ParsedMail) -> bool {
        let thread = self.thread(thread_id);
        let Some(first) = thread.first() else {
            return false;
        };
        let replies_to_thread = thread.iter().any(|m| {
            m.parsed
                .message_id
                .as_ref()
                .is_some_and(|id| parsed.references.contains(id))
        });
        replies_to_thread
            && mime::normalized_subject(&first.parsed.subject)
                .eq_ignore_ascii_case(&mime::normalized_subject(&parsed.subject))
    }

    fn choose_thread(&self, parsed: &ParsedMail, threading: &Threading<'_>) -> Option<String> {
        match threading {
            Threading::Requested(Some(thread_id)) => self
                .qualifies_for(thread_id, parsed)
                .then(|| (*thread_id).to_owned()),
            Threading::Requested(None) => None,
            Threading::Inbound => self
                .messages
                .iter()
                .rev()
                .filter(|m| {
                    m.parsed
                        .message_id
                        .as_ref()
                        .is_some_and(|id| parsed.references.contains(id))
                })
                .map(|m| m.thread_id.clone())
                .find(|thread_id| self.qualifies_for(thread_id, parsed)),
        }
    }

    /// Stores a message, threading it, and records `messageAdded`.
    pub fn add(
        &mut self,
        new: NewMessage,
        threading: Threading<'_>,
        history_id: u64,
    ) -> &StoredMessage {
        let parsed = mime::parse(&new.raw);
        // A new thread takes its first message's id, as in Gmail.
        let thread_id = self
            .choose_thread(&parsed, &threading)
            .unwrap_or_else(|| new.id.clone());
        self.history.push(HistoryRecord {
            id: history_id,
            change: HistoryChange::MessageAdded {
                message_id: new.id.clone(),
                thread_id: thread_id.clone(),
                label_ids: new.label_ids.clone(),
            },
        });
        self.history_id = history_id;
        let index = self.messages.len();
        self.messages.push(StoredMessage {
            id: new.id,
            thread_id,
            label_ids: new.label_ids,
            raw: new.raw,
            internal_date: new.internal_date,
            history_id,
            parsed,
        });
        &self.messages[index]
    }

    pub fn remove(&mut self, message_id: &str, history_id: u64) -> Option<StoredMessage> {
        let index = self.messages.iter().position(|m| m.id == message_id)?;
        let removed = self.messages.remove(index);
        self.history.push(HistoryRecord {
            id: history_id,
            change: HistoryChange::MessageDeleted {
                message_id: removed.id.clone(),
                thread_id: removed.thread_id.clone(),
            },
        });
        self.history_id = history_id;
        Some(removed)
    }

    /// Drops all history up to now: older `startHistoryId`s become 404.
    pub fn expire_history(&mut self) {
        self.history.clear();
        self.history_floor = self.history_id;
    }

    /// Messages matching `query`, newest first.
    pub fn search(&self, query: &SearchQuery, now: DateTime<Utc>) -> Vec<&StoredMessage> {
        let mut found: Vec<&StoredMessage> = self
            .messages
            .iter()
            .filter(|m| query.matches(m, now))
            .collect();
        found.sort_by(|a, b| {
            b.internal_date
                .cmp(&a.internal_date)
                .then_with(|| b.id.cmp(&a.id))
        });
        found
    }
}

/// One term of Gmail's search language (`q`), the subset the sandbox knows.
#[derive(Clone, Debug, PartialEq)]
pub enum Term {
    Rfc822MsgId(String),
    Label(String),
    NotLabel(String),
    Anywhere,
    After(DateTime<Utc>),
    Before(DateTime<Utc>),
    NewerThan(Duration),
    OlderThan(Duration),
    From(String),
    To(String),
    Subject(String),
    Text(String),
}

#[derive(Clone, Debug, Default)]
pub struct SearchQuery {
    pub terms: Vec<Term>,
    pub label_ids: Vec<String>,
    pub include_spam_trash: bool,
}

fn label_for_in(value: &str) -> Option<String> {
    Some(
        match value.to_ascii_lowercase().as_str() {
            "inbox" => INBOX,
            "sent" => SENT,
            "draft" | "drafts" => DRAFT,
            "spam" => SPAM,
            "trash" => TRASH,
            "starred" => STARRED,
            "important" => IMPORTANT,
            _ => return None,
        }
        .to_owned(),
    )
}

fn parse_date(value: &str) -> Option<DateTime<Utc>> {
    if let Ok(seconds) = value.parse::<i64>() {
        return DateTime::from_timestamp(seconds, 0);
    }
    let normalized = value.replace('-', "/");
    NaiveDate::parse_from_str(&normalized, "%Y/%m/%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|dt| dt.and_utc())
}

fn parse_age(value: &str) -> Option<Duration> {
    let unit = value.chars().last()?;
    let amount: i64 = value[..value.len() - unit.len_utf8()].parse().ok()?;
    // Checked: `q` is user input and `newer_than:99999999999y` must not panic.
    match unit.to_ascii_lowercase() {
        'h' => Duration::try_hours(amount),
        'd' => Duration::try_days(amount),
        'm' => Duration::try_days(amount.checked_mul(30)?),
        'y' => Duration::try_days(amount.checked_mul(365)?),
        _ => None,
    }
}

impl SearchQuery {
    /// Parses `q`. Unknown operators fall back to a text match.
    pub fn parse(q: &str) -> Self {
        let mut terms = Vec::new();
        for token in q.split_whitespace() {
            let (negated, token) = match token.strip_prefix('-') {
                Some(rest) => (true, rest),
                None => (false, token),
            };
            let term = match token.split_once(':') {
                Some((op, value)) if !value.is_empty() => match op.to_ascii_lowercase().as_str() {
                    "rfc822msgid" => {
                        Some(Term::Rfc822MsgId(value.trim_matches(['<', '>']).to_owned()))
                    }
                    "in" if value.eq_ignore_ascii_case("anywhere") => Some(Term::Anywhere),
                    "in" => label_for_in(value).map(Term::Label),
                    "is" => match value.to_ascii_lowercase().as_str() {
                        "unread" => Some(Term::Label(UNREAD.to_owned())),
                        "read" => Some(Term::NotLabel(UNREAD.to_owned())),
                        "starred" => Some(Term::Label(STARRED.to_owned())),
                        "important" => Some(Term::Label(IMPORTANT.to_owned())),
                        _ => None,
                    },
                    "label" => Some(Term::Label(value.to_owned())),
                    "category" => Some(Term::Label(format!(
                        "CATEGORY_{}",
                        value.to_ascii_uppercase()
                    ))),
                    "after" => parse_date(value).map(Term::After),
                    "before" => parse_date(value).map(Term::Before),
                    "newer_than" => parse_age(value).map(Term::NewerThan),
                    "older_than" => parse_age(value).map(Term::OlderThan),
                    "from" => Some(Term::From(value.to_ascii_lowercase())),
                    "to" => Some(Term::To(value.to_ascii_lowercase())),
                    "subject" => Some(Term::Subject(value.to_ascii_lowercase())),
                    _ => None,
                },
                _ => None,
            }
            .unwrap_or_else(|| Term::Text(token.to_ascii_lowercase()));
            let term = match (negated, term) {
                (true, Term::Label(label)) => Term::NotLabel(label),
                (_, term) => term,
            };
            terms.push(term);
        }
        Self {
            terms,
            ..Self::default()
        }
    }

    fn mentions_spam_or_trash(&self) -> bool {
        self.include_spam_trash
            || self.terms.iter().any(|t| match t {
                Term::Anywhere => true,
                Term::Label(l) => l.eq_ignore_ascii_case(SPAM) || l.eq_ignore_ascii_case(TRASH),
                _ => false,
            })
            || self
                .label_ids
                .iter()
                .any(|l| l.eq_ignore_ascii_case(SPAM) || l.eq_ignore_ascii_case(TRASH))
    }

    pub fn matches(&self, message: &StoredMessage, now: DateTime<Utc>) -> bool {
        if !self.mentions_spam_or_trash() && (message.has_label(SPAM) || message.has_label(TRASH)) {
            return false;
        }
        if !self.label_ids.iter().all(|l| message.has_label(l)) {
            return false;
        }
        let p = &message.parsed;
        self.terms.iter().all(|term| match term {
            Term::Rfc822MsgId(id) => p.message_id.as_deref() == Some(id.as_str()),
            Term::Label(l) => message.has_label(l),
            Term::NotLabel(l) => !message.has_label(l),
            Term::Anywhere => true,
            Term::After(t) => message.internal_date >= *t,
            Term::Before(t) => message.internal_date < *t,
            Term::NewerThan(age) => now
                .checked_sub_signed(*age)
                .is_none_or(|cutoff| message.internal_date >= cutoff),
            Term::OlderThan(age) => now
                .checked_sub_signed(*age)
                .is_some_and(|cutoff| message.internal_date < cutoff),
            Term::From(f) => p
                .from
                .as_deref()
                .is_some_and(|a| a.to_ascii_lowercase().contains(f.as_str())),
            Term::To(t) => p
                .recipients()
                .any(|a| a.to_ascii_lowercase().contains(t.as_str())),
            Term::Subject(s) => p.subject.to_ascii_lowercase().contains(s.as_str()),
            Term::Text(word) => {
                p.subject.to_ascii_lowercase().contains(word.as_str())
                    || p.text.to_ascii_lowercase().contains(word.as_str())
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_parser_understands_the_operators_mailwright_uses() {
        let q = SearchQuery::parse(
            "rfc822msgid:<a@b> in:inbox -is:unread after:2024/01/31 newer_than:2d hello",
        );
        assert_eq!(
            q.terms,
            vec![
                Term::Rfc822MsgId("a@b".into()),
                Term::Label(INBOX.into()),
                Term::NotLabel(UNREAD.into()),
                Term::After(parse_date("2024/01/31").unwrap()),
                Term::NewerThan(Duration::days(2)),
                Term::Text("hello".into()),
            ]
        );
        assert_eq!(parse_date("1700000000").unwrap().timestamp(), 1_700_000_000);
    }
}
