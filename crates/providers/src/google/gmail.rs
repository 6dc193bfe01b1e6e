//! The Gmail API. Each call is classified: 401 (token rejected: refresh and
//! retry once), 403 `insufficientPermissions` (a scope is missing: tell the
//! person), 429/5xx/timeouts (retry later), anything else.

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use url::Url;

use super::message::parse_mailbox;
use crate::oauth2::TIMEOUT;
use domain::mail;

#[derive(Clone)]
pub struct Gmail {
    /// `https://gmail.googleapis.com` (or the sandbox's base).
    api_url: Url,
    http: reqwest::Client,
}

#[derive(Debug, thiserror::Error)]
pub enum GmailError {
    #[error("Gmail rejected the access token")]
    Unauthorized,
    #[error("the grant lacks a scope this call needs")]
    InsufficientPermissions,
    #[error("Gmail is unavailable ({reason})")]
    Unavailable {
        reason: String,
        retry_after: Option<Duration>,
    },
    /// 404: the message, draft or history position no longer exists (for
    /// `history.list`: the start id is too old, a full sync is needed).
    #[error("Gmail has no such item")]
    NotFound,
    #[error("Gmail refused the request (HTTP {status}, {reason})")]
    Rejected { status: u16, reason: String },
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Profile {
    pub email_address: String,
    #[serde(default)]
    pub history_id: Option<String>,
}

/// What `users.watch` answers: the mailbox's history id now and when the
/// watch ends (milliseconds since the epoch, as a string).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WatchGrant {
    pub history_id: String,
    pub expiration: String,
}

impl WatchGrant {
    pub fn expires_at(&self) -> Option<chrono::DateTime<chrono::Utc>> {
        chrono::DateTime::from_timestamp_millis(self.expiration.parse().ok()?)
    }
}

#[derive(Deserialize)]
struct ErrorEnvelope {
    error: ErrorDetail,
}

#[derive(Deserialize)]
struct ErrorDetail {
    #[serde(default)]
    errors: Vec<ErrorItem>,
    #[serde(default)]
    status: Option<String>,
}

#[derive(Deserialize)]
struct ErrorItem {
    #[serde(default)]
    reason: Option<String>,
}

impl Gmail {
    pub fn new(api_url: Url, http: reqwest::Client) -> Gmail {
        Gmail { api_url, http }
    }

    fn url(&self, path: &str) -> Url {
        let base = self.api_url.as_str().trim_end_matches('/');
        Url::parse(&format!("{base}/gmail/v1/users/me/{path}")).expect("a valid Gmail URL")
    }

    /// `users.getProfile`: the mailbox's address and current history id.
    pub async fn profile(&self, access_token: &SecretString) -> Result<Profile, GmailError> {
        self.get_json(access_token, "profile", &[]).await
    }
}

/// A message Gmail accepted (sent, or inside a draft).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MessageRef {
    pub id: String,
    #[serde(default)]
    pub thread_id: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct DraftRef {
    pub id: String,
    #[serde(default)]
    pub message: Option<MessageRef>,
}

