//! The Outlook mailbox model behind the Graph mail endpoints: folders,
//! messages, their JSON (`message` resource) and MIME forms, threading,
//! `$filter`/`$select`/`$expand` and the change log that delta reads.

use std::collections::VecDeque;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::{MicrosoftAccount, World};
use crate::state::random_token;

/// The well-known folders every sandbox mailbox has, by Graph's names.
pub const WELL_KNOWN_FOLDERS: [&str; 5] =
    ["inbox", "drafts", "sentitems", "deleteditems", "junkemail"];
/// Removals remembered per mailbox for delta; older delta tokens get 410.
const MAX_REMOVALS: usize = 10_000;
/// `bodyPreview` length.
const PREVIEW_CHARS: usize = 255;

/// Graph's `emailAddress`: `{"name": .., "address": ..}`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmailAddress {
    pub name: String,
    pub address: String,
}

impl EmailAddress {
    pub fn new(address: &str) -> Self {
        EmailAddress {
            name: address.to_owned(),
            address: address.to_owned(),
        }
    }

    fn recipient(&self) -> Value {
        json!({"emailAddress": {"name": self.name, "address": self.address}})
    }

    fn header(&self) -> String {
        if self.name.is_empty() || self.name == self.address {
            return self.address.clone();
        }
        let name = if self.name.is_ascii() {
            format!("\"{}\"", self.name.replace(['"', '\\'], ""))
        } else {
            encode_word(&self.name)
        };
        format!("{name} <{}>", self.address)
    }
}

pub(crate) struct Folder {
    pub id: String,
    pub well_known: &'static str,
}

/// One message of a mailbox.
#[derive(Clone, Debug)]
pub(crate) struct Message {
    pub id: String,
    pub conversation_id: String,
    /// With angle brackets, as Graph shows it.
    pub internet_message_id: String,
    pub subject: String,
    pub from: Option<EmailAddress>,
    pub sender: Option<EmailAddress>,
    pub to: Vec<EmailAddress>,
    pub cc: Vec<EmailAddress>,
    pub bcc: Vec<EmailAddress>,
    pub reply_to: Vec<EmailAddress>,
    pub created: DateTime<Utc>,
    pub modified: DateTime<Utc>,
    pub received: DateTime<Utc>,
    pub sent: Option<DateTime<Utc>>,
    pub is_draft: bool,
    pub is_read: bool,
    pub folder_id: String,
    pub html: bool,
    pub content: String,
    /// `X-` headers given when the draft was created.
    pub custom_headers: Vec<(String, String)>,
    /// `singleValueExtendedProperties`: (id, value).
    pub extended: Vec<(String, String)>,
    /// With angle brackets.
    pub in_reply_to: Option<String>,
    pub references: Vec<String>,
    /// The MIME text of inbound mail, as delivered.
    pub raw: Option<String>,
    /// The world's change sequence at the last change (for delta).
    pub change_seq: u64,
    /// Insertion order (ties of `receivedDateTime`).
    pub order: u64,
}

impl Message {
    /// An empty draft of `owner`, not yet stored.
    pub fn draft(owner: &MicrosoftAccount, drafts_folder: &str) -> Message {
        let now = Utc::now();
        let me = EmailAddress {
            name: owner.display_name.clone(),
            address: owner.email.clone(),
        };
        Message {
            id: message_id(),
            conversation_id: conversation_id(),
            internet_message_id: internet_message_id(),
            subject: String::new(),
            from: Some(me.clone()),
            sender: Some(me),
            to: Vec::new(),
            cc: Vec::new(),
            bcc: Vec::new(),
            reply_to: Vec::new(),
            created: now,
            modified: now,
            received: now,
            sent: None,
            is_draft: true,
            is_read: true,
            folder_id: drafts_folder.to_owned(),
            html: false,
            content: String::new(),
            custom_headers: Vec::new(),
            extended: Vec::new(),
            in_reply_to: None,
            references: Vec::new(),
            raw: None,
            change_seq: 0,
            order: 0,
        }
    }

    pub fn text(&self) -> String {
        if self.html {
            strip_tags(&self.content)
        } else {
            self.content.clone()
        }
    }

    fn preview(&self) -> String {
        let text = self.text();
        let collapsed = text.split_whitespace().collect::<Vec<_>>().join(" ");
        collapsed.chars().take(PREVIEW_CHARS).collect()
    }

