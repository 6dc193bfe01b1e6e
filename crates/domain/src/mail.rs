//! Mail as the engine sees it, whatever mailbox it came from (Gmail today;
//! Microsoft 365 and IMAP next), and auto-draft's rules for which messages
//! get no reply draft: they read only what every mailbox can say.

/// Where the mailbox files a message.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Placement {
    pub inbox: bool,
    pub spam_or_trash: bool,
    /// Sent from this mailbox.
    pub sent: bool,
    pub draft: bool,
    /// Filed by the provider as promotions or marketing.
    pub promotions: bool,
}

/// An address as a header gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Address {
    pub name: Option<String>,
    pub address: String,
}

impl Address {
    /// `Name <address>`, or the bare address.
    pub fn display(&self) -> String {
        match &self.name {
            Some(name) => format!("{name} <{}>", self.address),
            None => self.address.clone(),
        }
    }
}

/// A message of a mailbox.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Message {
    /// The provider's id of the message.
    pub id: String,
    /// The provider's id of its conversation.
    pub thread_id: String,
    pub placement: Placement,
    /// When the mailbox received it, in milliseconds since the epoch (0:
    /// unknown).
    pub received_at_millis: i64,
    /// `From`, parsed (`None`: missing or unreadable).
    pub from: Option<Address>,
    /// `Reply-To`, parsed.
    pub reply_to: Option<Address>,
    /// The top-level headers, in order, as `(name, value)`.
    pub headers: Vec<(String, String)>,
    /// The plain-text body (empty when only the headers were read).
    pub text: String,
    /// The provider's labels (Gmail label ids: `INBOX`, `Label_12`).
    pub label_ids: Vec<String>,
    /// Whether a part is a named attachment (known only when the whole
    /// message was read).
    pub has_attachment: bool,
}

impl Message {
    /// The first header with this name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(header, _)| header.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    /// Whether it is the first message of its conversation: Gmail names a
    /// thread after its first message's id; IMAP, after its first message's
    /// Message-ID.
    pub fn starts_thread(&self) -> bool {
        self.thread_id == self.id
            || self
                .header("Message-ID")
                .is_some_and(|own| own.trim() == self.thread_id)
    }

    /// Whether `owner` (the mailbox's address) wrote it.
    pub fn is_from(&self, owner: &str) -> bool {
        self.placement.sent
            || self
                .from
                .as_ref()
                .is_some_and(|from| from.address.eq_ignore_ascii_case(owner))
    }
}

/// Where the reading of a mailbox stands: a position that only grows
/// (Gmail's history id; IMAP's UIDVALIDITY and UIDNEXT packed; for Outlook,
/// the number of delta rounds) and, where the provider hands out an opaque
/// cursor (Graph's delta link), that cursor. Moving it is a compare-and-set
/// on the position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailboxCursor {
    pub position: i64,
    pub link: Option<String>,
}

impl MailboxCursor {
    pub fn at(position: i64) -> MailboxCursor {
        MailboxCursor {
            position,
            link: None,
        }
    }

    /// The cursor after a round that ended at `link`.
    pub fn next_link(&self, link: String) -> MailboxCursor {
        MailboxCursor {
            position: self.position + 1,
            link: Some(link),
        }
    }
}

/// A message found by a change listing: its ids only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageRef {
    pub id: String,
    pub thread_id: String,
}

/// A conversation, its messages with headers only, oldest first as the
/// provider gives them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Thread {
    pub id: String,
    pub messages: Vec<Message>,
}

/// Why a message gets no draft. The code is stable (stats, metrics, API).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SkipReason {
    OwnMessage,
    NoReplySender,
    MailingList,
    Bulk,
    AutoSubmitted,
    SpamOrTrash,
    Promotions,
    NotInInbox,
    ThreadLatestFromOwner,
    ThreadHasDraft,
    Deleted,
    AutoDraftOff,
    NoReplyAddress,
    /// The sender is on the mailbox's never-draft list.
    SenderExcluded,
    /// Written in a language the built-in drafter does not write, with no
    /// model configured.
    UnsupportedLanguage,
    /// First-contact sales mail, on a mailbox that skips it.
    ColdOutreach,
    /// The model was less sure of its reply than the mailbox asks.
    LowConfidence,
}

