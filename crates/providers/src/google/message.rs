//! RFC 5322 messages for Gmail, built with lettre: UTF-8 subjects and names
//! encoded, a Message-ID chosen by Mailwright, multipart text/html when the
//! body is HTML.

use lettre::message::header::{ContentType, Header, HeaderName, HeaderValue};
use lettre::message::{Mailbox, Message, MultiPart, SinglePart};

pub struct Outgoing<'a> {
    pub from: &'a str,
    pub to: &'a [String],
    pub cc: &'a [String],
    pub bcc: &'a [String],
    pub subject: &'a str,
    pub body: &'a str,
    /// `<...@...>`, chosen by Mailwright so a retry can find it again.
    pub message_id: &'a str,
    /// A reply: the original's Message-ID.
    pub in_reply_to: Option<&'a str>,
    /// A reply: the original's References, then its Message-ID.
    pub references: &'a [String],
    /// Written by a program in answer to a message: marked
    /// `Auto-Submitted: auto-replied` (RFC 3834), so auto-responders do not
    /// answer it and mail loops end.
    pub auto_replied: bool,
}

#[derive(Clone)]
struct AutoSubmitted;

impl Header for AutoSubmitted {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("Auto-Submitted")
    }

    fn parse(_: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(AutoSubmitted)
    }

    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), "auto-replied".to_owned())
    }
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
pub fn text_of_html(html: &str) -> String {
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

/// A Gmail signature (HTML) as the plain text a draft ends with: line
/// breaks kept, tags dropped, the common entities decoded, at most 2,000
/// characters.
pub fn signature_text(html: &str) -> String {
    let mut marked = html.to_owned();
    for tag in [
        "<br>", "<br/>", "<br />", "</div>", "</p>", "<BR>", "</DIV>", "</P>",
    ] {
        marked = marked.replace(tag, &format!("{tag}\n"));
    }
    let text = text_of_html(&marked)
        .replace("&nbsp;", " ")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&");
    let lines: Vec<&str> = text.lines().map(str::trim_end).collect();
    let joined = lines.join("\n");
    joined.trim().chars().take(2000).collect()
}

pub fn rfc822(message: &Outgoing<'_>) -> Result<Vec<u8>, String> {
    let mut builder = Message::builder()
        .from(mailbox(message.from)?)
        .subject(message.subject)
        .message_id(Some(message.message_id.to_owned()));
    if let Some(original) = message.in_reply_to {
        builder = builder.in_reply_to(original.to_owned());
    }
    if !message.references.is_empty() {
        builder = builder.references(message.references.join(" "));
    }
    if message.auto_replied {
        builder = builder.header(AutoSubmitted);
    }
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
                        .body(text_of_html(message.body)),
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

/// The header naming the inbound message a reply draft answers: how a retry
/// recognises a draft it already created.
pub const SOURCE_HEADER: &str = "X-Mailwright-Source";

#[derive(Clone)]
struct SourceHeader(String);

impl Header for SourceHeader {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str(SOURCE_HEADER)
    }

    fn parse(s: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(SourceHeader(s.to_owned()))
    }

    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), self.0.clone())
    }
}

/// A reply draft: threading headers from the original, our Message-ID and
/// source header, plain text.
pub struct Reply<'a> {
    pub from_name: Option<&'a str>,
    pub from_address: &'a str,
    /// `Name <addr>` or `addr`: the original's Reply-To or From.
    pub to: &'a str,
    /// Already `Re: ...`.
    pub subject: &'a str,
    pub body: &'a str,
    pub message_id: &'a str,
    /// The original's Message-ID (`<...>`), when it had one.
    pub in_reply_to: Option<&'a str>,
    /// The original's References followed by its Message-ID.
    pub references: &'a [String],
    /// The mailbox's id of the message answered.
    pub source: &'a str,
}

/// Message ids from a header value: `<...>` tokens only, so nothing else an
/// outside message wrote (spaces, line breaks) reaches our headers.
pub fn message_ids(value: &str) -> Vec<String> {
    value
        .split(|c: char| c.is_whitespace() || c == ',')
        .filter(|token| {
            token.len() > 2
                && token.len() <= 998
                && token.starts_with('<')
                && token.ends_with('>')
                && token[1..token.len() - 1]
                    .chars()
                    .all(|c| c.is_ascii_graphic() && c != '<' && c != '>')
        })
        .map(str::to_owned)
        .collect()
}