    /// The header block: the delivered one for inbound mail, else made up
    /// from the properties.
    pub fn headers(&self) -> Vec<(String, String)> {
        if let Some(raw) = &self.raw {
            return parse_headers(raw);
        }
        let join = |list: &[EmailAddress]| {
            list.iter()
                .map(EmailAddress::header)
                .collect::<Vec<_>>()
                .join(", ")
        };
        let mut headers = Vec::new();
        if let Some(from) = &self.from {
            headers.push(("From".to_owned(), from.header()));
        }
        for (name, list) in [("To", &self.to), ("Cc", &self.cc), ("Bcc", &self.bcc)] {
            if !list.is_empty() {
                headers.push((name.to_owned(), join(list)));
            }
        }
        if !self.reply_to.is_empty() {
            headers.push(("Reply-To".to_owned(), join(&self.reply_to)));
        }
        let subject = if self.subject.is_ascii() {
            self.subject.replace(['\r', '\n'], " ")
        } else {
            encode_word(&self.subject)
        };
        headers.push(("Subject".to_owned(), subject));
        headers.push((
            "Date".to_owned(),
            self.sent.unwrap_or(self.created).to_rfc2822(),
        ));
        headers.push(("Message-ID".to_owned(), self.internet_message_id.clone()));
        if let Some(parent) = &self.in_reply_to {
            headers.push(("In-Reply-To".to_owned(), parent.clone()));
        }
        if !self.references.is_empty() {
            headers.push(("References".to_owned(), self.references.join(" ")));
        }
        for (name, value) in &self.custom_headers {
            headers.push((name.clone(), value.replace(['\r', '\n'], " ")));
        }
        headers.push(("MIME-Version".to_owned(), "1.0".to_owned()));
        let kind = if self.html { "html" } else { "plain" };
        headers.push((
            "Content-Type".to_owned(),
            format!("text/{kind}; charset=\"utf-8\""),
        ));
        let encoding = if self.plain_body() { "7bit" } else { "base64" };
        headers.push(("Content-Transfer-Encoding".to_owned(), encoding.to_owned()));
        headers
    }

    /// ASCII with short lines: sent as is (`7bit`), else base64.
    fn plain_body(&self) -> bool {
        self.content.is_ascii() && self.content.lines().all(|line| line.len() <= 900)
    }

    /// The RFC 5322 form (`$value`).
    pub fn mime(&self) -> String {
        if let Some(raw) = &self.raw {
            return raw.clone();
        }
        let mut out = String::new();
        for (name, value) in self.headers() {
            out.push_str(&format!("{name}: {value}\r\n"));
        }
        out.push_str("\r\n");
        if self.plain_body() {
            for line in self.content.lines() {
                out.push_str(line);
                out.push_str("\r\n");
            }
            return out;
        }
        let encoded = STANDARD.encode(self.content.as_bytes());
        for line in encoded.as_bytes().chunks(76) {
            out.push_str(&String::from_utf8_lossy(line));
            out.push_str("\r\n");
        }
        out
    }

    fn etag(&self) -> String {
        format!("CQAAABYAAAD{:010}", self.change_seq)
    }