impl SkipReason {
    pub fn code(self) -> &'static str {
        match self {
            SkipReason::OwnMessage => "own_message",
            SkipReason::NoReplySender => "no_reply_sender",
            SkipReason::MailingList => "mailing_list",
            SkipReason::Bulk => "bulk",
            SkipReason::AutoSubmitted => "auto_submitted",
            SkipReason::SpamOrTrash => "spam_or_trash",
            SkipReason::Promotions => "promotions",
            SkipReason::NotInInbox => "not_in_inbox",
            SkipReason::ThreadLatestFromOwner => "thread_latest_from_owner",
            SkipReason::ThreadHasDraft => "thread_has_draft",
            SkipReason::Deleted => "deleted",
            SkipReason::AutoDraftOff => "auto_draft_off",
            SkipReason::NoReplyAddress => "no_reply_address",
            SkipReason::SenderExcluded => "sender_excluded",
            SkipReason::UnsupportedLanguage => "unsupported_language",
            SkipReason::ColdOutreach => "cold_outreach",
            SkipReason::LowConfidence => "low_confidence",
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            SkipReason::OwnMessage => "The message was sent by the mailbox owner.",
            SkipReason::NoReplySender => "The sender is a no-reply address.",
            SkipReason::MailingList => "The message came through a mailing list.",
            SkipReason::Bulk => "The message is bulk mail.",
            SkipReason::AutoSubmitted => {
                "The message was sent automatically (an auto-reply or notification)."
            }
            SkipReason::SpamOrTrash => "The message is in spam or trash.",
            SkipReason::Promotions => "The message is in the promotions category.",
            SkipReason::NotInInbox => "The message is no longer in the inbox.",
            SkipReason::ThreadLatestFromOwner => {
                "The newest message in the conversation is the owner's."
            }
            SkipReason::ThreadHasDraft => {
                "The conversation already holds a draft; Mailwright never overwrites one."
            }
            SkipReason::Deleted => "The message was deleted before it could be answered.",
            SkipReason::AutoDraftOff => {
                "Auto-draft was switched off before the message was handled."
            }
            SkipReason::NoReplyAddress => "The message has no address to reply to.",
            SkipReason::SenderExcluded => "The sender is on this mailbox's never-draft list.",
            SkipReason::UnsupportedLanguage => {
                "The message is in a language the built-in drafter does not write (it writes English, German, French, Spanish and Portuguese), and no language model is configured."
            }
            SkipReason::ColdOutreach => {
                "The message reads as cold outreach or a sales pitch, which this mailbox skips."
            }
            SkipReason::LowConfidence => {
                "The language model was less sure of its reply than this mailbox asks."
            }
        }
    }
}

impl SkipReason {
    /// Whether a sender on the mailbox's always-draft list overrides it:
    /// the bulk-mail rules do; what is not the sender's mail to answer
    /// (one's own, spam, gone from the inbox) does not.
    pub fn yields_to_always(self) -> bool {
        matches!(
            self,
            SkipReason::NoReplySender
                | SkipReason::MailingList
                | SkipReason::Bulk
                | SkipReason::AutoSubmitted
                | SkipReason::Promotions
        )
    }
}

/// The rules that need only the message itself. `owner` is the mailbox's
/// address.
pub fn skip_reason_for(message: &Message, owner: &str) -> Option<SkipReason> {
    let placement = message.placement;
    if placement.spam_or_trash {
        return Some(SkipReason::SpamOrTrash);
    }
    if placement.draft || message.is_from(owner) {
        return Some(SkipReason::OwnMessage);
    }
    if placement.promotions {
        return Some(SkipReason::Promotions);
    }
    if !placement.inbox {
        return Some(SkipReason::NotInInbox);
    }
    if let Some(value) = message.header("Auto-Submitted")
        && !value.trim().eq_ignore_ascii_case("no")
    {
        return Some(SkipReason::AutoSubmitted);
    }
    if message.header("List-Id").is_some() || message.header("List-Unsubscribe").is_some() {
        return Some(SkipReason::MailingList);
    }
    if let Some(precedence) = message.header("Precedence") {
        let precedence = precedence.trim().to_ascii_lowercase();
        if precedence == "list" {
            return Some(SkipReason::MailingList);
        }
        if precedence == "bulk" || precedence == "junk" {
            return Some(SkipReason::Bulk);
        }
    }
    match &message.from {
        Some(from) if is_no_reply(&from.address) => Some(SkipReason::NoReplySender),
        _ => None,
    }
}