/// A `From`/`Reply-To` value as (display name, address); `None` when it
/// holds no usable address.
pub fn parse_mailbox(value: &str) -> Option<(Option<String>, String)> {
    let value = value.trim();
    if let Ok(parsed) = value.parse::<Mailbox>() {
        let name = parsed
            .name
            .map(|name| name.trim().to_owned())
            .filter(|name| !name.is_empty());
        return Some((name, parsed.email.to_string()));
    }
    // Lenient fallback for names lettre will not parse: take what is in <...>.
    let (before, rest) = value.rsplit_once('<')?;
    let address = rest.strip_suffix('>')?.trim();
    let parsed: lettre::Address = address.parse().ok()?;
    let name = before.trim().trim_matches('"').trim().to_owned();
    Some(((!name.is_empty()).then_some(name), parsed.to_string()))
}

/// The bare addresses of an address-list header (`To`, `Cc`); what does
/// not parse is left out.
pub fn address_list(value: &str) -> Vec<String> {
    if let Ok(mailboxes) = value.parse::<lettre::message::Mailboxes>() {
        return mailboxes
            .into_iter()
            .map(|mailbox| mailbox.email.to_string())
            .collect();
    }
    // A name lettre will not parse: each comma-separated part on its own.
    value
        .split(',')
        .filter_map(parse_mailbox)
        .map(|(_, address)| address)
        .collect()
}

/// How a reply to a message is addressed and threaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplyHeaders {
    /// The original's `Reply-To`, else its `From`.
    pub to: domain::mail::Address,
    /// `to` as the header's value (the name quoted when it needs to be).
    pub to_header: String,
    /// The original's `Message-ID`.
    pub in_reply_to: Option<String>,
    /// The original's `References`, then its `Message-ID`.
    pub references: Vec<String>,
}

/// How a reply to `source` is threaded: its Message-ID (`In-Reply-To`),
/// and its References followed by that Message-ID.
pub fn threading(source: &domain::mail::Message) -> (Option<String>, Vec<String>) {
    let in_reply_to = source
        .header("Message-ID")
        .map(message_ids)
        .and_then(|ids| ids.into_iter().next());
    let mut references = source
        .header("References")
        .map(message_ids)
        .unwrap_or_default();
    if let Some(original) = &in_reply_to
        && !references.contains(original)
    {
        references.push(original.clone());
    }
    (in_reply_to, references)
}

/// The addressing of a reply to `source`; `None` when it has no address to
/// reply to.
pub fn reply_headers(source: &domain::mail::Message) -> Option<ReplyHeaders> {
    let to = source.reply_to.clone().or_else(|| source.from.clone())?;
    let to_header = match &to.name {
        Some(name) => format!("{} <{}>", quote_display_name(name), to.address),
        None => to.address.clone(),
    };
    let (in_reply_to, references) = threading(source);
    Some(ReplyHeaders {
        to,
        to_header,
        in_reply_to,
        references,
    })
}

/// A display name as it goes in a header: quoted when it holds specials.
pub fn quote_display_name(name: &str) -> String {
    let cleaned: String = name
        .chars()
        .filter(|c| !c.is_control() && *c != '"' && *c != '\\')
        .collect();
    if cleaned.chars().any(|c| "()<>[]:;@\\,.".contains(c)) {
        format!("\"{cleaned}\"")
    } else {
        cleaned
    }
}