    /// The Graph `message` JSON, restricted to `select` (plus `id` and
    /// `@odata.etag`) when given.
    pub fn render(&self, select: Option<&[String]>, expand: &Expand) -> Value {
        let time = |t: &DateTime<Utc>| json!(t.to_rfc3339_opts(SecondsFormat::Secs, true));
        let list =
            |l: &[EmailAddress]| Value::Array(l.iter().map(EmailAddress::recipient).collect());
        let one =
            |a: &Option<EmailAddress>| a.as_ref().map_or(Value::Null, EmailAddress::recipient);
        let properties: Vec<(&str, Value)> = vec![
            ("createdDateTime", time(&self.created)),
            ("lastModifiedDateTime", time(&self.modified)),
            ("changeKey", json!(self.etag())),
            ("categories", json!([])),
            ("receivedDateTime", time(&self.received)),
            ("sentDateTime", time(&self.sent.unwrap_or(self.created))),
            ("hasAttachments", json!(false)),
            ("internetMessageId", json!(self.internet_message_id)),
            ("subject", json!(self.subject)),
            ("bodyPreview", json!(self.preview())),
            ("importance", json!("normal")),
            ("parentFolderId", json!(self.folder_id)),
            ("conversationId", json!(self.conversation_id)),
            ("isDeliveryReceiptRequested", json!(false)),
            ("isReadReceiptRequested", json!(false)),
            ("isRead", json!(self.is_read)),
            ("isDraft", json!(self.is_draft)),
            ("inferenceClassification", json!("focused")),
            (
                "body",
                json!({"contentType": if self.html { "html" } else { "text" }, "content": self.content}),
            ),
            ("sender", one(&self.sender)),
            ("from", one(&self.from)),
            ("toRecipients", list(&self.to)),
            ("ccRecipients", list(&self.cc)),
            ("bccRecipients", list(&self.bcc)),
            ("replyTo", list(&self.reply_to)),
            ("flag", json!({"flagStatus": "notFlagged"})),
        ];
        let wanted = |name: &str| {
            select.is_none_or(|select| select.iter().any(|s| s.eq_ignore_ascii_case(name)))
        };
        let mut out = Map::new();
        out.insert(
            "@odata.etag".to_owned(),
            json!(format!("W/\"{}\"", self.etag())),
        );
        out.insert("id".to_owned(), json!(self.id));
        for (name, value) in properties {
            if wanted(name) {
                out.insert(name.to_owned(), value);
            }
        }
        if select.is_some_and(|s| {
            s.iter()
                .any(|s| s.eq_ignore_ascii_case("internetMessageHeaders"))
        }) {
            let headers = if self.is_draft {
                self.custom_headers.clone()
            } else {
                self.headers()
            };
            out.insert(
                "internetMessageHeaders".to_owned(),
                Value::Array(
                    headers
                        .into_iter()
                        .map(|(name, value)| json!({"name": name, "value": value}))
                        .collect(),
                ),
            );
        }
        let expanded: Vec<Value> = self
            .extended
            .iter()
            .filter(|(id, _)| match expand {
                Expand::None => false,
                Expand::AllExtended => true,
                Expand::Extended(ids) => ids.iter().any(|want| extended_id_eq(want, id)),
            })
            .map(|(id, value)| json!({"id": id, "value": value}))
            .collect();
        if !expanded.is_empty() {
            out.insert(
                "singleValueExtendedProperties".to_owned(),
                Value::Array(expanded),
            );
        }
        Value::Object(out)
    }

    /// Applies `patch` (already validated against `is_draft`).
    pub fn apply(&mut self, patch: Patch) {
        if let Some(subject) = patch.subject {
            self.subject = subject;
        }
        if let Some((html, content)) = patch.body {
            self.html = html;
            self.content = content;
        }
        for (field, value) in [
            (&mut self.to, patch.to),
            (&mut self.cc, patch.cc),
            (&mut self.bcc, patch.bcc),
            (&mut self.reply_to, patch.reply_to),
        ] {
            if let Some(value) = value {
                *field = value;
            }
        }
        if let Some(headers) = patch.headers {
            self.custom_headers = headers;
        }
        for (id, value) in patch.extended.unwrap_or_default() {
            match self
                .extended
                .iter_mut()
                .find(|(have, _)| extended_id_eq(have, &id))
            {
                Some(slot) => slot.1 = value,
                None => self.extended.push((id, value)),
            }
        }
        if let Some(is_read) = patch.is_read {
            self.is_read = is_read;
        }
        self.modified = Utc::now();
    }
}

/// `$expand`.
#[derive(Clone, Debug, Default)]
pub(crate) enum Expand {
    #[default]
    None,
    AllExtended,
    Extended(Vec<String>),
}

impl Expand {
    /// `singleValueExtendedProperties` or
    /// `singleValueExtendedProperties($filter=id eq '..' [or id eq '..'])`.
    pub fn parse(value: Option<&str>) -> Result<Expand, String> {
        let Some(value) = value.map(str::trim) else {
            return Ok(Expand::None);
        };
        const NAME: &str = "singlevalueextendedproperties";
        let lower = value.to_ascii_lowercase();
        if lower == NAME {
            return Ok(Expand::AllExtended);
        }
        let unsupported = || format!("The sandbox does not support $expand={value}.");
        let Some(inner) = lower
            .strip_prefix(NAME)
            .and_then(|rest| rest.trim().strip_prefix('('))
            .and_then(|rest| rest.strip_suffix(')'))
        else {
            return Err(unsupported());
        };
        // Keep the original case of the ids.
        let start = value.len() - inner.len() - 1;
        let inner = &value[start..value.len() - 1];
        let Some(filter) = inner
            .trim()
            .strip_prefix("$filter=")
            .or_else(|| inner.trim().strip_prefix("$filter ="))
        else {
            return Err(unsupported());
        };
        let mut ids = Vec::new();
        for clause in split_top(filter, " or ") {
            let (property, literal) = comparison(&clause, "eq").ok_or_else(unsupported)?;
            if !property.eq_ignore_ascii_case("id") {
                return Err(unsupported());
            }
            ids.push(unquote(&literal).ok_or_else(unsupported)?);
        }
        Ok(Expand::Extended(ids))
    }
}