/// `noreply@`, `no-reply@`, `donotreply@`, `mailer-daemon@`, ...
fn is_no_reply(address: &str) -> bool {
    // `bounce+7f3a2@...`: the tag after `+` says nothing of who it is.
    let local = address
        .split('@')
        .next()
        .unwrap_or_default()
        .split('+')
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    let squashed: String = local
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect();
    squashed.starts_with("noreply")
        || squashed.starts_with("donotreply")
        || squashed.ends_with("noreply")
        || squashed == "mailerdaemon"
        || squashed == "postmaster"
        || squashed == "bounce"
        || squashed.starts_with("bounces")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A message with Gmail's label names mapped as the Gmail mailbox maps
    /// them, and `From` parsed the simple way.
    fn message(labels: &[&str], headers: &[(&str, &str)]) -> Message {
        let has = |label: &str| labels.contains(&label);
        let from = headers
            .iter()
            .find(|(name, _)| *name == "From")
            .map(|(_, value)| {
                let address = value
                    .rsplit_once('<')
                    .map_or(*value, |(_, rest)| rest.trim_end_matches('>'));
                Address {
                    name: None,
                    address: address.trim().to_owned(),
                }
            });
        Message {
            id: "m1".into(),
            thread_id: "m1".into(),
            placement: Placement {
                inbox: has("INBOX"),
                spam_or_trash: has("SPAM") || has("TRASH"),
                sent: has("SENT"),
                draft: has("DRAFT"),
                promotions: has("CATEGORY_PROMOTIONS"),
            },
            from,
            headers: headers
                .iter()
                .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
                .collect(),
            ..Message::default()
        }
    }

    const OWNER: &str = "ann@example.com";

    #[test]
    fn ordinary_mail_is_not_skipped() {
        let m = message(&["INBOX", "UNREAD"], &[("From", "Zoë <zoe@example.com>")]);
        assert_eq!(skip_reason_for(&m, OWNER), None);
    }

    #[test]
    fn each_rule_names_its_reason() {
        let from = ("From", "Zoë <zoe@example.com>");
        let cases: Vec<(Message, SkipReason)> = vec![
            (
                message(&["INBOX"], &[("From", "Ann <ANN@example.com>")]),
                SkipReason::OwnMessage,
            ),
            (message(&["INBOX", "SENT"], &[from]), SkipReason::OwnMessage),
            (
                message(&["INBOX"], &[("From", "no-reply@shop.example")]),
                SkipReason::NoReplySender,
            ),
            (
                message(
                    &["INBOX"],
                    &[("From", "Do Not Reply <donotreply@bank.example>")],
                ),
                SkipReason::NoReplySender,
            ),
            (
                message(&["INBOX"], &[("From", "MAILER-DAEMON@mx.example")]),
                SkipReason::NoReplySender,
            ),
            (
                message(&["INBOX"], &[from, ("List-Id", "<dev.lists.example>")]),
                SkipReason::MailingList,
            ),
            (
                message(&["INBOX"], &[from, ("List-Unsubscribe", "<mailto:u@x>")]),
                SkipReason::MailingList,
            ),
            (
                message(&["INBOX"], &[from, ("Precedence", "list")]),
                SkipReason::MailingList,
            ),
            (
                message(&["INBOX"], &[from, ("Precedence", "bulk")]),
                SkipReason::Bulk,
            ),
            (
                message(&["INBOX"], &[from, ("Auto-Submitted", "auto-replied")]),
                SkipReason::AutoSubmitted,
            ),
            (message(&["SPAM"], &[from]), SkipReason::SpamOrTrash),
            (
                message(&["INBOX", "TRASH"], &[from]),
                SkipReason::SpamOrTrash,
            ),
            (
                message(&["INBOX", "CATEGORY_PROMOTIONS"], &[from]),
                SkipReason::Promotions,
            ),
            (message(&["ARCHIVE"], &[from]), SkipReason::NotInInbox),
        ];
        for (m, expected) in cases {
            assert_eq!(
                skip_reason_for(&m, OWNER),
                Some(expected),
                "{:?}",
                m.headers
            );
        }
        let explicit_no = message(&["INBOX"], &[from, ("Auto-Submitted", "no")]);
        assert_eq!(skip_reason_for(&explicit_no, OWNER), None);
    }

    #[test]
    fn no_reply_detection_is_not_fooled_by_ordinary_names() {
        assert!(is_no_reply("noreply@x.example"));
        assert!(is_no_reply("no_reply@x.example"));
        assert!(is_no_reply("billing-noreply@x.example"));
        assert!(!is_no_reply("nora@x.example"));
        assert!(!is_no_reply("reply@x.example"));
    }
}