pub fn reply_rfc822(reply: &Reply<'_>) -> Result<Vec<u8>, String> {
    let from = Mailbox::new(
        reply.from_name.map(str::to_owned),
        reply
            .from_address
            .parse()
            .map_err(|_| format!("`{}` is not an address", reply.from_address))?,
    );
    // Gmail's ids are alphanumeric, IMAP's `7:12:INBOX`: nothing that could
    // end the header or start another.
    if reply.source.is_empty()
        || reply.source.len() > 256
        || !reply.source.chars().all(|c| c.is_ascii_graphic())
    {
        return Err("the source message id is malformed".into());
    }
    let mut builder = Message::builder()
        .from(from)
        .to(mailbox(reply.to)?)
        .subject(reply.subject)
        .message_id(Some(reply.message_id.to_owned()))
        .header(SourceHeader(reply.source.to_owned()));
    if let Some(original) = reply.in_reply_to {
        builder = builder.in_reply_to(original.to_owned());
    }
    if !reply.references.is_empty() {
        builder = builder.references(reply.references.join(" "));
    }
    builder
        .singlepart(
            SinglePart::builder()
                .header(ContentType::TEXT_PLAIN)
                .body(reply.body.to_owned()),
        )
        .map(|message| message.formatted())
        .map_err(|error| format!("the draft could not be built ({error})"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_keeps_its_lines_and_loses_its_tags() {
        assert_eq!(
            signature_text(
                "<div dir=\"ltr\"><b>Ann Example</b><br>Head of Sales &amp; Ops<br/><a href=\"https://x\">example.com</a></div>"
            ),
            "Ann Example\nHead of Sales & Ops\nexample.com"
        );
        assert_eq!(signature_text("  "), "");
    }

    #[test]
    fn display_names_with_specials_are_quoted() {
        assert_eq!(quote_display_name("Zoë Martin"), "Zoë Martin");
        assert_eq!(quote_display_name("Martin, Zoë"), "\"Martin, Zoë\"");
        assert_eq!(quote_display_name("A \"B\" C"), "A B C");
    }

    #[test]
    fn a_reply_goes_to_reply_to_and_threads_under_the_original() {
        let address = |name: Option<&str>, address: &str| domain::mail::Address {
            name: name.map(str::to_owned),
            address: address.to_owned(),
        };
        let source = domain::mail::Message {
            from: Some(address(Some("Zoë"), "zoe@example.com")),
            reply_to: Some(address(Some("Martin, Zoë"), "team@example.com")),
            headers: vec![
                ("Message-ID".into(), "<b@x>".into()),
                ("References".into(), "<a@x>".into()),
            ],
            ..domain::mail::Message::default()
        };
        let reply = reply_headers(&source).unwrap();
        assert_eq!(reply.to_header, "\"Martin, Zoë\" <team@example.com>");
        assert_eq!(reply.in_reply_to.as_deref(), Some("<b@x>"));
        assert_eq!(reply.references, ["<a@x>", "<b@x>"]);
        let nobody = domain::mail::Message::default();
        assert!(reply_headers(&nobody).is_none());
    }

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
            in_reply_to: None,
            references: &[],
            auto_replied: false,
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
            in_reply_to: None,
            references: &[],
            auto_replied: false,
        })
        .unwrap();
        let text = String::from_utf8(raw).unwrap();
        assert!(
            text.contains("multipart/alternative")
                && text.contains("text/html")
                && text.contains("text/plain")
        );
    }

    #[test]
    fn reply_carries_threading_and_source_headers() {
        let references = vec!["<a@x>".to_owned(), "<b@x>".to_owned()];
        let raw = reply_rfc822(&Reply {
            from_name: Some("Ann Example"),
            from_address: "ann@example.com",
            to: "Zoë <zoe@example.com>",
            subject: "Re: Grüße",
            body: "Hi Zoë,\n\nThanks.\n\n> quoted",
            message_id: "<autodraft-1@mailwright>",
            in_reply_to: Some("<b@x>"),
            references: &references,
            source: "18c0ffee",
        })
        .unwrap();
        let text = String::from_utf8(raw).unwrap();
        assert!(text.contains("In-Reply-To: <b@x>"), "{text}");
        assert!(text.contains("References: <a@x> <b@x>"), "{text}");
        assert!(text.contains("X-Mailwright-Source: 18c0ffee"), "{text}");
        assert!(
            text.contains("Message-ID: <autodraft-1@mailwright>"),
            "{text}"
        );
    }

    #[test]
    fn mailboxes_parse_with_and_without_names() {
        assert_eq!(
            parse_mailbox("Zoë Martin <zoe@example.com>"),
            Some((Some("Zoë Martin".into()), "zoe@example.com".into()))
        );
        assert_eq!(
            parse_mailbox("\"Martin, Zoë\" <zoe@example.com>"),
            Some((Some("Martin, Zoë".into()), "zoe@example.com".into()))
        );
        assert_eq!(
            parse_mailbox("zoe@example.com"),
            Some((None, "zoe@example.com".into()))
        );
        assert_eq!(parse_mailbox("undisclosed-recipients:;"), None);
    }

    #[test]
    fn message_ids_keep_only_bracketed_tokens() {
        assert_eq!(
            message_ids("<a@x>\r\n <b@x>, junk <c d> <>"),
            vec!["<a@x>".to_owned(), "<b@x>".to_owned()]
        );
    }
}