/// Properties a create or PATCH sets.
#[derive(Debug, Default)]
pub(crate) struct Patch {
    pub subject: Option<String>,
    pub body: Option<(bool, String)>,
    pub to: Option<Vec<EmailAddress>>,
    pub cc: Option<Vec<EmailAddress>>,
    pub bcc: Option<Vec<EmailAddress>>,
    pub reply_to: Option<Vec<EmailAddress>>,
    pub headers: Option<Vec<(String, String)>>,
    pub extended: Option<Vec<(String, String)>>,
    pub is_read: Option<bool>,
}

/// A rejected request body: (Graph error code, message).
pub(crate) type BodyError = (&'static str, String);

fn bad(message: impl Into<String>) -> BodyError {
    ("BadRequest", message.into())
}

impl Patch {
    pub fn parse(value: &Value) -> Result<Patch, BodyError> {
        let Some(object) = value.as_object() else {
            return Err(bad("The request body must be a JSON object."));
        };
        let string = |key: &str| -> Result<Option<String>, BodyError> {
            match object.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(_) => Err(bad(format!("Property '{key}' must be a string."))),
            }
        };
        let recipients = |key: &str| -> Result<Option<Vec<EmailAddress>>, BodyError> {
            match object.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::Array(items)) => items
                    .iter()
                    .map(|item| parse_recipient(item).ok_or_else(|| bad(format!("Property '{key}' holds an invalid recipient: {{\"emailAddress\":{{\"address\":...}}}} expected."))))
                    .collect::<Result<Vec<_>, _>>()
                    .map(Some),
                Some(_) => Err(bad(format!("Property '{key}' must be an array."))),
            }
        };
        let body = match object.get("body") {
            None | Some(Value::Null) => None,
            Some(Value::Object(body)) => {
                let html = match body.get("contentType").and_then(Value::as_str) {
                    None => false,
                    Some(kind) if kind.eq_ignore_ascii_case("text") => false,
                    Some(kind) if kind.eq_ignore_ascii_case("html") => true,
                    Some(kind) => {
                        return Err(bad(format!(
                            "Invalid body contentType '{kind}': 'text' or 'html' expected."
                        )));
                    }
                };
                let content = body
                    .get("content")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned();
                Some((html, content))
            }
            Some(_) => return Err(bad("Property 'body' must be an object.")),
        };
        let headers = match object.get("internetMessageHeaders") {
            None | Some(Value::Null) => None,
            Some(Value::Array(items)) => {
                let mut headers = Vec::new();
                for item in items {
                    let (Some(name), Some(value)) = (
                        item.get("name").and_then(Value::as_str),
                        item.get("value").and_then(Value::as_str),
                    ) else {
                        return Err(bad(
                            "internetMessageHeaders items need a string 'name' and 'value'.",
                        ));
                    };
                    let valid_name =
                        !name.is_empty() && name.bytes().all(|b| b.is_ascii_graphic() && b != b':');
                    if !valid_name || !name.to_ascii_lowercase().starts_with("x-") {
                        return Err((
                            "InvalidInternetMessageHeader",
                            format!(
                                "The internet message header name '{name}' should start with 'x-' or 'X-'."
                            ),
                        ));
                    }
                    headers.push((name.to_owned(), value.to_owned()));
                }
                Some(headers)
            }
            Some(_) => return Err(bad("Property 'internetMessageHeaders' must be an array.")),
        };
        let extended = match object.get("singleValueExtendedProperties") {
            None | Some(Value::Null) => None,
            Some(Value::Array(items)) => {
                let mut properties = Vec::new();
                for item in items {
                    let (Some(id), Some(value)) = (
                        item.get("id").and_then(Value::as_str),
                        item.get("value").and_then(Value::as_str),
                    ) else {
                        return Err(bad(
                            "singleValueExtendedProperties items need a string 'id' and 'value'.",
                        ));
                    };
                    if !valid_extended_id(id) {
                        return Err(bad(format!(
                            "Invalid extended property id '{id}': 'String {{GUID}} Name NAME' or 'String 0xHHHH' expected."
                        )));
                    }
                    properties.push((id.trim().to_owned(), value.to_owned()));
                }
                Some(properties)
            }
            Some(_) => {
                return Err(bad(
                    "Property 'singleValueExtendedProperties' must be an array.",
                ));
            }
        };
        let is_read = match object.get("isRead") {
            None | Some(Value::Null) => None,
            Some(Value::Bool(b)) => Some(*b),
            Some(_) => return Err(bad("Property 'isRead' must be a boolean.")),
        };
        Ok(Patch {
            subject: string("subject")?,
            body,
            to: recipients("toRecipients")?,
            cc: recipients("ccRecipients")?,
            bcc: recipients("bccRecipients")?,
            reply_to: recipients("replyTo")?,
            headers,
            extended,
            is_read,
        })
    }

    /// Changes only what a non-draft allows (`isRead`, extended
    /// properties).
    pub fn only_flags(&self) -> bool {
        self.subject.is_none()
            && self.body.is_none()
            && self.to.is_none()
            && self.cc.is_none()
            && self.bcc.is_none()
            && self.reply_to.is_none()
            && self.headers.is_none()
    }
}

