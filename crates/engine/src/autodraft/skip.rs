//! Which messages get no draft, and why.

use super::*;

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
        }
    }
}

/// The rules that need only the message itself. `owner` is the mailbox's
/// address.
pub fn skip_reason_for(message: &GmailMessage, owner: &str) -> Option<SkipReason> {
    if message.has_label("SPAM") || message.has_label("TRASH") {
        return Some(SkipReason::SpamOrTrash);
    }
    let from_address = message
        .header("From")
        .and_then(parse_mailbox)
        .map(|(_, address)| address);
    if message.has_label("SENT")
        || message.has_label("DRAFT")
        || from_address
            .as_deref()
            .is_some_and(|from| from.eq_ignore_ascii_case(owner))
    {
        return Some(SkipReason::OwnMessage);
    }
    if message.has_label("CATEGORY_PROMOTIONS") {
        return Some(SkipReason::Promotions);
    }
    if !message.has_label("INBOX") {
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
    match from_address {
        Some(address) if is_no_reply(&address) => Some(SkipReason::NoReplySender),
        _ => None,
    }
}

/// `noreply@`, `no-reply@`, `donotreply@`, `mailer-daemon@`, ...
fn is_no_reply(address: &str) -> bool {
    let local = address
        .split('@')
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
    use providers::google::gmail::{MessageHeader, MessagePart};

    fn message(labels: &[&str], headers: &[(&str, &str)]) -> GmailMessage {
        GmailMessage {
            id: "m1".into(),
            thread_id: "m1".into(),
            label_ids: labels.iter().map(|l| (*l).to_owned()).collect(),
            internal_date: None,
            payload: Some(MessagePart {
                headers: headers
                    .iter()
                    .map(|(name, value)| MessageHeader {
                        name: (*name).to_owned(),
                        value: (*value).to_owned(),
                    })
                    .collect(),
                ..MessagePart::default()
            }),
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
        let cases: Vec<(GmailMessage, SkipReason)> = vec![
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
                m.payload
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