/// One page of history records.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HistoryPage {
    #[serde(default)]
    pub history: Vec<HistoryRecord>,
    #[serde(default)]
    pub next_page_token: Option<String>,
    /// The mailbox's current history id.
    #[serde(default)]
    pub history_id: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HistoryRecord {
    #[serde(default)]
    pub messages_added: Vec<AddedMessage>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct AddedMessage {
    pub message: MessageRef,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MessagePage {
    #[serde(default)]
    pub messages: Vec<MessageRef>,
    #[serde(default)]
    pub next_page_token: Option<String>,
}

/// A message as `messages.get` / `threads.get` return it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GmailMessage {
    pub id: String,
    #[serde(default)]
    pub thread_id: String,
    #[serde(default)]
    pub label_ids: Vec<String>,
    /// Milliseconds since the epoch, as a string.
    #[serde(default)]
    pub internal_date: Option<String>,
    #[serde(default)]
    pub payload: Option<MessagePart>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MessagePart {
    #[serde(default)]
    pub mime_type: String,
    #[serde(default)]
    pub filename: String,
    #[serde(default)]
    pub headers: Vec<MessageHeader>,
    #[serde(default)]
    pub body: Option<PartBody>,
    #[serde(default)]
    pub parts: Vec<MessagePart>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct MessageHeader {
    pub name: String,
    pub value: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct PartBody {
    /// base64url (Gmail pads it; some proxies do not).
    #[serde(default)]
    pub data: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct GmailThread {
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub messages: Vec<GmailMessage>,
}

impl GmailThread {
    pub fn into_mail(self) -> mail::Thread {
        mail::Thread {
            id: self.id,
            messages: self
                .messages
                .into_iter()
                .map(GmailMessage::into_mail)
                .collect(),
        }
    }
}

impl MessageRef {
    pub fn into_mail(self) -> mail::MessageRef {
        mail::MessageRef {
            thread_id: self.thread_id.unwrap_or_else(|| self.id.clone()),
            id: self.id,
        }
    }
}

impl GmailMessage {
    /// The message as the engine sees it: labels become its placement,
    /// `From` and `Reply-To` are parsed, and the body is its text (none
    /// when Gmail sent headers only).
    pub fn into_mail(self) -> mail::Message {
        let address = |name: &str| {
            self.header(name)
                .and_then(parse_mailbox)
                .map(|(name, address)| mail::Address { name, address })
        };
        let placement = mail::Placement {
            inbox: self.has_label("INBOX"),
            spam_or_trash: self.has_label("SPAM") || self.has_label("TRASH"),
            sent: self.has_label("SENT"),
            draft: self.has_label("DRAFT"),
            promotions: self.has_label("CATEGORY_PROMOTIONS"),
        };
        let (from, reply_to) = (address("From"), address("Reply-To"));
        let text = self.text_body();
        let has_attachment = self.payload.as_ref().is_some_and(has_attachment);
        let received_at_millis = self.internal_date_millis();
        let headers = self
            .payload
            .map(|payload| {
                payload
                    .headers
                    .into_iter()
                    .map(|header| (header.name, header.value))
                    .collect()
            })
            .unwrap_or_default();
        mail::Message {
            thread_id: if self.thread_id.is_empty() {
                self.id.clone()
            } else {
                self.thread_id
            },
            id: self.id,
            placement,
            received_at_millis,
            from,
            reply_to,
            headers,
            text,
            label_ids: self.label_ids,
            has_attachment,
        }
    }

    /// The first top-level header with this name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.payload.as_ref().and_then(|payload| {
            payload
                .headers
                .iter()
                .find(|header| header.name.eq_ignore_ascii_case(name))
                .map(|header| header.value.as_str())
        })
    }

    pub fn has_label(&self, label: &str) -> bool {
        self.label_ids.iter().any(|l| l == label)
    }

    pub fn internal_date_millis(&self) -> i64 {
        self.internal_date
            .as_deref()
            .and_then(|millis| millis.parse().ok())
            .unwrap_or(0)
    }

    /// The plain-text body: the first `text/plain` part that is not an
    /// attachment, else the first `text/html` part with its tags dropped.
    pub fn text_body(&self) -> String {
        let Some(payload) = &self.payload else {
            return String::new();
        };
        if let Some(text) = find_part(payload, "text/plain") {
            return text;
        }
        find_part(payload, "text/html")
            .map(|html| crate::google::message::text_of_html(&html))
            .unwrap_or_default()
    }
}

/// Whether any part is a named file (Gmail sets `filename` on attachments
/// and inline files).
fn has_attachment(part: &MessagePart) -> bool {
    !part.filename.is_empty() || part.parts.iter().any(has_attachment)
}

fn find_part(part: &MessagePart, mime_type: &str) -> Option<String> {
    if part.parts.is_empty() {
        if part.mime_type.eq_ignore_ascii_case(mime_type) && part.filename.is_empty() {
            let data = part.body.as_ref()?.data.as_deref()?;
            return decode_base64url(data)
                .map(|bytes| String::from_utf8_lossy(&bytes).into_owned());
        }
        return None;
    }
    // Depth is bounded by Gmail's answer, which we already hold in memory.
    part.parts
        .iter()
        .find_map(|child| find_part(child, mime_type))
}

fn decode_base64url(data: &str) -> Option<Vec<u8>> {
    use base64::Engine;
    let trimmed = data.trim().trim_end_matches('=');
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(trimmed)
        .ok()
}

/// An id from Gmail used in a URL path: Gmail ids are short and
/// alphanumeric; anything else is refused rather than sent.
fn path_segment(id: &str) -> Result<&str, GmailError> {
    if !id.is_empty()
        && id.len() <= 64
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        Ok(id)
    } else {
        Err(GmailError::Rejected {
            status: 400,
            reason: "malformed id".into(),
        })
    }
}

#[derive(Deserialize)]
struct FullDraft {
    #[serde(default)]
    message: GmailMessage,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SendAsList {
    #[serde(default)]
    send_as: Vec<SendAs>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SendAs {
    #[serde(default)]
    signature: String,
    #[serde(default)]
    is_default: bool,
    #[serde(default)]
    is_primary: bool,
}

/// A label of `users.labels.list`.
#[derive(Debug, Clone, Deserialize)]
pub struct Label {
    pub id: String,
    pub name: String,
    /// `system` or `user`.
    #[serde(default, rename = "type")]
    pub label_type: Option<String>,
}

#[derive(Deserialize)]
struct LabelList {
    #[serde(default)]
    labels: Vec<Label>,
}

#[derive(Deserialize)]
struct MessageList {
    #[serde(default)]
    messages: Vec<MessageRef>,
}

#[derive(Deserialize)]
struct DraftList {
    #[serde(default)]
    drafts: Vec<DraftRef>,
}

fn unavailable(error: reqwest::Error) -> GmailError {
    GmailError::Unavailable {
        reason: if error.is_timeout() {
            "timed out".into()
        } else if error.is_connect() {
            "could not connect".into()
        } else {
            "the connection broke off".into()
        },
        retry_after: None,
    }
}

/// Reads of one Gmail call are tried this often before the error goes to
/// the caller (whose job then retries with its own, longer backoff).
const READ_TRIES: u32 = 3;
/// A `Retry-After` longer than this is left to the job's retry.
const LONGEST_IN_CALL_WAIT: Duration = Duration::from_secs(2);

/// How long to wait before trying a read again after `error`, if at all.
fn read_retry_delay(error: &GmailError, tries_made: u32) -> Option<Duration> {
    let GmailError::Unavailable { retry_after, .. } = error else {
        return None;
    };
    if tries_made >= READ_TRIES {
        return None;
    }
    // 100 ms, then 300 ms, with up to half of that again as jitter.
    let backoff = Duration::from_millis(100 * 3u64.pow(tries_made - 1));
    let delay = retry_after
        .unwrap_or_default()
        .max(backoff + backoff.mul_f64(fastrand::f64() / 2.0));
    (delay <= LONGEST_IN_CALL_WAIT).then_some(delay)
}

impl Gmail {
    /// `users.messages.send` of an RFC 5322 message.
    pub async fn send(
        &self,
        access_token: &SecretString,
        rfc822: &[u8],
    ) -> Result<MessageRef, GmailError> {
        self.post_json(
            access_token,
            "messages/send",
            &serde_json::json!({ "raw": base64url(rfc822) }),
        )
        .await
    }

    /// `users.messages.send` of a reply, in `thread_id` (Gmail threads it
    /// there when its `In-Reply-To`/`References` and subject qualify).
    pub async fn send_in_thread(
        &self,
        access_token: &SecretString,
        rfc822: &[u8],
        thread_id: &str,
    ) -> Result<MessageRef, GmailError> {
        self.post_json(
            access_token,
            "messages/send",
            &serde_json::json!({ "raw": base64url(rfc822), "threadId": thread_id }),
        )
        .await
    }

    /// The default send-as address's signature (HTML, as Gmail keeps it;
    /// `None` when it has none), from `users.settings.sendAs.list` (any
    /// read scope).
    pub async fn signature(
        &self,
        access_token: &SecretString,
    ) -> Result<Option<String>, GmailError> {
        let list: SendAsList = self.get_json(access_token, "settings/sendAs", &[]).await?;
        let default = list
            .send_as
            .iter()
            .find(|entry| entry.is_default)
            .or_else(|| list.send_as.iter().find(|entry| entry.is_primary));
        Ok(default
            .map(|entry| entry.signature.trim().to_owned())
            .filter(|signature| !signature.is_empty()))
    }

    /// `users.drafts.get` with `format=full`: the draft's message as it is
    /// now (a person's edit replaces it); `None` when the draft is gone
    /// (sent or deleted).
    pub async fn draft(
        &self,
        access_token: &SecretString,
        draft_id: &str,
    ) -> Result<Option<GmailMessage>, GmailError> {
        let found: Result<FullDraft, GmailError> = self
            .get_json(
                access_token,
                &format!("drafts/{}", path_segment(draft_id)?),
                &[("format", "full")],
            )
            .await;
        match found {
            Ok(draft) => Ok(Some(draft.message)),
            Err(GmailError::NotFound) => Ok(None),
            Err(error) => Err(error),
        }
    }

    /// `users.drafts.delete`: the draft is gone for good (a draft already
    /// gone counts as deleted).
    pub async fn delete_draft(
        &self,
        access_token: &SecretString,
        draft_id: &str,
    ) -> Result<(), GmailError> {
        let response = self
            .http
            .delete(self.url(&format!("drafts/{}", path_segment(draft_id)?)))
            .timeout(TIMEOUT)
            .bearer_auth(access_token.expose_secret())
            .send()
            .await
            .map_err(unavailable)?;
        match check(response).await {
            Ok(_) | Err(GmailError::NotFound) => Ok(()),
            Err(error) => Err(error),
        }
    }

    /// `users.labels.list`: system and user labels.
    pub async fn labels(&self, access_token: &SecretString) -> Result<Vec<Label>, GmailError> {
        let list: LabelList = self.get_json(access_token, "labels", &[]).await?;
        Ok(list.labels)
    }

    /// `users.labels.create` (needs `gmail.modify` or `gmail.labels`).
    pub async fn create_label(
        &self,
        access_token: &SecretString,
        name: &str,
    ) -> Result<Label, GmailError> {
        self.post_json(
            access_token,
            "labels",
            &serde_json::json!({
                "name": name,
                "labelListVisibility": "labelShow",
                "messageListVisibility": "show",
            }),
        )
        .await
    }

    /// `users.messages.modify`: add and remove label ids (needs
    /// `gmail.modify`). Repeating it changes nothing more.
    pub async fn modify_labels(
        &self,
        access_token: &SecretString,
        message_id: &str,
        add: &[&str],
        remove: &[&str],
    ) -> Result<GmailMessage, GmailError> {
        self.post_json(
            access_token,
            &format!("messages/{}/modify", path_segment(message_id)?),
            &serde_json::json!({ "addLabelIds": add, "removeLabelIds": remove }),
        )
        .await
    }

    /// `users.drafts.create`, in `thread_id` when given (a reply).
    pub async fn create_draft(
        &self,
        access_token: &SecretString,
        rfc822: &[u8],
        thread_id: Option<&str>,
    ) -> Result<DraftRef, GmailError> {
        let mut message = serde_json::json!({ "raw": base64url(rfc822) });
        if let Some(thread_id) = thread_id {
            message["threadId"] = thread_id.into();
        }
        self.post_json(
            access_token,
            "drafts",
            &serde_json::json!({ "message": message }),
        )
        .await
    }

    /// `users.watch`: publish changes to the mailbox's INBOX to `topic`
    /// until the answer's expiration (Google asks for a renewal at least
    /// every 7 days).
    pub async fn watch(
        &self,
        access_token: &SecretString,
        topic: &str,
    ) -> Result<WatchGrant, GmailError> {
        self.post_json(
            access_token,
            "watch",
            &serde_json::json!({
                "topicName": topic,
                "labelIds": ["INBOX"],
                "labelFilterBehavior": "include",
            }),
        )
        .await
    }

    /// `users.stop`: no more notifications for this mailbox.
    pub async fn stop(&self, access_token: &SecretString) -> Result<(), GmailError> {
        let response = self
            .http
            .post(self.url("stop"))
            .timeout(TIMEOUT)
            .bearer_auth(access_token.expose_secret())
            .send()
            .await
            .map_err(unavailable)?;
        check(response).await.map(drop)
    }

    /// One page of `users.history.list`: messages added to the INBOX after
    /// `start_history_id`. A too-old start id is [`GmailError::NotFound`].
    pub async fn inbox_history(
        &self,
        access_token: &SecretString,
        start_history_id: u64,
        page_token: Option<&str>,
    ) -> Result<HistoryPage, GmailError> {
        let start = start_history_id.to_string();
        let mut query = vec![
            ("startHistoryId", start.as_str()),
            ("historyTypes", "messageAdded"),
            ("labelId", "INBOX"),
            ("maxResults", "500"),
        ];
        if let Some(token) = page_token {
            query.push(("pageToken", token));
        }
        self.get_json(access_token, "history", &query).await
    }

    /// One page of INBOX messages matching `q` (newest first).
    pub async fn inbox_messages(
        &self,
        access_token: &SecretString,
        q: &str,
        max_results: u32,
        page_token: Option<&str>,
    ) -> Result<MessagePage, GmailError> {
        let max = max_results.to_string();
        let mut query = vec![
            ("labelIds", "INBOX"),
            ("q", q),
            ("maxResults", max.as_str()),
        ];
        if let Some(token) = page_token {
            query.push(("pageToken", token));
        }
        self.get_json(access_token, "messages", &query).await
    }

    /// The newest `max_results` sent messages (`labelIds=SENT`), ids only.
    pub async fn sent_messages(
        &self,
        access_token: &SecretString,
        max_results: u32,
    ) -> Result<MessagePage, GmailError> {
        let max = max_results.to_string();
        self.get_json(
            access_token,
            "messages",
            &[("labelIds", "SENT"), ("maxResults", max.as_str())],
        )
        .await
    }

    /// `users.messages.get` with `format=full`: headers, labels and body parts.
    pub async fn message(
        &self,
        access_token: &SecretString,
        id: &str,
    ) -> Result<GmailMessage, GmailError> {
        self.get_json(
            access_token,
            &format!("messages/{}", path_segment(id)?),
            &[("format", "full")],
        )
        .await
    }

    /// `users.threads.get` with `format=full`: every message's headers,
    /// labels and body parts.
    pub async fn thread(
        &self,
        access_token: &SecretString,
        thread_id: &str,
    ) -> Result<GmailThread, GmailError> {
        self.get_json(
            access_token,
            &format!("threads/{}", path_segment(thread_id)?),
            &[("format", "full")],
        )
        .await
    }

    /// The message with this `Message-ID` header, if the mailbox has one
    /// (how a retried send finds out whether its first attempt went out).
    pub async fn find_message(
        &self,
        access_token: &SecretString,
        rfc822_message_id: &str,
    ) -> Result<Option<MessageRef>, GmailError> {
        let query = rfc822_query(rfc822_message_id);
        let list: MessageList = self
            .get_json(
                access_token,
                "messages",
                &[("q", query.as_str()), ("includeSpamTrash", "true")],
            )
            .await?;
        Ok(list.messages.into_iter().next())
    }

    /// The draft whose message has this `Message-ID`, if any.
    pub async fn find_draft(
        &self,
        access_token: &SecretString,
        rfc822_message_id: &str,
    ) -> Result<Option<DraftRef>, GmailError> {
        let query = rfc822_query(rfc822_message_id);
        let list: DraftList = self
            .get_json(access_token, "drafts", &[("q", query.as_str())])
            .await?;
        Ok(list.drafts.into_iter().next())
    }

    async fn post_json<T: serde::de::DeserializeOwned>(
        &self,
        access_token: &SecretString,
        path: &str,
        body: &serde_json::Value,
    ) -> Result<T, GmailError> {
        let response = self
            .http
            .post(self.url(path))
            .timeout(TIMEOUT)
            .bearer_auth(access_token.expose_secret())
            .json(body)
            .send()
            .await
            .map_err(unavailable)?;
        read_json(response).await
    }

    /// A read (idempotent): a flaky answer (429, 5xx, a broken connection)
    /// is tried again a few times with short backoff before it costs the
    /// caller's job an attempt.
    async fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        access_token: &SecretString,
        path: &str,
        query: &[(&str, &str)],
    ) -> Result<T, GmailError> {
        let mut tries = 0;
        loop {
            tries += 1;
            let error = match self.get_json_once(access_token, path, query).await {
                Ok(answer) => return Ok(answer),
                Err(error) => error,
            };
            match read_retry_delay(&error, tries) {
                Some(delay) => tokio::time::sleep(delay).await,
                None => return Err(error),
            }
        }
    }

    async fn get_json_once<T: serde::de::DeserializeOwned>(
        &self,
        access_token: &SecretString,
        path: &str,
        query: &[(&str, &str)],
    ) -> Result<T, GmailError> {
        let response = self
            .http
            .get(self.url(path))
            .query(query)
            .timeout(TIMEOUT)
            .bearer_auth(access_token.expose_secret())
            .send()
            .await
            .map_err(unavailable)?;
        read_json(response).await
    }
}

/// A successful answer's JSON. A body cut off on the way is an outage (the
/// call may be repeated); a body that is not the JSON expected is not.
async fn read_json<T: serde::de::DeserializeOwned>(
    response: reqwest::Response,
) -> Result<T, GmailError> {
    let body = check(response).await?.bytes().await.map_err(unavailable)?;
    serde_json::from_slice(&body).map_err(|_| GmailError::Rejected {
        status: 200,
        reason: "unexpected answer".into(),
    })
}

fn rfc822_query(message_id: &str) -> String {
    format!("rfc822msgid:{}", message_id.trim_matches(['<', '>']))
}

fn base64url(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Turn an error answer into what it means.
pub async fn check(response: reqwest::Response) -> Result<reqwest::Response, GmailError> {
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let retry_after = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    let body = response.bytes().await.unwrap_or_default();
    let envelope: Option<ErrorEnvelope> = serde_json::from_slice(&body).ok();
    let reason = envelope
        .as_ref()
        .and_then(|envelope| {
            envelope
                .error
                .errors
                .first()
                .and_then(|item| item.reason.clone())
                .or(envelope.error.status.clone())
        })
        .unwrap_or_else(|| format!("HTTP {}", status.as_u16()));
    match status.as_u16() {
        401 => Err(GmailError::Unauthorized),
        403 if reason == "insufficientPermissions"
            || reason == "PERMISSION_DENIED" && body_mentions_scopes(&body) =>
        {
            Err(GmailError::InsufficientPermissions)
        }
        403 if reason == "rateLimitExceeded" || reason == "userRateLimitExceeded" => {
            Err(GmailError::Unavailable {
                reason,
                retry_after,
            })
        }
        404 => Err(GmailError::NotFound),
        429 => Err(GmailError::Unavailable {
            reason,
            retry_after,
        }),
        code if code >= 500 => Err(GmailError::Unavailable {
            reason,
            retry_after,
        }),
        code => Err(GmailError::Rejected {
            status: code,
            reason,
        }),
    }
}

fn body_mentions_scopes(body: &[u8]) -> bool {
    String::from_utf8_lossy(body).contains("insufficient authentication scopes")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_are_tried_three_times_and_only_after_outages_with_a_short_wait() {
        let outage = GmailError::Unavailable {
            reason: "backendError".into(),
            retry_after: None,
        };
        let first = read_retry_delay(&outage, 1).unwrap();
        assert!(first >= Duration::from_millis(100) && first <= Duration::from_millis(150));
        let second = read_retry_delay(&outage, 2).unwrap();
        assert!(second >= Duration::from_millis(300) && second <= Duration::from_millis(450));
        assert_eq!(read_retry_delay(&outage, 3), None, "three tries in all");
        let hinted = GmailError::Unavailable {
            reason: "rateLimitExceeded".into(),
            retry_after: Some(Duration::from_secs(1)),
        };
        assert_eq!(read_retry_delay(&hinted, 1), Some(Duration::from_secs(1)));
        let long_hint = GmailError::Unavailable {
            reason: "rateLimitExceeded".into(),
            retry_after: Some(Duration::from_secs(30)),
        };
        assert_eq!(read_retry_delay(&long_hint, 1), None, "left to the job");
        assert_eq!(read_retry_delay(&GmailError::NotFound, 1), None);
        assert_eq!(read_retry_delay(&GmailError::Unauthorized, 1), None);
    }

    #[test]
    fn base64url_without_padding() {
        assert_eq!(super::base64url(b""), "");
        assert_eq!(super::base64url(b"f"), "Zg");
        assert_eq!(super::base64url(b"fo"), "Zm8");
        assert_eq!(super::base64url(b"foo"), "Zm9v");
        assert_eq!(super::base64url(&[0xfb, 0xff]), "-_8");
    }
}