fn parse_recipient(item: &Value) -> Option<EmailAddress> {
    let email = item.get("emailAddress")?;
    let address = email.get("address")?.as_str()?.trim();
    if address.is_empty() || address.contains(['\r', '\n', '<', '>', ',']) {
        return None;
    }
    let name = email
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or(address)
        .replace(['\r', '\n'], " ");
    Some(EmailAddress {
        name,
        address: address.to_owned(),
    })
}

/// `String {GUID} Name X`, `String 0x8000`, ... (any MAPI type word).
fn valid_extended_id(id: &str) -> bool {
    let parts: Vec<&str> = id.split_whitespace().collect();
    match parts.as_slice() {
        [kind, tag] => !kind.is_empty() && tag.to_ascii_lowercase().starts_with("0x"),
        [kind, guid, keyword, _name, ..] => {
            !kind.is_empty()
                && guid.starts_with('{')
                && guid.ends_with('}')
                && guid.len() == 38
                && (keyword.eq_ignore_ascii_case("name") || keyword.eq_ignore_ascii_case("id"))
        }
        _ => false,
    }
}

/// Ids compare case-insensitively but for the property's name.
pub(crate) fn extended_id_eq(a: &str, b: &str) -> bool {
    let a: Vec<&str> = a.split_whitespace().collect();
    let b: Vec<&str> = b.split_whitespace().collect();
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(&b).enumerate().all(|(i, (x, y))| {
        if i >= 3 {
            x == y
        } else {
            x.eq_ignore_ascii_case(y)
        }
    })
}

/// A removal remembered for delta.
pub(crate) struct Removal {
    pub folder_id: String,
    pub id: String,
    pub seq: u64,
}

/// One account's mailbox.
pub(crate) struct Mailbox {
    pub folders: Vec<Folder>,
    pub messages: Vec<Message>,
    pub removed: VecDeque<Removal>,
    /// Delta tokens older than this lost their removals: 410.
    pub removed_floor: u64,
}

impl Mailbox {
    pub fn new() -> Mailbox {
        Mailbox {
            folders: WELL_KNOWN_FOLDERS
                .iter()
                .map(|well_known| Folder {
                    id: format!("AQMkAD{}AAAAEMAAAA", random_token(44)),
                    well_known,
                })
                .collect(),
            messages: Vec::new(),
            removed: VecDeque::new(),
            removed_floor: 0,
        }
    }

    /// A folder by id or well-known name (any case).
    pub fn folder(&self, name_or_id: &str) -> Option<&Folder> {
        let name = name_or_id.trim();
        self.folders
            .iter()
            .find(|f| f.id == name || f.well_known.eq_ignore_ascii_case(name))
    }

    /// The id of a well-known folder.
    pub fn folder_id(&self, well_known: &str) -> String {
        self.folder(well_known)
            .map(|f| f.id.clone())
            .unwrap_or_default()
    }

