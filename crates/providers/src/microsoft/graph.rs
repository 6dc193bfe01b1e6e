//! Microsoft Graph's mail API, the part Mailwright uses: delta rounds over a
//! folder (the new-mail cursor), messages and their MIME, a conversation's
//! messages, reply drafts (`createReply`, so Outlook threads them), drafts
//! found again by a marker (a named extended property), sending a draft,
//! and change-notification subscriptions.
//!
//! Errors are sorted into what the caller does: refresh the token once
//! (401), ask for a permission (403), catch up (410 on a delta link), wait
//! as told (429 and 503 with `Retry-After`, per mailbox), or give up. Graph's
//! bodies go to logs only, and only their error code.
//!
//! Facts relied on (Microsoft Graph v1.0 docs): the message resource and its
//! `$value` (MIME); "Get incremental changes to messages in a folder"
//! (`@odata.nextLink` / `@odata.deltaLink`, `$filter=receivedDateTime ge`
//! only on the first request, `Prefer: odata.maxpagesize`); an expired delta
//! token answers 410 `SyncStateNotFound`; `createReply` answers 201 with the
//! draft; `send` answers 202; extended properties are set with
//! `singleValueExtendedProperties` and found with
//! `$filter=singleValueExtendedProperties/Any(ep: ep/id eq '…' and ep/value eq '…')`;
//! throttling is 429 (or 503) with `Retry-After` in seconds.

use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::{Value, json};
use url::Url;

use super::identity::graph_url;

/// Requests to Graph time out after this long.
pub const TIMEOUT: Duration = Duration::from_secs(30);
/// The largest MIME message read (`$value`), like Gmail's limit.
pub const MAX_MIME_BYTES: usize = 50 * 1024 * 1024;
/// The largest JSON answer read.
const MAX_JSON_BYTES: usize = 16 * 1024 * 1024;
/// Pages one delta round may take: a round that does not end is Graph's
/// trouble, not a reason to loop for ever.
pub const MAX_DELTA_PAGES: usize = 200;
/// Messages per delta page asked for.
const DELTA_PAGE_SIZE: u32 = 50;
/// A wait Graph asks for beyond this is capped (the job is retried anyway).
const LONGEST_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// Mailwright's own property set (a GUID of its own) for the named
/// properties it puts on what it writes.
const PROPERTY_SET: &str = "{8f0b4d52-6c1e-4a7b-9d3f-1e2a5c7b9d40}";
/// The property that marks what Mailwright wrote with the message's
/// `Message-ID`: a retry finds what an earlier attempt made by it.
pub const MARKER_PROPERTY: &str =
    "String {8f0b4d52-6c1e-4a7b-9d3f-1e2a5c7b9d40} Name X-Mailwright-Message-ID";
/// What a draft's `X-Mailwright-Source` header says (the message it
/// answers), kept as a property: Graph's reply drafts take no headers.
pub const SOURCE_PROPERTY: &str =
    "String {8f0b4d52-6c1e-4a7b-9d3f-1e2a5c7b9d40} Name X-Mailwright-Source";

/// Set on a draft just before it is sent: a retry that finds it still a
/// draft cannot tell whether Graph took the send, so it does not send again.
pub const SENDING_PROPERTY: &str =
    "String {8f0b4d52-6c1e-4a7b-9d3f-1e2a5c7b9d40} Name X-Mailwright-Sending";

/// The marks on something Mailwright writes.
#[derive(Debug, Clone, Copy)]
pub struct Marker<'a> {
    /// The message's `Message-ID`.
    pub message_id: &'a str,
    /// Its `X-Mailwright-Source`, when it has one.
    pub source: Option<&'a str>,
}

impl Marker<'_> {
    fn properties(&self) -> Value {
        let mut properties = vec![json!({"id": MARKER_PROPERTY, "value": self.message_id})];
        if let Some(source) = self.source {
            properties.push(json!({"id": SOURCE_PROPERTY, "value": source}));
        }
        Value::Array(properties)
    }
}

