//! A message fetched by IMAP (raw RFC 5322) as the engine sees mail, and
//! the conversation it belongs to. IMAP has no thread ids: a conversation is
//! named by its first message's `Message-ID` (the first of `References`, else
//! `In-Reply-To`, else the message's own), which every reply carries.

use domain::mail::{Address, Message, Placement};
use mail_parser::{HeaderValue, MessageParser};

use crate::google::message::{message_ids, quote_display_name, text_of_html};

/// `raw` as a [`Message`] with the given ids, placement and receipt time.
/// A message too broken to parse still has its ids (and no headers).
pub fn to_mail(id: String, raw: &[u8], placement: Placement, received_at_millis: i64) -> Message {
    let Some(parsed) = MessageParser::default().parse(raw) else {
        return Message {
            thread_id: id.clone(),
            id,
            placement,
            received_at_millis,
            ..Message::default()
        };
    };
    let headers: Vec<(String, String)> = parsed
        .headers()
        .iter()
        .map(|header| {
            let start = header.offset_start as usize;
            let end = (header.offset_end as usize).min(raw.len());
            let written = unfold(&String::from_utf8_lossy(
                raw.get(start..end).unwrap_or_default(),
            ));
            // Encoded words (RFC 2047) are decoded where people read them;
            // ids (`Message-ID`, `References`) stay as written, brackets and all.
            let value = match &header.value {
                HeaderValue::Text(text) if written.contains("=?") => text.to_string(),
                HeaderValue::Address(address) if written.contains("=?") => address
                    .iter()
                    .filter_map(|a| {
                        let email = a.address()?;
                        Some(match a.name() {
                            Some(name) => format!("{} <{email}>", quote_display_name(name)),
                            None => email.to_owned(),
                        })
                    })
                    .collect::<Vec<_>>()
                    .join(", "),
                _ => written,
            };
            (header.name.as_str().to_owned(), value)
        })
        .collect();
    let address = |value: Option<&mail_parser::Address<'_>>| {
        value.and_then(|list| list.first()).and_then(|first| {
            Some(Address {
                name: first
                    .name()
                    .map(str::to_owned)
                    .filter(|n| !n.trim().is_empty()),
                address: first.address()?.to_owned(),
            })
        })
    };
    let text = if parsed.text_body.first().is_some_and(|&part| {
        parsed
            .part(part)
            .is_some_and(|p| matches!(p.body, mail_parser::PartType::Text(_)))
    }) {
        parsed
            .body_text(0)
            .map(|t| t.into_owned())
            .unwrap_or_default()
    } else {
        parsed
            .body_html(0)
            .map(|html| text_of_html(&html))
            .unwrap_or_default()
    };
    let mut message = Message {
        id,
        thread_id: String::new(),
        placement,
        received_at_millis,
        from: address(parsed.from()),
        reply_to: address(parsed.reply_to()),
        headers,
        text,
        label_ids: Vec::new(),
        has_attachment: parsed.attachment_count() > 0,
    };
    message.thread_id = conversation_of(&message);
    message
}

/// The `Message-ID` that names `message`'s conversation; the message's own
/// id when it has none at all.
pub fn conversation_of(message: &Message) -> String {
    for header in ["References", "In-Reply-To", "Message-ID"] {
        if let Some(first) = message
            .header(header)
            .and_then(|value| message_ids(value).into_iter().next())
        {
            return first;
        }
    }
    message.id.clone()
}

/// The `Message-ID` of the RFC 5322 message `raw`.
pub fn header_message_id(raw: &[u8]) -> Option<String> {
    let message = to_mail(String::new(), raw, Placement::default(), 0);
    message
        .header("Message-ID")
        .and_then(|value| message_ids(value).into_iter().next())
}

/// `raw` without its `Bcc` header (folded lines too): recipients must not
/// see it; the envelope carries those addresses.
pub fn without_bcc(raw: &[u8]) -> Vec<u8> {
    let header_end = raw
        .windows(4)
        .position(|window| window == b"\r\n\r\n")
        .map(|position| position + 2)
        .or_else(|| raw.windows(2).position(|w| w == b"\n\n").map(|p| p + 1))
        .unwrap_or(raw.len());
    let (headers, body) = raw.split_at(header_end);
    let mut out = Vec::with_capacity(raw.len());
    let mut skipping = false;
    for line in headers.split_inclusive(|byte| *byte == b'\n') {
        let continuation = line.first().is_some_and(|b| *b == b' ' || *b == b'\t');
        if !continuation {
            skipping = line.len() >= 4 && line[..4].eq_ignore_ascii_case(b"bcc:");
        }
        if !skipping {
            out.extend_from_slice(line);
        }
    }
    out.extend_from_slice(body);
    out
}

/// A header value on one line (folding removed).
fn unfold(value: &str) -> String {
    value.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reply_names_its_conversation_by_the_first_message() {
        let raw = b"From: =?utf-8?q?J=C3=B6rg?= <jorg@example.com>\r\n\
Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=\r\n\
Message-ID: <c@example.com>\r\n\
In-Reply-To: <b@example.com>\r\n\
References: <a@example.com>\r\n <b@example.com>\r\n\
Content-Type: text/plain; charset=utf-8\r\n\r\nHello there\r\n";
        let message = to_mail("7:3:INBOX".into(), raw, Placement::default(), 5);
        assert_eq!(message.thread_id, "<a@example.com>");
        assert_eq!(message.header("Subject"), Some("Grüße"));
        assert_eq!(
            message.header("References"),
            Some("<a@example.com> <b@example.com>")
        );
        let from = message.from.unwrap();
        assert_eq!(
            (from.name.as_deref(), from.address.as_str()),
            (Some("Jörg"), "jorg@example.com")
        );
        assert_eq!(message.text.trim(), "Hello there");
    }

    #[test]
    fn html_only_mail_is_read_as_text_and_a_first_message_names_itself() {
        let raw = b"From: a@example.com\r\nMessage-ID: <only@example.com>\r\n\
Content-Type: text/html\r\n\r\n<p>Hi <b>you</b></p>\r\n";
        let message = to_mail("1:1:INBOX".into(), raw, Placement::default(), 0);
        assert_eq!(message.thread_id, "<only@example.com>");
        assert!(message.text.contains("Hi"), "{:?}", message.text);
        assert!(!message.text.contains("<b>"));
    }
}