    pub fn folder_name(&self, id: &str) -> &'static str {
        self.folders
            .iter()
            .find(|f| f.id == id)
            .map_or("unknown", |f| f.well_known)
    }

    pub fn get(&self, id: &str) -> Option<&Message> {
        self.messages.iter().find(|m| m.id == id)
    }

    pub fn get_mut(&mut self, id: &str) -> Option<&mut Message> {
        self.messages.iter_mut().find(|m| m.id == id)
    }

    /// Takes a message out, remembering the removal from its folder.
    pub fn take(&mut self, id: &str, seq: u64) -> Option<Message> {
        let index = self.messages.iter().position(|m| m.id == id)?;
        let message = self.messages.remove(index);
        self.removed.push_back(Removal {
            folder_id: message.folder_id.clone(),
            id: message.id.clone(),
            seq,
        });
        while self.removed.len() > MAX_REMOVALS {
            if let Some(dropped) = self.removed.pop_front() {
                self.removed_floor = dropped.seq;
            }
        }
        Some(message)
    }

    /// The conversation of the first message named in `references`
    /// (`In-Reply-To`, `References`), if any.
    pub fn conversation_of(&self, references: &[String]) -> Option<String> {
        references.iter().rev().find_map(|reference| {
            let reference = bare_id(reference);
            self.messages
                .iter()
                .find(|m| bare_id(&m.internet_message_id).eq_ignore_ascii_case(reference))
                .map(|m| m.conversation_id.clone())
        })
    }
}

fn bare_id(id: &str) -> &str {
    id.trim().trim_start_matches('<').trim_end_matches('>')
}

/// `<id>` whatever was given.
pub(crate) fn bracketed(id: &str) -> String {
    format!("<{}>", bare_id(id))
}

impl World {
    pub(crate) fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    /// The mailbox of `email` (made on first use).
    pub(crate) fn mailbox(&mut self, email: &str) -> &mut Mailbox {
        self.mailboxes
            .entry(email.trim().to_ascii_lowercase())
            .or_insert_with(Mailbox::new)
    }

    /// Stores `message` in `email`'s mailbox and notifies subscribers.
    pub(crate) fn store(&mut self, email: &str, mut message: Message) -> String {
        let seq = self.next_seq();
        message.change_seq = seq;
        message.order = seq;
        let (id, folder) = (message.id.clone(), message.folder_id.clone());
        self.mailbox(email).messages.push(message);
        self.on_created(email, &folder, &id);
        id
    }

    /// Moves a message to `folder` (a new id, as Graph's moves give).
    pub(crate) fn move_message(&mut self, email: &str, id: &str, folder: &str) -> Option<String> {
        let seq = self.next_seq();
        let folder_id = self.mailbox(email).folder_id(folder);
        let mut message = self.mailbox(email).take(id, seq)?;
        message.id = message_id();
        message.folder_id = folder_id;
        message.modified = Utc::now();
        Some(self.store(email, message))
    }

    /// Files a message in `folder` keeping its id, as Graph's immutable ids
    /// (`Prefer: IdType="ImmutableId"`) survive a move; whether it exists.
    pub(crate) fn file_message(&mut self, email: &str, id: &str, folder: &str) -> bool {
        let seq = self.next_seq();
        let Some(folder_id) = self.mailbox(email).folder(folder).map(|f| f.id.clone()) else {
            return false;
        };
        let Some(mut message) = self.mailbox(email).take(id, seq) else {
            return false;
        };
        message.folder_id = folder_id;
        message.modified = Utc::now();
        self.store(email, message);
        true
    }

    /// Inbound mail: threads by `In-Reply-To`/`References` within the
    /// mailbox, lands unread in the inbox.
    pub(crate) fn deliver(&mut self, email: &str, mut message: Message) -> (String, String) {
        let mailbox = self.mailbox(email);
        let mut references = message.references.clone();
        references.extend(message.in_reply_to.clone());
        message.conversation_id = mailbox
            .conversation_of(&references)
            .unwrap_or_else(conversation_id);
        message.folder_id = mailbox.folder_id("inbox");
        message.id = message_id();
        message.is_draft = false;
        message.is_read = false;
        let now = Utc::now();
        message.received = now;
        message.created = now;
        message.modified = now;
        let conversation = message.conversation_id.clone();
        (self.store(email, message), conversation)
    }
}

/// A Graph-looking message id (URL-safe).
pub(crate) fn message_id() -> String {
    format!("AAMkAD{}AAA", random_token(120))
}

pub(crate) fn conversation_id() -> String {
    format!("AAQkAD{}", random_token(60))
}

pub(crate) fn internet_message_id() -> String {
    format!(
        "<{}@SANDBOX.namprd00.prod.outlook.com>",
        random_token(32).replace(['-', '_'], "A")
    )
}