/// A named property as Graph returns it.
#[derive(Debug, Clone, Deserialize)]
pub struct ExtendedProperty {
    pub id: String,
    #[serde(default)]
    pub value: Option<String>,
}

/// The properties read of a message.
const MESSAGE_FIELDS: &str = "id,conversationId,internetMessageId,subject,from,toRecipients,\
ccRecipients,replyTo,receivedDateTime,sentDateTime,isDraft,parentFolderId";

/// Graph's well-known folders Mailwright reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Folder {
    Inbox,
    Drafts,
    SentItems,
    JunkEmail,
    DeletedItems,
}

impl Folder {
    fn as_str(self) -> &'static str {
        match self {
            Folder::Inbox => "inbox",
            Folder::Drafts => "drafts",
            Folder::SentItems => "sentitems",
            Folder::JunkEmail => "junkemail",
            Folder::DeletedItems => "deleteditems",
        }
    }
}

/// How a Graph call failed, by what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum GraphError {
    /// 401: the access token was refused (refresh it once, then give up).
    #[error("Graph refused the access token")]
    Unauthorized,
    /// 403: the grant lacks a permission (`ErrorAccessDenied`).
    #[error("Graph denied access ({code})")]
    Forbidden { code: String },
    /// 404: no such message (or subscription).
    #[error("no such item at Graph")]
    NotFound,
    /// 410 on a delta link (`SyncStateNotFound`): the cursor is gone; catch
    /// up from a date.
    #[error("the delta link expired")]
    DeltaExpired,
    /// 429 or 503: Graph asks this mailbox to wait (`Retry-After`).
    #[error("Graph throttled the mailbox")]
    Throttled { retry_after: Option<Duration> },
    /// Network trouble, a timeout or another 5xx: try again later.
    #[error("Graph is unavailable: {0}")]
    Unavailable(String),
    /// Any other refusal (`status`), or an answer that is not what Graph
    /// documents (502, as a gateway would say).
    #[error("Graph refused the request (HTTP {status}, {reason})")]
    Rejected { status: u16, reason: String },
}

/// An email address as Graph writes it.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct EmailAddress {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub address: Option<String>,
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Recipient {
    pub email_address: EmailAddress,
}

/// A message, as much of it as Mailwright reads.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GraphMessage {
    pub id: String,
    #[serde(default)]
    pub conversation_id: Option<String>,
    #[serde(default)]
    pub internet_message_id: Option<String>,
    #[serde(default)]
    pub subject: Option<String>,
    #[serde(default)]
    pub from: Option<Recipient>,
    #[serde(default)]
    pub to_recipients: Vec<Recipient>,
    #[serde(default)]
    pub cc_recipients: Vec<Recipient>,
    #[serde(default)]
    pub reply_to: Vec<Recipient>,
    #[serde(default)]
    pub received_date_time: Option<DateTime<Utc>>,
    #[serde(default)]
    pub sent_date_time: Option<DateTime<Utc>>,
    #[serde(default)]
    pub is_draft: Option<bool>,
    #[serde(default)]
    pub parent_folder_id: Option<String>,
    /// Mailwright's source property, when asked for and set.
    #[serde(default, rename = "singleValueExtendedProperties")]
    pub extended_properties: Vec<ExtendedProperty>,
}

impl GraphMessage {
    /// Mailwright's property `name`, if set (Graph may write the property
    /// set's GUID in another case).
    fn property(&self, name: &str) -> Option<&str> {
        self.extended_properties
            .iter()
            .find(|property| {
                property.id.to_ascii_lowercase().contains(PROPERTY_SET)
                    && property.id.ends_with(&format!("Name {name}"))
            })
            .and_then(|property| property.value.as_deref())
    }

    /// The `X-Mailwright-Source` Mailwright put on it, if any.
    pub fn source(&self) -> Option<&str> {
        self.property("X-Mailwright-Source")
    }

