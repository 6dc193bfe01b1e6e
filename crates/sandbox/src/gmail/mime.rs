//! RFC 822 in, Gmail's `Message.payload` out, via `mail-parser`.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE;
use mail_parser::{Address, Header, HeaderValue, MessageParser, MimeHeaders, PartType};
use serde_json::{Value, json};

/// What the sandbox needs to know about a message to store, thread and
/// search it.
#[derive(Clone, Debug, Default)]
pub struct ParsedMail {
    /// Without angle brackets.
    pub message_id: Option<String>,
    pub subject: String,
    /// `References` then `In-Reply-To`, without angle brackets.
    pub references: Vec<String>,
    pub from: Option<String>,
    pub to: Vec<String>,
    pub cc: Vec<String>,
    pub bcc: Vec<String>,
    pub has_date: bool,
    /// Plain text (or tag-stripped HTML), for snippets and search.
    pub text: String,
}

impl ParsedMail {
    pub fn recipients(&self) -> impl Iterator<Item = &String> {
        self.to.iter().chain(&self.cc).chain(&self.bcc)
    }
}

fn addresses(address: Option<&Address<'_>>) -> Vec<String> {
    address
        .map(|a| {
            a.iter()
                .filter_map(|addr| addr.address())
                .map(|s| s.trim().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

fn ids(value: &HeaderValue<'_>) -> Vec<String> {
    match value {
        HeaderValue::Text(id) => vec![id.to_string()],
        HeaderValue::TextList(list) => list.iter().map(|id| id.to_string()).collect(),
        _ => Vec::new(),
    }
}

pub fn parse(raw: &[u8]) -> ParsedMail {
    let Some(message) = MessageParser::default().parse(raw) else {
        return ParsedMail::default();
    };
    let mut references = ids(message.references());
    references.extend(ids(message.in_reply_to()));
    let text = message
        .body_text(0)
        .map(|t| t.into_owned())
        .or_else(|| message.body_html(0).map(|h| strip_tags(&h)))
        .unwrap_or_default();
    ParsedMail {
        message_id: message.message_id().map(str::to_owned),
        subject: message.subject().unwrap_or_default().to_owned(),
        references,
        from: addresses(message.from()).into_iter().next(),
        to: addresses(message.to()),
        cc: addresses(message.cc()),
        bcc: addresses(message.bcc()),
        has_date: message.date().is_some(),
        text,
    }
}

fn strip_tags(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' => {
                in_tag = false;
                out.push(' ');
            }
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    out
}

/// Gmail's `snippet`: the start of the text, whitespace collapsed, with
/// HTML special characters escaped as Gmail does (`&#39;`, `&amp;`, ...).
pub fn snippet(text: &str) -> String {
    let collapsed: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let cut: String = collapsed.chars().take(200).collect();
    crate::html::escape(&cut)
}

/// Gmail emits base64url *with* `=` padding in `raw` and `body.data`
/// (observed in published Gmail responses, e.g. a body ending `ICA=`).
pub fn encode(bytes: &[u8]) -> String {
    URL_SAFE.encode(bytes)
}

/// Accepts base64url with or without padding, as Gmail does on input.
pub fn decode(text: &str) -> Option<Vec<u8>> {
    use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
    const LENIENT: GeneralPurpose = GeneralPurpose::new(
        &base64::alphabet::URL_SAFE,
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
    );
    LENIENT.decode(text.trim()).ok()
}

/// Header name as written in the message and its unfolded value. RFC 2047
/// encoded words are decoded, as Gmail shows them decoded.
fn raw_headers(raw: &[u8], headers: &[Header<'_>]) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|h| {
            let name = raw
                .get(h.offset_field as usize..h.offset_start as usize)
                .map(|b| {
                    String::from_utf8_lossy(b)
                        .trim_end_matches([':', ' ', '\t'])
                        .trim()
                        .to_owned()
                })
                .filter(|n| !n.is_empty() && !n.contains(['\r', '\n']))
                .unwrap_or_else(|| h.name.as_str().to_owned());
            let raw_value = raw
                .get(h.offset_start as usize..h.offset_end as usize)
                .map(|b| {
                    String::from_utf8_lossy(b)
                        .replace("\r\n", "")
                        .replace('\n', "")
                })
                .unwrap_or_default();
            let raw_value = raw_value.trim().to_owned();
            let value = match &h.value {
                HeaderValue::Text(decoded) if raw_value.contains("=?") => decoded.to_string(),
                _ => raw_value,
            };
            (name, value)
        })
        .collect()
}

/// The view of a message `format` asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Minimal,
    Metadata,
    Full,
    Raw,
}

impl Format {
    pub fn parse(value: Option<&str>) -> Option<Self> {
        match value.map(str::to_ascii_lowercase).as_deref() {
            None | Some("full") => Some(Self::Full),
            Some("minimal") => Some(Self::Minimal),
            Some("metadata") => Some(Self::Metadata),
            Some("raw") => Some(Self::Raw),
            Some(_) => None,
        }
    }
}

/// `Message.payload` for `format=full` (`metadata_only` false) or
/// `format=metadata` (top-level headers only, filtered by `wanted`).
pub fn payload(raw: &[u8], metadata_only: bool, wanted: &[String]) -> Value {
    let Some(message) = MessageParser::default().parse(raw) else {
        return json!({
            "partId": "", "mimeType": "text/plain", "filename": "",
            "headers": [], "body": { "size": 0 },
        });
    };
    if metadata_only {
        let root = message.root_part();
        let headers: Vec<Value> = raw_headers(raw, &root.headers)
            .into_iter()
            .filter(|(name, _)| {
                wanted.is_empty() || wanted.iter().any(|w| w.eq_ignore_ascii_case(name))
            })
            .map(|(name, value)| json!({ "name": name, "value": value }))
            .collect();
        return json!({
            "partId": "",
            "mimeType": mime_type(root),
            "filename": "",
            "headers": headers,
        });
    }
    part_json(&message, raw, 0, String::new(), 0)
}

fn mime_type(part: &mail_parser::MessagePart<'_>) -> String {
    match part.content_type() {
        Some(ct) => match ct.subtype() {
            Some(sub) => format!("{}/{}", ct.ctype(), sub).to_ascii_lowercase(),
            None => ct.ctype().to_ascii_lowercase(),
        },
        None => "text/plain".to_owned(),
    }
}

fn part_json(
    message: &mail_parser::Message<'_>,
    raw: &[u8],
    index: u32,
    part_id: String,
    depth: usize,
) -> Value {
    let Some(part) = message.part(index) else {
        return json!({ "partId": part_id, "mimeType": "text/plain", "filename": "", "headers": [], "body": { "size": 0 } });
    };
    let headers: Vec<Value> = raw_headers(raw, &part.headers)
        .into_iter()
        .map(|(name, value)| json!({ "name": name, "value": value }))
        .collect();
    let mut out = json!({
        "partId": part_id,
        "mimeType": mime_type(part),
        "filename": part.attachment_name().unwrap_or_default(),
        "headers": headers,
    });
    match &part.body {
        // A malicious message could nest without bound; Gmail flattens too.
        PartType::Multipart(children) if depth < 32 => {
            out["body"] = json!({ "size": 0 });
            let parts: Vec<Value> = children
                .iter()
                .enumerate()
                .map(|(i, child)| {
                    let child_id = if part_id.is_empty() {
                        i.to_string()
                    } else {
                        format!("{part_id}.{i}")
                    };
                    part_json(message, raw, *child, child_id, depth + 1)
                })
                .collect();
            out["parts"] = Value::Array(parts);
        }
        _ => {
            let contents = part.contents();
            out["body"] = if contents.is_empty() {
                json!({ "size": 0 })
            } else {
                json!({ "size": contents.len(), "data": encode(contents) })
            };
        }
    }
    out
}

/// The message as a recipient sees it: `Bcc` (with its folded lines)
/// removed from the top-level header block.
pub fn without_bcc(raw: &[u8]) -> Vec<u8> {
    let header_end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|p| p + 2)
        .or_else(|| raw.windows(2).position(|w| w == b"\n\n").map(|p| p + 1))
        .unwrap_or(raw.len());
    let (headers, body) = raw.split_at(header_end);
    let mut out = Vec::with_capacity(raw.len());
    let mut skipping = false;
    for line in headers.split_inclusive(|b| *b == b'\n') {
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

/// Strips `Re:`/`Fwd:`/`Fw:` prefixes (repeatedly) for thread matching.
pub fn normalized_subject(subject: &str) -> String {
    let mut s = subject.trim();
    loop {
        let lower = s.to_ascii_lowercase();
        let stripped = ["re:", "fwd:", "fw:"]
            .iter()
            .find(|p| lower.starts_with(*p))
            .map(|p| s[p.len()..].trim_start());
        match stripped {
            Some(rest) => s = rest,
            None => return s.to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MULTIPART: &str = "From: Ann <ann@example.com>\r\nTo: bob@example.com, Carl <carl@example.com>\r\nSubject: =?UTF-8?Q?Caf=C3=A9?= plans\r\nMessage-ID: <m1@example.com>\r\nReferences: <r0@example.com>\r\n <r1@example.com>\r\nIn-Reply-To: <r1@example.com>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=\"b1\"\r\n\r\n--b1\r\nContent-Type: text/plain; charset=UTF-8\r\n\r\nHello Bob & co\r\n--b1\r\nContent-Type: text/html; charset=UTF-8\r\n\r\n<p>Hello</p>\r\n--b1--\r\n";

    #[test]
    fn parses_threading_headers_and_recipients() {
        let parsed = parse(MULTIPART.as_bytes());
        assert_eq!(parsed.message_id.as_deref(), Some("m1@example.com"));
        assert_eq!(parsed.subject, "Café plans");
        assert_eq!(
            parsed.references,
            vec!["r0@example.com", "r1@example.com", "r1@example.com"]
        );
        assert_eq!(parsed.to, vec!["bob@example.com", "carl@example.com"]);
        assert_eq!(parsed.from.as_deref(), Some("ann@example.com"));
        assert!(parsed.text.starts_with("Hello Bob & co"));
        assert_eq!(snippet(&parsed.text), "Hello Bob &amp; co");
    }

    #[test]
    fn payload_has_gmail_part_ids_headers_and_padded_base64url_bodies() {
        let payload = payload(MULTIPART.as_bytes(), false, &[]);
        assert_eq!(payload["partId"], "");
        assert_eq!(payload["mimeType"], "multipart/alternative");
        assert_eq!(payload["body"], json!({ "size": 0 }));
        let headers = payload["headers"].as_array().unwrap();
        assert!(headers.contains(&json!({ "name": "Subject", "value": "Café plans" })));
        assert!(headers.contains(
            &json!({ "name": "References", "value": "<r0@example.com> <r1@example.com>" })
        ));
        let parts = payload["parts"].as_array().unwrap();
        assert_eq!(parts[0]["partId"], "0");
        assert_eq!(parts[0]["mimeType"], "text/plain");
        assert_eq!(parts[1]["partId"], "1");
        let data = parts[0]["body"]["data"].as_str().unwrap();
        assert_eq!(decode(data).unwrap(), b"Hello Bob & co");
        assert_eq!(parts[0]["body"]["size"], 14);
        assert!(data.ends_with('='), "padded like Gmail: {data}");
    }

    #[test]
    fn metadata_payload_filters_headers_case_insensitively() {
        let payload = payload(
            MULTIPART.as_bytes(),
            true,
            &["subject".to_owned(), "FROM".to_owned()],
        );
        let names: Vec<&str> = payload["headers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, vec!["From", "Subject"]);
        assert!(payload.get("parts").is_none());
    }

    #[test]
    fn bcc_is_removed_for_recipients_only_in_headers() {
        let raw =
            b"From: a@x\r\nBcc: hidden@x,\r\n more@x\r\nTo: b@x\r\n\r\nBcc: stays in body\r\n";
        let stripped = without_bcc(raw);
        assert_eq!(
            stripped,
            b"From: a@x\r\nTo: b@x\r\n\r\nBcc: stays in body\r\n"
        );
        assert_eq!(parse(&stripped).bcc, Vec::<String>::new());
        assert_eq!(parse(raw).bcc, vec!["hidden@x", "more@x"]);
    }

    #[test]
    fn subject_normalization_strips_reply_and_forward_prefixes() {
        assert_eq!(normalized_subject("Re: RE: Fwd: hello"), "hello");
        assert_eq!(normalized_subject("Fw:hello "), "hello");
        assert_eq!(normalized_subject("Regarding"), "Regarding");
    }

    #[test]
    fn decode_accepts_unpadded_and_rejects_standard_alphabet() {
        assert_eq!(decode("aGk").unwrap(), b"hi");
        assert_eq!(decode("aGk=").unwrap(), b"hi");
        assert!(decode("a+/=").is_none());
        assert!(decode("not base64!").is_none());
    }
}