pub(crate) fn strip_tags(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut tag: Option<String> = None;
    for c in html.chars() {
        match (&mut tag, c) {
            (None, '<') => tag = Some(String::new()),
            (Some(name), '>') => {
                let name = name.trim().trim_start_matches('/').to_ascii_lowercase();
                let name = name.split([' ', '/']).next().unwrap_or_default();
                if matches!(
                    name,
                    "br" | "p" | "div" | "li" | "tr" | "h1" | "h2" | "h3" | "hr"
                ) {
                    out.push('\n');
                }
                tag = None;
            }
            (Some(name), c) => name.push(c),
            (None, c) => out.push(c),
        }
    }
    out.replace("&nbsp;", " ")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

/// RFC 2047 `=?utf-8?B?...?=`.
fn encode_word(text: &str) -> String {
    format!(
        "=?utf-8?B?{}?=",
        STANDARD.encode(text.replace(['\r', '\n'], " "))
    )
}

/// The header block of a MIME text, unfolded.
pub(crate) fn parse_headers(raw: &str) -> Vec<(String, String)> {
    let mut headers: Vec<(String, String)> = Vec::new();
    for line in raw.lines() {
        if line.trim().is_empty() {
            break;
        }
        if line.starts_with([' ', '\t']) {
            if let Some(last) = headers.last_mut() {
                last.1.push(' ');
                last.1.push_str(line.trim());
            }
        } else if let Some((name, value)) = line.split_once(':') {
            headers.push((name.trim().to_owned(), value.trim().to_owned()));
        }
    }
    headers
}

/// A `$filter` clause.
#[derive(Clone, Debug)]
pub(crate) enum Clause {
    ConversationId(String),
    InternetMessageId(String),
    Received(Comparison, DateTime<Utc>),
    IsDraft(bool),
    IsRead(bool),
    Subject(String),
    Extended { id: String, value: String },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Comparison {
    Ge,
    Gt,
    Le,
    Lt,
}

impl Clause {
    pub fn matches(&self, message: &Message) -> bool {
        match self {
            Clause::ConversationId(id) => message.conversation_id == *id,
            Clause::InternetMessageId(id) => {
                bare_id(&message.internet_message_id).eq_ignore_ascii_case(bare_id(id))
            }
            Clause::Received(op, at) => match op {
                Comparison::Ge => message.received >= *at,
                Comparison::Gt => message.received > *at,
                Comparison::Le => message.received <= *at,
                Comparison::Lt => message.received < *at,
            },
            Clause::IsDraft(b) => message.is_draft == *b,
            Clause::IsRead(b) => message.is_read == *b,
            Clause::Subject(s) => message.subject.eq_ignore_ascii_case(s),
            Clause::Extended { id, value } => message
                .extended
                .iter()
                .any(|(have, v)| extended_id_eq(id, have) && v.eq_ignore_ascii_case(value)),
        }
    }
}

/// Splits `text` on `separator` (ASCII, any case) outside quotes and
/// parentheses.
fn split_top(text: &str, separator: &str) -> Vec<String> {
    let lower = text.to_ascii_lowercase();
    let bytes = text.as_bytes();
    let mut parts = Vec::new();
    let (mut depth, mut quoted, mut start, mut i) = (0i32, false, 0usize, 0usize);
    while i < bytes.len() {
        match bytes[i] {
            b'\'' => quoted = !quoted,
            b'(' if !quoted => depth += 1,
            b')' if !quoted => depth -= 1,
            _ if !quoted
                && depth == 0
                && lower.as_bytes()[i..].starts_with(separator.as_bytes()) =>
            {
                parts.push(text[start..i].trim().to_owned());
                i += separator.len();
                start = i;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    parts.push(text[start..].trim().to_owned());
    parts
}

/// `property op literal` → (property, literal).
fn comparison(clause: &str, op: &str) -> Option<(String, String)> {
    let needle = format!(" {op} ");
    let lower = clause.to_ascii_lowercase();
    let at = lower.find(&needle)?;
    Some((
        clause[..at].trim().to_owned(),
        clause[at + needle.len()..].trim().to_owned(),
    ))
}

/// `'it''s'` → `it's`.
fn unquote(literal: &str) -> Option<String> {
    let inner = literal.strip_prefix('\'')?.strip_suffix('\'')?;
    Some(inner.replace("''", "'"))
}

fn parse_time(literal: &str) -> Option<DateTime<Utc>> {
    let literal = unquote(literal).unwrap_or_else(|| literal.to_owned());
    DateTime::parse_from_rfc3339(literal.trim())
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// Parses the supported `$filter`s; the error names what is not.
pub(crate) fn parse_filter(filter: &str) -> Result<Vec<Clause>, String> {
    let mut clauses = Vec::new();
    for part in split_top(filter.trim(), " and ") {
        let part = strip_parens(&part);
        clauses.push(parse_clause(part).ok_or_else(|| {
            format!("Invalid filter clause: the sandbox does not support '{part}'.")
        })?);
    }
    Ok(clauses)
}

fn strip_parens(mut text: &str) -> &str {
    loop {
        let trimmed = text.trim();
        match trimmed.strip_prefix('(').and_then(|t| t.strip_suffix(')')) {
            Some(inner) if balanced(inner) => text = inner,
            _ => return trimmed,
        }
    }
}

fn balanced(text: &str) -> bool {
    let mut depth = 0i32;
    let mut quoted = false;
    for b in text.bytes() {
        match b {
            b'\'' => quoted = !quoted,
            b'(' if !quoted => depth += 1,
            b')' if !quoted => {
                depth -= 1;
                if depth < 0 {
                    return false;
                }
            }
            _ => {}
        }
    }
    depth == 0
}

fn parse_clause(part: &str) -> Option<Clause> {
    let lower = part.to_ascii_lowercase();
    if lower.starts_with("singlevalueextendedproperties/any(") {
        let inner = part
            .get("singleValueExtendedProperties/any(".len()..)?
            .strip_suffix(')')?;
        let (var, body) = inner.split_once(':')?;
        let var = var.trim();
        let (mut id, mut value) = (None, None);
        for condition in split_top(body.trim(), " and ") {
            let (property, literal) = comparison(strip_parens(&condition), "eq")?;
            let (prefix, name) = property.split_once('/')?;
            if prefix.trim() != var {
                return None;
            }
            match name.trim().to_ascii_lowercase().as_str() {
                "id" => id = Some(unquote(&literal)?),
                "value" => value = Some(unquote(&literal)?),
                _ => return None,
            }
        }
        return Some(Clause::Extended {
            id: id?,
            value: value?,
        });
    }
    for (op, comparison_kind) in [
        ("ge", Comparison::Ge),
        ("gt", Comparison::Gt),
        ("le", Comparison::Le),
        ("lt", Comparison::Lt),
    ] {
        if let Some((property, literal)) = comparison(part, op)
            && property.eq_ignore_ascii_case("receivedDateTime")
        {
            return Some(Clause::Received(comparison_kind, parse_time(&literal)?));
        }
    }
    let (property, literal) = comparison(part, "eq")?;
    let boolean = || match literal.to_ascii_lowercase().as_str() {
        "true" => Some(true),
        "false" => Some(false),
        _ => None,
    };
    match property.to_ascii_lowercase().as_str() {
        "conversationid" => Some(Clause::ConversationId(unquote(&literal)?)),
        "internetmessageid" => Some(Clause::InternetMessageId(unquote(&literal)?)),
        "subject" => Some(Clause::Subject(unquote(&literal)?)),
        "isdraft" => Some(Clause::IsDraft(boolean()?)),
        "isread" => Some(Clause::IsRead(boolean()?)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_parse() {
        let clauses = parse_filter(
            "singleValueExtendedProperties/Any(ep: ep/id eq 'String {00020329-0000-0000-C000-000000000046} Name MW' and ep/value eq 'It''s') and receivedDateTime ge 2026-01-01T00:00:00Z and isDraft eq false",
        )
        .unwrap();
        assert_eq!(clauses.len(), 3);
        match &clauses[0] {
            Clause::Extended { id, value } => {
                assert!(id.ends_with("Name MW"));
                assert_eq!(value, "It's");
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(clauses[1], Clause::Received(Comparison::Ge, _)));
        assert!(parse_filter("from/emailAddress/address eq 'a@b'").is_err());
        assert!(parse_filter("(conversationId eq 'x')").is_ok());
    }

    #[test]
    fn extended_ids_compare_guid_case_insensitively_and_name_exactly() {
        let a = "String {00020329-0000-0000-C000-000000000046} Name MW";
        assert!(extended_id_eq(
            a,
            "string {00020329-0000-0000-c000-000000000046} name MW"
        ));
        assert!(!extended_id_eq(
            a,
            "String {00020329-0000-0000-C000-000000000046} Name mw"
        ));
        assert!(valid_extended_id(a));
        assert!(!valid_extended_id("MW"));
    }

    #[test]
    fn expand_parses() {
        assert!(matches!(
            Expand::parse(Some("singleValueExtendedProperties($filter=id eq 'String {00020329-0000-0000-C000-000000000046} Name MW')")),
            Ok(Expand::Extended(ids)) if ids[0].ends_with("Name MW")
        ));
        assert!(Expand::parse(Some("attachments")).is_err());
    }
}