    /// Whether Mailwright was about to send it ([`SENDING_PROPERTY`]).
    pub fn being_sent(&self) -> bool {
        self.property("X-Mailwright-Sending") == Some("1")
    }
}

/// One entry of a delta round: a message added or changed, or one that
/// left the folder.
#[derive(Debug, Clone)]
pub enum DeltaItem {
    Changed(Box<GraphMessage>),
    Removed { id: String },
}

/// A finished delta round: what changed, and the link that continues from
/// here (the cursor to store).
#[derive(Debug, Clone)]
pub struct DeltaRound {
    pub items: Vec<DeltaItem>,
    pub delta_link: String,
}

/// A change-notification subscription.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Subscription {
    pub id: String,
    pub expiration_date_time: DateTime<Utc>,
}

#[derive(Deserialize)]
struct Page {
    #[serde(default)]
    value: Vec<Value>,
    #[serde(rename = "@odata.nextLink", default)]
    next_link: Option<String>,
    #[serde(rename = "@odata.deltaLink", default)]
    delta_link: Option<String>,
}

#[derive(Deserialize)]
struct ErrorBody {
    error: ErrorDetail,
}

#[derive(Deserialize)]
struct ErrorDetail {
    #[serde(default)]
    code: String,
}

/// A Graph client: the base URL (`https://graph.microsoft.com`, or the
/// sandbox's) and the HTTP client. Every call takes the mailbox's token.
#[derive(Clone, Debug)]
pub struct Graph {
    base: Url,
    http: reqwest::Client,
}

/// An answer that is not what Graph documents.
fn malformed(reason: impl Into<String>) -> GraphError {
    GraphError::Rejected {
        status: 502,
        reason: reason.into(),
    }
}

fn transport(error: reqwest::Error) -> GraphError {
    GraphError::Unavailable(if error.is_timeout() {
        "timed out".to_owned()
    } else {
        "could not connect".to_owned()
    })
}

/// `Retry-After` in seconds (Graph's form), capped.
fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(|seconds| Duration::from_secs(seconds).min(LONGEST_RETRY_AFTER))
}

