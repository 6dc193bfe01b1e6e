//! RFC 5322 messages for Gmail, built with lettre: UTF-8 subjects and names
//! encoded, a Message-ID chosen by Mailwright, multipart text/html when the
//! body is HTML.

use lettre::message::{Mailbox, Message, MultiPart, SinglePart, header::ContentType};

pub struct Outgoing<'a> {
    pub from: &'a str,
    pub to: &'a [String],
    pub cc: &'a [String],
    pub bcc: &'a [String],
    pub subject: &'a str,
    pub body: &'a str,
    /// `<...@...>`, chosen by Mailwright so a retry can find it again.
    pub message_id: &'a str,
}

fn mailbox(text: &str) -> Result<Mailbox, String> {
    text.parse()
        .map_err(|_| format!("`{text}` is not an address"))
}

/// Looks like HTML: the author wrote tags.
fn is_html(body: &str) -> bool {
    let lower = body.to_ascii_lowercase();
    [
        "<html", "<p>", "<br", "<div", "<a href", "<strong>", "<table", "</",
    ]
    .iter()
    .any(|tag| lower.contains(tag))
}

/// The text version of an HTML body: tags dropped, entities left as they are.
fn text_of(html: &str) -> String {
    let mut text = String::with_capacity(html.len());
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' => in_tag = false,
            c if !in_tag => text.push(c),
            _ => {}
        }
    }
    text
}

pub fn rfc822(message: &Outgoing<'_>) -> Result<Vec<u8>, String> {
    let mut builder = Message::builder()
        .from(mailbox(message.from)?)
        .subject(message.subject)
        .message_id(Some(message.message_id.to_owned()));
    for to in message.to {
        builder = builder.to(mailbox(to)?);
    }
    for cc in message.cc {
        builder = builder.cc(mailbox(cc)?);
    }
    for bcc in message.bcc {
        builder = builder.bcc(mailbox(bcc)?);
    }
    let built = if is_html(message.body) {
        builder.multipart(
            MultiPart::alternative()
                .singlepart(
                    SinglePart::builder()
                        .header(ContentType::TEXT_PLAIN)
                        .body(text_of(message.body)),
                )
                .singlepart(
                    SinglePart::builder()
                        .header(ContentType::TEXT_HTML)
                        .body(message.body.to_owned()),
                ),
        )
    } else {
        builder.singlepart(
            SinglePart::builder()
                .header(ContentType::TEXT_PLAIN)
                .body(message.body.to_owned()),
        )
    };
    built
        .map(|message| message.formatted())
        .map_err(|error| format!("the message could not be built ({error})"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_a_message_with_our_id_and_encoded_utf8() {
        let to = vec!["Zoë <zoe@example.com>".to_owned()];
        let raw = rfc822(&Outgoing {
            from: "ann@example.com",
            to: &to,
            cc: &[],
            bcc: &[],
            subject: "Grüße aus Köln",
            body: "Hallo",
            message_id: "<run-1.0@mailwright>",
        })
        .unwrap();
        let text = String::from_utf8(raw).unwrap();
        assert!(text.contains("Message-ID: <run-1.0@mailwright>"), "{text}");
        assert!(
            text.contains("Subject: =?utf-8?"),
            "UTF-8 subject encoded: {text}"
        );
        assert!(
            text.contains("To: =?utf-8?") || text.contains("To: \"Zo"),
            "{text}"
        );
        assert!(text.contains("Content-Type: text/plain"));
    }

    #[test]
    fn html_bodies_get_both_parts() {
        let to = vec!["zoe@example.com".to_owned()];
        let raw = rfc822(&Outgoing {
            from: "ann@example.com",
            to: &to,
            cc: &[],
            bcc: &[],
            subject: "Hi",
            body: "<p>Hello <strong>Zoë</strong></p>",
            message_id: "<x@mailwright>",
        })
        .unwrap();
        let text = String::from_utf8(raw).unwrap();
        assert!(
            text.contains("multipart/alternative")
                && text.contains("text/html")
                && text.contains("text/plain")
        );
    }
}
