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

/// A label the user (or an app) created: `labels.create`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserLabel {
    /// `Label_1`, `Label_2`, ... as Gmail numbers them.
    pub id: String,
    pub name: String,
    /// `labelShow`, `labelShowIfUnread` or `labelHide`.
    pub label_list_visibility: String,
    /// `show` or `hide`.
    pub message_list_visibility: String,
}

/// System labels no call may apply or remove: Gmail sets them itself
/// (the labels guide's "Can be manually applied: no").
pub const AUTOMATIC_LABELS: &[&str] = &[SENT, DRAFT];

/// Why `messages.modify` refused a label.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InvalidLabel(pub String);

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
    /// `messages.modify` added `changed`; `label_ids` are the message's
    /// labels afterwards.
    LabelsAdded {
        message_id: String,
        thread_id: String,
        label_ids: Vec<String>,
        changed: Vec<String>,
    },
    /// `messages.modify` removed `changed`; `label_ids` are the message's
    /// labels afterwards.
    LabelsRemoved {
        message_id: String,
        thread_id: String,
        label_ids: Vec<String>,
        changed: Vec<String>,
    },
}

impl HistoryChange {
    /// Whether the change concerns `label`: the message has it (after the
    /// change), or the change added or removed it. `messageDeleted` records
    /// concern no label.
    pub fn concerns_label(&self, label: &str) -> bool {
        let eq = |l: &String| l.eq_ignore_ascii_case(label);
        match self {
            Self::MessageAdded { label_ids, .. } => label_ids.iter().any(eq),
            Self::MessageDeleted { .. } => false,
            Self::LabelsAdded {
                label_ids, changed, ..
            }
            | Self::LabelsRemoved {
                label_ids, changed, ..
            } => label_ids.iter().chain(changed).any(eq),
        }
    }
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
    /// In creation order.
    pub user_labels: Vec<UserLabel>,
    /// The number in the last `Label_N` id handed out.
    pub last_label_number: u64,
    /// The default send-as address's signature (HTML, as Gmail keeps it).
    pub signature: String,
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
            user_labels: Vec::new(),
            last_label_number: 0,
            signature: String::new(),
        }
    }

    pub fn user_label(&self, id: &str) -> Option<&UserLabel> {
        self.user_labels.iter().find(|l| l.id == id)
    }

    /// The name shown for a label id: a user label's name, else the id
    /// itself (system labels are named by their ids).
    pub fn label_name<'a>(&'a self, id: &'a str) -> &'a str {
        self.user_label(id).map_or(id, |l| l.name.as_str())
    }

    /// Whether `name` is taken: by a user label (case-insensitively).
    pub fn user_label_named(&self, name: &str) -> Option<&UserLabel> {
        self.user_labels
            .iter()
            .find(|l| l.name.eq_ignore_ascii_case(name))
    }

    /// Adds a user label with the next `Label_N` id. The caller checks the
    /// name first (see [`is_reserved_label_name`]).
    pub fn create_label(
        &mut self,
        name: &str,
        label_list_visibility: &str,
        message_list_visibility: &str,
    ) -> &UserLabel {
        self.last_label_number += 1;
        self.user_labels.push(UserLabel {
            id: format!("Label_{}", self.last_label_number),
            name: name.to_owned(),
            label_list_visibility: label_list_visibility.to_owned(),
            message_list_visibility: message_list_visibility.to_owned(),
        });
        &self.user_labels[self.user_labels.len() - 1]
    }

    /// The id `messages.modify` stores for a requested label id: a system
    /// label's canonical (upper-case) id, or a user label's exact id.
    fn resolve_label(&self, id: &str) -> Result<String, InvalidLabel> {
        if let Some(system) = SYSTEM_LABELS.iter().find(|l| l.eq_ignore_ascii_case(id)) {
            if AUTOMATIC_LABELS.contains(system) {
                return Err(InvalidLabel(id.to_owned()));
            }
            return Ok((*system).to_owned());
        }
        match self.user_label(id) {
            Some(label) => Ok(label.id.clone()),
            None => Err(InvalidLabel(id.to_owned())),
        }
    }

    /// `messages.modify`: checks every label first (nothing changes when
    /// one is invalid), then adds and removes them (a label in both lists
    /// ends up removed), recording `labelsAdded` under `history_ids[0]` and
    /// `labelsRemoved` under `history_ids[1]` for what actually changed.
    /// `Ok(None)` when there is no such message.
    pub fn modify_labels(
        &mut self,
        message_id: &str,
        add: &[String],
        remove: &[String],
        history_ids: [u64; 2],
    ) -> Result<Option<&StoredMessage>, InvalidLabel> {
        let add: Vec<String> = add
            .iter()
            .map(|l| self.resolve_label(l))
            .collect::<Result<_, _>>()?;
        let remove: Vec<String> = remove
            .iter()
            .map(|l| self.resolve_label(l))
            .collect::<Result<_, _>>()?;
        let Some(index) = self.messages.iter().position(|m| m.id == message_id) else {
            return Ok(None);
        };
        let message = &mut self.messages[index];
        let mut added: Vec<String> = Vec::new();
        for label in add {
            if !remove.contains(&label)
                && !message.label_ids.contains(&label)
                && !added.contains(&label)
            {
                added.push(label);
            }
        }
        let mut removed: Vec<String> = Vec::new();
        for label in remove {
            if message.label_ids.contains(&label) && !removed.contains(&label) {
                removed.push(label);
            }
        }
        message.label_ids.extend(added.iter().cloned());
        message.label_ids.retain(|l| !removed.contains(l));
        let label_ids = message.label_ids.clone();
        let (id, thread_id) = (message.id.clone(), message.thread_id.clone());
        let mut record = |history_id: u64, change: HistoryChange| {
            self.messages[index].history_id = history_id;
            self.history.push(HistoryRecord {
                id: history_id,
                change,
            });
            self.history_id = history_id;
        };
        if !added.is_empty() {
            record(
                history_ids[0],
                HistoryChange::LabelsAdded {
                    message_id: id.clone(),
                    thread_id: thread_id.clone(),
                    label_ids: label_ids.clone(),
                    changed: added,
                },
            );
        }
        if !removed.is_empty() {
            record(
                history_ids[1],
                HistoryChange::LabelsRemoved {
                    message_id: id,
                    thread_id,
                    label_ids,
                    changed: removed,
                },
            );
        }
        Ok(Some(&self.messages[index]))
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

/// Names no user label may take: the system labels' (their names are
/// their ids), case-insensitively.
pub fn is_reserved_label_name(name: &str) -> bool {
    SYSTEM_LABELS.iter().any(|l| l.eq_ignore_ascii_case(name))
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

    fn mailbox_with_one_message() -> Mailbox {
        let mut mailbox = Mailbox::new(10);
        mailbox.add(
            NewMessage {
                id: "m1".into(),
                raw: b"From: a@x\r\nTo: b@x\r\nSubject: s\r\n\r\nbody".to_vec(),
                label_ids: vec![INBOX.into(), UNREAD.into()],
                internal_date: Utc::now(),
            },
            Threading::Inbound,
            11,
        );
        mailbox
    }

    fn strings(labels: &[&str]) -> Vec<String> {
        labels.iter().map(|l| (*l).to_owned()).collect()
    }

    #[test]
    fn label_ids_count_from_one_per_mailbox_and_names_resolve() {
        let mut mailbox = mailbox_with_one_message();
        assert_eq!(mailbox.create_label("A", "labelShow", "show").id, "Label_1");
        assert_eq!(mailbox.create_label("B", "labelShow", "show").id, "Label_2");
        assert_eq!(mailbox.label_name("Label_2"), "B");
        assert_eq!(mailbox.label_name(INBOX), INBOX);
        assert_eq!(mailbox.user_label_named("a").unwrap().id, "Label_1");
        assert!(is_reserved_label_name("Category_Updates"));
        assert!(!is_reserved_label_name("Updates"));
    }

    #[test]
    fn modify_is_all_or_nothing_and_records_only_real_changes() {
        let mut mailbox = mailbox_with_one_message();
        mailbox.create_label("A", "labelShow", "show");
        let invalid = mailbox
            .modify_labels("m1", &strings(&["starred", "Label_7"]), &[], [20, 21])
            .unwrap_err();
        assert_eq!(invalid, InvalidLabel("Label_7".into()));
        assert_eq!(mailbox.messages[0].label_ids, [INBOX, UNREAD]);
        assert_eq!(mailbox.history_id, 11);

        // System ids are taken in any case and stored canonically; a label
        // both added and removed ends up removed.
        let message = mailbox
            .modify_labels(
                "m1",
                &strings(&["starred", "Label_1", "IMPORTANT"]),
                &strings(&["unread", "IMPORTANT", "TRASH"]),
                [20, 21],
            )
            .unwrap()
            .unwrap();
        assert_eq!(message.label_ids, [INBOX, "STARRED", "Label_1"]);
        assert_eq!(message.history_id, 21);
        assert_eq!(mailbox.history_id, 21);
        assert_eq!(mailbox.history.len(), 3);
        assert!(matches!(
            &mailbox.history[1].change,
            HistoryChange::LabelsAdded { changed, .. } if *changed == strings(&["STARRED", "Label_1"])
        ));
        assert!(matches!(
            &mailbox.history[2].change,
            HistoryChange::LabelsRemoved { changed, .. } if *changed == strings(&[UNREAD])
        ));
        assert!(mailbox.history[2].change.concerns_label("unread"));
        assert!(mailbox.history[2].change.concerns_label("label_1"));
        assert!(!mailbox.history[2].change.concerns_label(SPAM));

        let unchanged = mailbox
            .modify_labels("m1", &strings(&[INBOX]), &strings(&[SPAM]), [30, 31])
            .unwrap()
            .unwrap();
        assert_eq!(unchanged.history_id, 21);
        assert_eq!(mailbox.history.len(), 3);
        assert!(
            mailbox
                .modify_labels("nope", &strings(&[INBOX]), &[], [40, 41])
                .unwrap()
                .is_none()
        );
    }
}