/// An OData string literal: quotes doubled.
fn odata_string(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

impl Graph {
    pub fn new(base: Url, http: reqwest::Client) -> Graph {
        Graph { base, http }
    }

    fn url(&self, path: &str) -> Result<Url, GraphError> {
        graph_url(&self.base, path).map_err(|_| malformed("the Graph URL cannot take a path"))
    }

    /// A link Graph handed out (`@odata.nextLink`, `@odata.deltaLink`, or a
    /// stored cursor), accepted only below the configured Graph URL: the
    /// token must never go anywhere else.
    fn own_link(&self, link: &str) -> Result<Url, GraphError> {
        let url = Url::parse(link).map_err(|_| malformed("a Graph link is not a URL"))?;
        let base = self.base.as_str().trim_end_matches('/');
        let same_origin = url.origin() == self.base.origin();
        if !same_origin || !url.as_str().starts_with(base) {
            return Err(malformed("a Graph link points outside the Graph URL"));
        }
        Ok(url)
    }

    /// Send `request` with the token; the answer's body if it succeeded,
    /// read up to `limit` bytes.
    async fn call(
        &self,
        request: reqwest::RequestBuilder,
        token: &SecretString,
        limit: usize,
        delta: bool,
    ) -> Result<(u16, Vec<u8>), GraphError> {
        // Immutable ids: a message keeps its id when it moves between
        // folders, so it is never taken for new mail twice.
        let mut response = request
            .header("Prefer", "IdType=\"ImmutableId\"")
            .timeout(TIMEOUT)
            .bearer_auth(token.expose_secret())
            .send()
            .await
            .map_err(transport)?;
        let status = response.status().as_u16();
        if matches!(status, 429 | 503) {
            return Err(GraphError::Throttled {
                retry_after: retry_after(response.headers()),
            });
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(transport)? {
            if body.len() + chunk.len() > limit {
                return Err(malformed(format!(
                    "Graph's answer is larger than {limit} bytes"
                )));
            }
            body.extend_from_slice(&chunk);
        }
        if (200..300).contains(&status) {
            return Ok((status, body));
        }
        let code = serde_json::from_slice::<ErrorBody>(&body)
            .map(|error| error.error.code)
            .unwrap_or_default();
        Err(match status {
            401 => GraphError::Unauthorized,
            // A permission the grant lacks; other refusals (a policy, a
            // blocked sender) are not the connection's to fix.
            403 if code.eq_ignore_ascii_case("ErrorAccessDenied")
                || code.eq_ignore_ascii_case("Authorization_RequestDenied") =>
            {
                GraphError::Forbidden { code }
            }
            404 => GraphError::NotFound,
            410 if delta => GraphError::DeltaExpired,
            // A malformed or unknown delta token can also be refused as a
            // bad request naming the sync state.
            400 if delta && code.eq_ignore_ascii_case("SyncStateNotFound") => {
                GraphError::DeltaExpired
            }
            500..=599 => GraphError::Unavailable(format!("HTTP {status} {code}")),
            _ => GraphError::Rejected {
                status,
                reason: code,
            },
        })
    }

    async fn json(
        &self,
        request: reqwest::RequestBuilder,
        token: &SecretString,
    ) -> Result<Value, GraphError> {
        let (_, body) = self.call(request, token, MAX_JSON_BYTES, false).await?;
        serde_json::from_slice(&body)
            .map_err(|_| malformed("Graph's answer is not the expected JSON"))
    }

    fn message_from(value: Value) -> Result<GraphMessage, GraphError> {
        serde_json::from_value(value)
            .map_err(|_| malformed("a message is not shaped as Graph documents"))
    }

    /// Start following `folder` from `since`: a first delta round filtered
    /// to mail received since then (so an old inbox is not read whole).
    pub async fn delta_start(
        &self,
        token: &SecretString,
        folder: Folder,
        since: DateTime<Utc>,
    ) -> Result<DeltaRound, GraphError> {
        let mut url = self.url(&format!(
            "/v1.0/me/mailFolders/{}/messages/delta",
            folder.as_str()
        ))?;
        url.query_pairs_mut()
            .append_pair("$select", MESSAGE_FIELDS)
            .append_pair(
                "$filter",
                &format!(
                    "receivedDateTime ge {}",
                    since.to_rfc3339_opts(SecondsFormat::Secs, true)
                ),
            );
        self.delta_round(token, url).await
    }

    /// What changed since `delta_link` (a stored cursor), and the next one.
    /// [`GraphError::DeltaExpired`] when Graph no longer knows it.
    pub async fn delta_next(
        &self,
        token: &SecretString,
        delta_link: &str,
    ) -> Result<DeltaRound, GraphError> {
        let url = self.own_link(delta_link)?;
        self.delta_round(token, url).await
    }

    async fn delta_round(
        &self,
        token: &SecretString,
        first: Url,
    ) -> Result<DeltaRound, GraphError> {
        let mut items = Vec::new();
        let mut next = first;
        for _ in 0..MAX_DELTA_PAGES {
            let request = self
                .http
                .get(next.clone())
                .header("Prefer", format!("odata.maxpagesize={DELTA_PAGE_SIZE}"));
            let (_, body) = self.call(request, token, MAX_JSON_BYTES, true).await?;
            let page: Page = serde_json::from_slice(&body)
                .map_err(|_| malformed("a delta page is not shaped as Graph documents"))?;
            for value in page.value {
                if value.get("@removed").is_some() {
                    if let Some(id) = value.get("id").and_then(Value::as_str) {
                        items.push(DeltaItem::Removed { id: id.to_owned() });
                    }
                } else {
                    items.push(DeltaItem::Changed(Box::new(Self::message_from(value)?)));
                }
            }
            match (page.delta_link, page.next_link) {
                (Some(delta_link), _) => {
                    self.own_link(&delta_link)?;
                    return Ok(DeltaRound { items, delta_link });
                }
                (None, Some(next_link)) => next = self.own_link(&next_link)?,
                (None, None) => {
                    return Err(malformed(
                        "a delta page has neither a next nor a delta link",
                    ));
                }
            }
        }
        Err(malformed(format!(
            "a delta round did not end within {MAX_DELTA_PAGES} pages"
        )))
    }

    /// The message's properties.
    pub async fn message(
        &self,
        token: &SecretString,
        id: &str,
    ) -> Result<GraphMessage, GraphError> {
        let mut url = self.url(&format!("/v1.0/me/messages/{}", path_segment(id)))?;
        url.query_pairs_mut()
            .append_pair("$select", MESSAGE_FIELDS)
            .append_pair("$expand", &expand_source());
        Self::message_from(self.json(self.http.get(url), token).await?)
    }

    /// The id of well-known `folder` (what a message's `parentFolderId`
    /// is compared with).
    pub async fn folder_id(
        &self,
        token: &SecretString,
        folder: Folder,
    ) -> Result<String, GraphError> {
        let mut url = self.url(&format!("/v1.0/me/mailFolders/{}", folder.as_str()))?;
        url.query_pairs_mut().append_pair("$select", "id");
        self.json(self.http.get(url), token)
            .await?
            .get("id")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| malformed("a mail folder has no id"))
    }

    /// The message as MIME (RFC 5322), at most [`MAX_MIME_BYTES`].
    pub async fn mime(&self, token: &SecretString, id: &str) -> Result<Vec<u8>, GraphError> {
        let url = self.url(&format!("/v1.0/me/messages/{}/$value", path_segment(id)))?;
        let (_, body) = self
            .call(self.http.get(url), token, MAX_MIME_BYTES, false)
            .await?;
        Ok(body)
    }

    /// Up to `max` messages of a conversation (any folder), newest first.
    pub async fn conversation(
        &self,
        token: &SecretString,
        conversation_id: &str,
        max: usize,
    ) -> Result<Vec<GraphMessage>, GraphError> {
        let filter = format!("conversationId eq {}", odata_string(conversation_id));
        self.list("/v1.0/me/messages", token, &filter, max).await
    }

    /// The message of `folder` (any folder with `None`) that Mailwright
    /// marked with `marker`, if there is one.
    pub async fn find_marked(
        &self,
        token: &SecretString,
        folder: Option<Folder>,
        marker: &str,
    ) -> Result<Option<GraphMessage>, GraphError> {
        let filter = format!(
            "singleValueExtendedProperties/Any(ep: ep/id eq {} and ep/value eq {})",
            odata_string(MARKER_PROPERTY),
            odata_string(marker)
        );
        let path = match folder {
            Some(folder) => format!("/v1.0/me/mailFolders/{}/messages", folder.as_str()),
            None => "/v1.0/me/messages".to_owned(),
        };
        Ok(self
            .list(&path, token, &filter, 1)
            .await?
            .into_iter()
            .next())
    }

    /// The message whose `Message-ID` is `internet_message_id`, if any.
    pub async fn find_by_internet_id(
        &self,
        token: &SecretString,
        internet_message_id: &str,
    ) -> Result<Option<GraphMessage>, GraphError> {
        let filter = format!("internetMessageId eq {}", odata_string(internet_message_id));
        Ok(self
            .list("/v1.0/me/messages", token, &filter, 1)
            .await?
            .into_iter()
            .next())
    }

    /// The newest `max` messages of `folder`.
    pub async fn recent(
        &self,
        token: &SecretString,
        folder: Folder,
        max: usize,
    ) -> Result<Vec<GraphMessage>, GraphError> {
        let path = format!("/v1.0/me/mailFolders/{}/messages", folder.as_str());
        self.list(&path, token, "", max).await
    }

    async fn list(
        &self,
        path: &str,
        token: &SecretString,
        filter: &str,
        max: usize,
    ) -> Result<Vec<GraphMessage>, GraphError> {
        let mut url = self.url(path)?;
        {
            let mut query = url.query_pairs_mut();
            if !filter.is_empty() {
                query.append_pair("$filter", filter);
            }
            query
                .append_pair("$select", MESSAGE_FIELDS)
                .append_pair("$expand", &expand_source())
                .append_pair("$top", &max.clamp(1, 1000).to_string());
        }
        let page: Page = serde_json::from_value(self.json(self.http.get(url), token).await?)
            .map_err(|_| malformed("a list is not shaped as Graph documents"))?;
        page.value
            .into_iter()
            .take(max)
            .map(Self::message_from)
            .collect()
    }

    /// A reply draft to `id` in the conversation (Outlook threads it),
    /// with `fields` (Graph message properties: `body`, and the reply's own
    /// `subject` and recipients when it has them) and `marker` set on it.
    pub async fn create_reply(
        &self,
        token: &SecretString,
        id: &str,
        mut fields: Value,
        marker: Marker<'_>,
    ) -> Result<GraphMessage, GraphError> {
        let url = self.url(&format!(
            "/v1.0/me/messages/{}/createReply",
            path_segment(id)
        ))?;
        if let Some(object) = fields.as_object_mut() {
            object.insert("singleValueExtendedProperties".into(), marker.properties());
        }
        let body = json!({ "message": fields });
        Self::message_from(self.json(self.http.post(url).json(&body), token).await?)
    }

    /// Mark draft `id` as about to be sent ([`SENDING_PROPERTY`]), or
    /// (`sending` false) as refused before Graph took it.
    pub async fn mark_sending(
        &self,
        token: &SecretString,
        id: &str,
        sending: bool,
    ) -> Result<(), GraphError> {
        let url = self.url(&format!("/v1.0/me/messages/{}", path_segment(id)))?;
        let value = if sending { "1" } else { "0" };
        let body =
            json!({"singleValueExtendedProperties": [{"id": SENDING_PROPERTY, "value": value}]});
        self.json(self.http.patch(url).json(&body), token)
            .await
            .map(drop)
    }

    /// A new draft (not a reply): `fields` are Graph message properties
    /// (`subject`, `body`, `toRecipients`, ...); `marker` is set on it.
    pub async fn create_draft(
        &self,
        token: &SecretString,
        mut fields: Value,
        marker: Marker<'_>,
    ) -> Result<GraphMessage, GraphError> {
        let url = self.url("/v1.0/me/messages")?;
        if let Some(object) = fields.as_object_mut() {
            object.insert("singleValueExtendedProperties".into(), marker.properties());
        }
        Self::message_from(self.json(self.http.post(url).json(&fields), token).await?)
    }

    /// Send draft `id` (Graph moves it to Sent Items).
    pub async fn send_draft(&self, token: &SecretString, id: &str) -> Result<(), GraphError> {
        let url = self.url(&format!("/v1.0/me/messages/{}/send", path_segment(id)))?;
        self.call(
            self.http.post(url).header("Content-Length", "0"),
            token,
            MAX_JSON_BYTES,
            false,
        )
        .await
        .map(|_| ())
    }

    pub async fn delete(&self, token: &SecretString, id: &str) -> Result<(), GraphError> {
        let url = self.url(&format!("/v1.0/me/messages/{}", path_segment(id)))?;
        self.call(self.http.delete(url), token, MAX_JSON_BYTES, false)
            .await
            .map(|_| ())
    }

    /// Ask Graph to post new mail of the inbox to `notification_url` until
    /// `expires` (Graph first checks the URL answers its validation).
    pub async fn subscribe(
        &self,
        token: &SecretString,
        notification_url: &str,
        client_state: &SecretString,
        expires: DateTime<Utc>,
    ) -> Result<Subscription, GraphError> {
        let url = self.url("/v1.0/subscriptions")?;
        let body = json!({
            "changeType": "created",
            "notificationUrl": notification_url,
            "resource": "me/mailFolders('Inbox')/messages",
            "expirationDateTime": expires.to_rfc3339_opts(SecondsFormat::Secs, true),
            "clientState": client_state.expose_secret(),
        });
        serde_json::from_value(self.json(self.http.post(url).json(&body), token).await?)
            .map_err(|_| malformed("a subscription is not shaped as Graph documents"))
    }

    /// Move subscription `id`'s end to `expires`, with its notifications
    /// going to `notification_url` (Graph validates a changed one first).
    pub async fn renew(
        &self,
        token: &SecretString,
        id: &str,
        notification_url: &str,
        expires: DateTime<Utc>,
    ) -> Result<Subscription, GraphError> {
        let url = self.url(&format!("/v1.0/subscriptions/{}", path_segment(id)))?;
        let body = json!({
            "expirationDateTime": expires.to_rfc3339_opts(SecondsFormat::Secs, true),
            "notificationUrl": notification_url,
        });
        serde_json::from_value(self.json(self.http.patch(url).json(&body), token).await?)
            .map_err(|_| malformed("a subscription is not shaped as Graph documents"))
    }

    pub async fn unsubscribe(&self, token: &SecretString, id: &str) -> Result<(), GraphError> {
        let url = self.url(&format!("/v1.0/subscriptions/{}", path_segment(id)))?;
        match self
            .call(self.http.delete(url), token, MAX_JSON_BYTES, false)
            .await
        {
            Ok(_) | Err(GraphError::NotFound) => Ok(()),
            Err(error) => Err(error),
        }
    }
}

/// `$expand` for the properties Mailwright reads back.
fn expand_source() -> String {
    format!(
        "singleValueExtendedProperties($filter=id eq {} or id eq {})",
        odata_string(SOURCE_PROPERTY),
        odata_string(SENDING_PROPERTY)
    )
}

/// An id as one path segment: Graph ids are URL-safe base64, but an id
/// from elsewhere (a workflow step) must not add segments or a query.
fn path_segment(id: &str) -> String {
    url::form_urlencoded::byte_serialize(id.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
        // `.` and `..` would be read as path steps.
        .replace('.', "%2E")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_outside_the_graph_url_are_refused() {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let graph = Graph::new(
            Url::parse("http://127.0.0.1:9/microsoft").unwrap(),
            reqwest::Client::new(),
        );
        assert!(graph
            .own_link("http://127.0.0.1:9/microsoft/v1.0/me/mailFolders/inbox/messages/delta?$deltatoken=x")
            .is_ok());
        for stranger in [
            "http://evil.example/microsoft/v1.0/me/messages",
            "http://127.0.0.1:10/microsoft/v1.0/me/messages",
            "http://127.0.0.1:9/elsewhere/v1.0",
            "not a url",
        ] {
            assert!(graph.own_link(stranger).is_err(), "{stranger}");
        }
    }

    #[test]
    fn ids_stay_one_path_segment_and_odata_strings_are_quoted() {
        assert_eq!(path_segment("AAMk/../x?y=1"), "AAMk%2F%2E%2E%2Fx%3Fy%3D1");
        assert_eq!(path_segment(".."), "%2E%2E");
        assert_eq!(odata_string("it's"), "'it''s'");
    }

    #[test]
    fn retry_after_is_read_in_seconds_and_capped() {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(reqwest::header::RETRY_AFTER, "7".parse().unwrap());
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(7)));
        headers.insert(reqwest::header::RETRY_AFTER, "999999".parse().unwrap());
        assert_eq!(retry_after(&headers), Some(LONGEST_RETRY_AFTER));
        headers.insert(reqwest::header::RETRY_AFTER, "soon".parse().unwrap());
        assert_eq!(retry_after(&headers), None);
    }
}
