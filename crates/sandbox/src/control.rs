//! Test controls: Rust methods on [`Sandbox`] and the same operations as
//! JSON under `/_sandbox/...`.

use std::collections::BTreeMap;
use std::time::Duration as StdDuration;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::config::OAuthClient;
use crate::gmail::mailbox::{self, Mailbox, NewMessage, StoredMessage, Threading, UserLabel};
use crate::google_error;
use crate::{Sandbox, state};

/// The user's answer on the consent screen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Consent {
    pub(crate) allow: bool,
    /// Account to sign in as; unknown emails are created. Default: the
    /// `login_hint` if it is a known account, else the first account.
    pub(crate) account: Option<String>,
    /// Ticked scopes; `None` keeps all requested scopes ticked.
    pub(crate) scopes: Option<Vec<String>>,
}

impl Consent {
    pub fn allow_all() -> Self {
        Self {
            allow: true,
            account: None,
            scopes: None,
        }
    }

    /// Allow, with only these scopes ticked (short `email`/`profile` accepted).
    pub fn allow_only<S: Into<String>>(scopes: impl IntoIterator<Item = S>) -> Self {
        Self {
            allow: true,
            account: None,
            scopes: Some(scopes.into_iter().map(Into::into).collect()),
        }
    }

    pub fn deny() -> Self {
        Self {
            allow: false,
            account: None,
            scopes: None,
        }
    }

    pub fn as_account(mut self, email: impl Into<String>) -> Self {
        self.account = Some(email.into());
        self
    }
}

/// A failure to inject into the next calls of a method.
///
/// Method names: Gmail's quota names (`messages.get`, `messages.send`,
/// `history.list`, `getProfile`, ...) and `oauth.token`, `oauth.revoke`,
/// `oauth.userinfo`. Gmail faults strike after authentication and scope
/// checks, before quota is charged; the OAuth endpoints answer injected
/// faults with the same Google API error bodies.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Fault {
    /// 429 `rateLimitExceeded`.
    RateLimited,
    /// 403 `userRateLimitExceeded`.
    UserRateLimited,
    /// 500 `backendError`.
    BackendError,
    /// 401 `authError`, as for a token Google no longer accepts.
    InvalidCredentials,
    /// Answer normally, but only after this long (for client timeouts).
    Delay { millis: u64 },
    /// Any status and JSON body.
    Status { status: u16, body: Value },
}

/// Runs an injected fault: `Some(response)` replaces the real answer.
pub(crate) async fn apply_fault(fault: Option<Fault>) -> Option<Response> {
    match fault? {
        Fault::RateLimited => Some(google_error::rate_limited()),
        Fault::UserRateLimited => Some(google_error::user_rate_limited()),
        Fault::BackendError => Some(google_error::backend_error()),
        Fault::InvalidCredentials => Some(google_error::invalid_credentials()),
        Fault::Delay { millis } => {
            tokio::time::sleep(StdDuration::from_millis(millis)).await;
            None
        }
        Fault::Status { status, body } => Some(google_error::custom(
            StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            &body,
        )),
    }
}

/// Mail arriving from outside, as a test describes it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct InboundMessage {
    pub from: String,
    pub to: Vec<String>,
    pub cc: Vec<String>,
    pub subject: String,
    pub text: String,
    pub html: Option<String>,
    /// Without angle brackets; generated when absent.
    pub message_id: Option<String>,
    /// Extra headers, e.g. `("List-Unsubscribe", "<mailto:u@x>")`,
    /// `("In-Reply-To", "<id>")`, `("References", "<id>")`.
    pub headers: Vec<(String, String)>,
    /// Labels to apply; default `INBOX` and `UNREAD`. User label ids
    /// (`Label_1`, from `labels.create` or [`Sandbox::create_label`]) are
    /// taken as given.
    pub labels: Vec<String>,
    /// Files attached to the built message: with any, it becomes
    /// `multipart/mixed` (the text or text+HTML body first, then one
    /// base64 part per attachment with `Content-Disposition: attachment;
    /// filename="..."`), and `messages.get?format=full` shows each as a
    /// part with that `filename`. Ignored with `raw`.
    pub attachments: Vec<Attachment>,
    /// A complete RFC 822 message to deliver instead of building one
    /// (any MIME structure, attachments included).
    pub raw: Option<String>,
    /// Default: the sandbox clock's now.
    pub internal_date: Option<DateTime<Utc>>,
}

impl InboundMessage {
    pub fn new(
        from: impl Into<String>,
        to: impl Into<String>,
        subject: impl Into<String>,
        text: impl Into<String>,
    ) -> Self {
        Self {
            from: from.into(),
            to: vec![to.into()],
            subject: subject.into(),
            text: text.into(),
            ..Self::default()
        }
    }

    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    pub fn labels<S: Into<String>>(mut self, labels: impl IntoIterator<Item = S>) -> Self {
        self.labels = labels.into_iter().map(Into::into).collect();
        self
    }

    pub fn attachment(mut self, attachment: Attachment) -> Self {
        self.attachments.push(attachment);
        self
    }

    fn boundary() -> String {
        format!("sbx-{}", state::random_token(16).replace(['-', '_'], "0"))
    }

    /// The body as one MIME entity: its header lines and its content.
    fn body_entity(&self) -> (String, String) {
        match &self.html {
            None => (
                "Content-Type: text/plain; charset=UTF-8\r\nContent-Transfer-Encoding: 8bit\r\n"
                    .to_owned(),
                self.text.clone(),
            ),
            Some(html) => {
                let boundary = Self::boundary();
                (
                    format!("Content-Type: multipart/alternative; boundary=\"{boundary}\"\r\n"),
                    format!(
                        "--{boundary}\r\nContent-Type: text/plain; charset=UTF-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n{}\r\n--{boundary}\r\nContent-Type: text/html; charset=UTF-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n{html}\r\n--{boundary}--\r\n",
                        self.text
                    ),
                )
            }
        }
    }

    fn to_rfc822(&self, message_id: &str, date: DateTime<Utc>) -> String {
        let mut out = String::new();
        let mut push = |name: &str, value: &str| {
            // Header injection through values would corrupt the message.
            let value = value.replace(['\r', '\n'], " ");
            out.push_str(&format!("{name}: {value}\r\n"));
        };
        push("From", &self.from);
        push("To", &self.to.join(", "));
        if !self.cc.is_empty() {
            push("Cc", &self.cc.join(", "));
        }
        push("Subject", &self.subject);
        push("Date", &date.to_rfc2822());
        push("Message-ID", &format!("<{message_id}>"));
        for (name, value) in &self.headers {
            push(name, value);
        }
        push("MIME-Version", "1.0");
        let (headers, content) = self.body_entity();
        if self.attachments.is_empty() {
            out.push_str(&headers);
            out.push_str("\r\n");
            out.push_str(&content);
            return out;
        }
        let boundary = Self::boundary();
        out.push_str(&format!(
            "Content-Type: multipart/mixed; boundary=\"{boundary}\"\r\n\r\n--{boundary}\r\n{headers}\r\n{content}\r\n"
        ));
        for attachment in &self.attachments {
            out.push_str(&format!("--{boundary}\r\n{}", attachment.to_part()));
        }
        out.push_str(&format!("--{boundary}--\r\n"));
        out
    }
}

/// A file attached to an [`InboundMessage`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Attachment {
    pub filename: String,
    /// Default `application/octet-stream`.
    pub content_type: String,
    /// The file's content (sent base64-encoded).
    pub text: String,
}

impl Attachment {
    pub fn new(
        filename: impl Into<String>,
        content_type: impl Into<String>,
        text: impl Into<String>,
    ) -> Self {
        Self {
            filename: filename.into(),
            content_type: content_type.into(),
            text: text.into(),
        }
    }

    fn to_part(&self) -> String {
        use base64::Engine;
        // A quoted-string parameter: no quotes, backslashes or line breaks.
        let filename = self.filename.replace(['"', '\\', '\r', '\n'], "_");
        let content_type = match self.content_type.trim() {
            "" => "application/octet-stream".to_owned(),
            ct => ct.replace(['\r', '\n', ';'], " "),
        };
        let encoded = base64::engine::general_purpose::STANDARD.encode(self.text.as_bytes());
        let mut lines = String::new();
        for chunk in encoded.as_bytes().chunks(76) {
            lines.push_str(&String::from_utf8_lossy(chunk));
            lines.push_str("\r\n");
        }
        format!(
            "Content-Type: {content_type}; name=\"{filename}\"\r\nContent-Disposition: attachment; filename=\"{filename}\"\r\nContent-Transfer-Encoding: base64\r\n\r\n{lines}"
        )
    }
}

/// Where a delivered copy landed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivered {
    pub email: String,
    pub id: String,
    pub thread_id: String,
}

/// A stored message, decoded for assertions.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MessageView {
    pub id: String,
    pub thread_id: String,
    pub label_ids: Vec<String>,
    /// `label_ids`' names, in the same order: a user label's name, a
    /// system label's id.
    pub label_names: Vec<String>,
    pub from: Option<String>,
    pub to: Vec<String>,
    pub cc: Vec<String>,
    pub bcc: Vec<String>,
    pub subject: String,
    pub message_id: Option<String>,
    pub references: Vec<String>,
    pub text: String,
    /// The RFC 822 source (lossy UTF-8).
    pub raw: String,
    pub internal_date: DateTime<Utc>,
}

impl MessageView {
    fn of(mailbox: &Mailbox, m: &StoredMessage) -> Self {
        Self {
            id: m.id.clone(),
            thread_id: m.thread_id.clone(),
            label_ids: m.label_ids.clone(),
            label_names: m
                .label_ids
                .iter()
                .map(|id| mailbox.label_name(id).to_owned())
                .collect(),
            from: m.parsed.from.clone(),
            to: m.parsed.to.clone(),
            cc: m.parsed.cc.clone(),
            bcc: m.parsed.bcc.clone(),
            subject: m.parsed.subject.clone(),
            message_id: m.parsed.message_id.clone(),
            references: m.parsed.references.clone(),
            text: m.parsed.text.clone(),
            raw: String::from_utf8_lossy(&m.raw).into_owned(),
            internal_date: m.internal_date,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DraftView {
    pub draft_id: String,
    pub message: MessageView,
}

/// A user label of a mailbox (`labels.create`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabelView {
    /// `Label_1`, `Label_2`, ...
    pub id: String,
    pub name: String,
}

impl From<&UserLabel> for LabelView {
    fn from(label: &UserLabel) -> Self {
        Self {
            id: label.id.clone(),
            name: label.name.clone(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountInfo {
    pub email: String,
    pub name: String,
    pub sub: String,
}

impl From<&state::Account> for AccountInfo {
    fn from(a: &state::Account) -> Self {
        Self {
            email: a.email.clone(),
            name: a.name.clone(),
            sub: a.sub.clone(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ControlError {
    UnknownAccount(String),
    /// No draft with this id in the account's mailbox.
    UnknownDraft(String),
    /// None of the message's recipients is a sandbox account.
    NoSandboxRecipient,
    /// A label name that is empty or a system label's.
    InvalidLabelName(String),
}

impl std::fmt::Display for ControlError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::UnknownAccount(email) => write!(f, "no sandbox account {email}"),
            Self::UnknownDraft(draft) => write!(f, "no draft {draft}"),
            Self::NoSandboxRecipient => write!(f, "no recipient is a sandbox account"),
            Self::InvalidLabelName(name) => {
                write!(f, "not a name a user label can take: {name:?}")
            }
        }
    }
}

impl std::error::Error for ControlError {}

impl Sandbox {
    pub fn register_client(&self, client: OAuthClient) {
        self.lock().clients.insert(client.client_id.clone(), client);
    }

    /// Creates an account (idempotent on email) with an empty mailbox.
    pub fn create_account(&self, email: &str, name: &str) -> AccountInfo {
        AccountInfo::from(&self.lock().ensure_account(email, Some(name)))
    }

    pub fn accounts(&self) -> Vec<AccountInfo> {
        self.lock().accounts.iter().map(AccountInfo::from).collect()
    }

    /// Delivers mail from outside to every sandbox account among its
    /// To/Cc recipients, threading it as Gmail threads incoming replies.
    pub fn deliver(&self, message: &InboundMessage) -> Result<Vec<Delivered>, ControlError> {
        let mut world = self.lock();
        let now = world.now();
        let date = message.internal_date.unwrap_or(now);
        let raw = match &message.raw {
            Some(raw) => raw.clone().into_bytes(),
            None => {
                let message_id = message.message_id.clone().unwrap_or_else(|| {
                    format!(
                        "sbx.{}@inbound.sandbox",
                        state::random_token(20).replace(['-', '_'], "x")
                    )
                });
                message.to_rfc822(&message_id, date).into_bytes()
            }
        };
        let parsed = crate::gmail::mime::parse(&raw);
        let mut recipients: Vec<String> = parsed
            .to
            .iter()
            .chain(&parsed.cc)
            .map(|r| r.to_ascii_lowercase())
            .filter(|r| world.mailbox(r).is_some())
            .collect();
        recipients.sort();
        recipients.dedup();
        if recipients.is_empty() {
            return Err(ControlError::NoSandboxRecipient);
        }
        let labels = if message.labels.is_empty() {
            vec![mailbox::INBOX.to_owned(), mailbox::UNREAD.to_owned()]
        } else {
            message.labels.clone()
        };
        let mut delivered = Vec::new();
        for recipient in recipients {
            let id = world.new_message_id();
            let history_id = world.next_history_id();
            if let Some(inbox) = world.mailbox_mut(&recipient) {
                let stored = inbox.add(
                    NewMessage {
                        id,
                        raw: raw.clone(),
                        label_ids: labels.clone(),
                        internal_date: date,
                    },
                    Threading::Inbound,
                    history_id,
                );
                delivered.push(Delivered {
                    email: recipient,
                    id: stored.id.clone(),
                    thread_id: stored.thread_id.clone(),
                });
            }
        }
        drop(world);
        self.wake_publisher();
        Ok(delivered)
    }

    /// Makes the next `times` calls of `method` fail (or stall) with `fault`.
    pub fn inject_fault(&self, method: &str, fault: Fault, times: u32) {
        let mut world = self.lock();
        let queue = world.faults.entry(method.to_owned()).or_default();
        queue.extend(std::iter::repeat_n(fault, times as usize));
    }

    /// The next `times` calls of `method` (`messages.send`, `drafts.create`,
    /// `messages.modify`, `labels.create`) take effect at once but answer
    /// only after `stall`: a client that dies meanwhile never learns that
    /// Gmail accepted its request.
    pub fn stall_answer_after_commit(&self, method: &str, stall: StdDuration, times: u32) {
        let mut world = self.lock();
        let queue = world.stalled_answers.entry(method.to_owned()).or_default();
        queue.extend(std::iter::repeat_n(stall, times as usize));
    }

    pub fn clear_faults(&self) {
        let mut world = self.lock();
        world.faults.clear();
        world.stalled_answers.clear();
    }

    /// Expires one access token now. Returns whether it existed.
    pub fn expire_access_token(&self, token: &str) -> bool {
        let mut world = self.lock();
        let past = world.now() - Duration::seconds(1);
        match world.access_tokens.get_mut(token) {
            Some(access) => {
                access.expires_at = past;
                true
            }
            None => false,
        }
    }

    /// Expires every access token of an account; returns how many.
    pub fn expire_access_tokens_of(&self, email: &str) -> usize {
        let mut world = self.lock();
        let past = world.now() - Duration::seconds(1);
        let mut count = 0;
        for access in world.access_tokens.values_mut() {
            if access.email.eq_ignore_ascii_case(email) && access.expires_at > past {
                access.expires_at = past;
                count += 1;
            }
        }
        count
    }

    /// As if the user removed the app in their Google Account settings.
    pub fn revoke_grant(&self, email: &str, client_id: &str) -> bool {
        self.lock().revoke_grant(client_id, email)
    }

    /// Calls of a method so far (see [`Fault`] for method names; token
    /// calls are also counted as `oauth.token.refresh_token` and
    /// `oauth.token.authorization_code`).
    pub fn call_count(&self, method: &str) -> u64 {
        self.lock().calls.get(method).copied().unwrap_or(0)
    }

    pub fn call_counts(&self) -> BTreeMap<String, u64> {
        self.lock().calls.clone()
    }

    /// Gmail quota units an account has spent.
    pub fn quota_used(&self, email: &str) -> u64 {
        self.lock()
            .quota
            .get(&email.to_ascii_lowercase())
            .copied()
            .unwrap_or(0)
    }

    /// `read` of the account's mailbox, under the lock.
    fn read_mailbox<T>(
        &self,
        email: &str,
        read: impl FnOnce(&Mailbox) -> T,
    ) -> Result<T, ControlError> {
        let world = self.lock();
        world
            .mailbox(email)
            .map(read)
            .ok_or_else(|| ControlError::UnknownAccount(email.to_owned()))
    }

    fn messages_where(
        &self,
        email: &str,
        label: Option<&str>,
    ) -> Result<Vec<MessageView>, ControlError> {
        self.read_mailbox(email, |mailbox| {
            mailbox
                .messages
                .iter()
                .filter(|m| label.is_none_or(|l| m.has_label(l)))
                .map(|m| MessageView::of(mailbox, m))
                .collect()
        })
    }

    /// What the account sent through `messages.send`, oldest first.
    pub fn sent_messages(&self, email: &str) -> Result<Vec<MessageView>, ControlError> {
        self.messages_where(email, Some(mailbox::SENT))
    }

    /// How many messages the account sent: for polling while a benchmark
    /// runs. (`sent_messages` builds a view of every message, raw source
    /// included, while it holds the lock every Gmail call needs.)
    pub fn sent_count(&self, email: &str) -> Result<usize, ControlError> {
        self.read_mailbox(email, |mailbox| {
            mailbox
                .messages
                .iter()
                .filter(|m| m.has_label(mailbox::SENT))
                .count()
        })
    }

    /// Every message in the account's mailbox, oldest first.
    pub fn messages(&self, email: &str) -> Result<Vec<MessageView>, ControlError> {
        self.messages_where(email, None)
    }

    pub fn drafts(&self, email: &str) -> Result<Vec<DraftView>, ControlError> {
        self.read_mailbox(email, |mailbox| {
            mailbox
                .drafts
                .iter()
                .filter_map(|d| {
                    Some(DraftView {
                        draft_id: d.id.clone(),
                        message: MessageView::of(mailbox, mailbox.message(&d.message_id)?),
                    })
                })
                .collect()
        })
    }

    /// The mailbox's user labels, in creation order (system labels are
    /// not listed: their names are their ids).
    pub fn labels(&self, email: &str) -> Result<Vec<LabelView>, ControlError> {
        self.read_mailbox(email, |mailbox| {
            mailbox.user_labels.iter().map(LabelView::from).collect()
        })
    }

    /// Creates a user label as `labels.create` would, without a token or
    /// a counted call; a label already named so (case-insensitively) is
    /// returned as it is.
    pub fn create_label(&self, email: &str, name: &str) -> Result<LabelView, ControlError> {
        if name.trim().is_empty()
            || name.chars().any(char::is_control)
            || mailbox::is_reserved_label_name(name)
        {
            return Err(ControlError::InvalidLabelName(name.to_owned()));
        }
        let mut world = self.lock();
        let mailbox = world
            .mailbox_mut(email)
            .ok_or_else(|| ControlError::UnknownAccount(email.to_owned()))?;
        if let Some(existing) = mailbox.user_label_named(name) {
            return Ok(LabelView::from(existing));
        }
        Ok(LabelView::from(mailbox.create_label(
            name,
            "labelShow",
            "show",
        )))
    }

    /// Current `historyId` of a mailbox.
    /// The person edits draft `draft_id` in Gmail: its text becomes `text`
    /// (Gmail replaces the draft's message: a new message id, the same
    /// draft id, thread and headers).
    pub fn edit_draft(&self, email: &str, draft_id: &str, text: &str) -> Result<(), ControlError> {
        crate::gmail::edit_draft(&mut self.lock(), email, draft_id, text)
            .map_err(|_| ControlError::UnknownDraft(format!("{draft_id} of {email}")))
    }

    /// The person sends draft `draft_id` from Gmail: the draft is gone and
    /// a message labelled SENT, with the draft's headers, is in its thread.
    /// The sent message's id.
    pub fn send_draft(&self, email: &str, draft_id: &str) -> Result<String, ControlError> {
        let sent = crate::gmail::send_draft_as_is(&mut self.lock(), email, draft_id)
            .map_err(|_| ControlError::UnknownDraft(format!("{draft_id} of {email}")))?;
        self.wake_publisher();
        Ok(sent["id"].as_str().unwrap_or_default().to_owned())
    }

    /// The person deletes draft `draft_id` in Gmail.
    pub fn delete_draft(&self, email: &str, draft_id: &str) -> Result<(), ControlError> {
        crate::gmail::delete_draft(&mut self.lock(), email, draft_id)
            .map_err(|_| ControlError::UnknownDraft(format!("{draft_id} of {email}")))
    }

    /// Set the account's Gmail signature (HTML, as Gmail's settings keep
    /// it; `settings.sendAs.list` answers it for the default address).
    pub fn set_signature(&self, email: &str, html: &str) -> Result<(), ControlError> {
        let mut world = self.lock();
        let mailbox = world
            .mailbox_mut(email)
            .ok_or_else(|| ControlError::UnknownAccount(email.to_owned()))?;
        mailbox.signature = html.to_owned();
        Ok(())
    }

    pub fn history_id(&self, email: &str) -> Result<u64, ControlError> {
        self.read_mailbox(email, |mailbox| mailbox.history_id)
    }

    /// Forgets history up to now, so any older `startHistoryId` gets 404.
    pub fn expire_history(&self, email: &str) -> Result<(), ControlError> {
        let mut world = self.lock();
        let mailbox = world
            .mailbox_mut(email)
            .ok_or_else(|| ControlError::UnknownAccount(email.to_owned()))?;
        mailbox.expire_history();
        Ok(())
    }

    /// Moves the sandbox clock forward (token and code expiry, `newer_than:`).
    pub fn advance_clock(&self, by: StdDuration) {
        let by = Duration::from_std(by).unwrap_or(Duration::zero());
        let mut world = self.lock();
        world.clock_offset = world
            .clock_offset
            .checked_add(&by)
            .unwrap_or(world.clock_offset);
    }
}

pub(crate) fn routes() -> Router<Sandbox> {
    Router::new()
        .route(
            "/_sandbox/accounts",
            get(list_accounts).post(create_account),
        )
        .route("/_sandbox/accounts/{email}/messages", get(account_messages))
        .route("/_sandbox/accounts/{email}/sent", get(account_sent))
        .route("/_sandbox/accounts/{email}/drafts", get(account_drafts))
        .route(
            "/_sandbox/accounts/{email}/labels",
            get(account_labels).post(account_create_label),
        )
        .route(
            "/_sandbox/accounts/{email}/history/expire",
            post(account_expire_history),
        )
        .route("/_sandbox/clients", post(register_client))
        .route("/_sandbox/deliver", post(deliver))
        .route(
            "/_sandbox/pubsub/subscription",
            axum::routing::put(set_push_subscription),
        )
        .route("/_sandbox/pubsub/deliveries", get(push_deliveries))
        .route("/_sandbox/faults", post(inject_fault).delete(clear_faults))
        .route("/_sandbox/tokens/expire", post(expire_tokens))
        .route("/_sandbox/grants/revoke", post(revoke_grant))
        .route("/_sandbox/calls", get(calls))
        .route("/_sandbox/quota", get(quota))
        .route("/_sandbox/clock/advance", post(advance_clock))
        .route("/_sandbox/approve", post(approve))
}

pub(crate) fn control_error(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({ "error": message }))).into_response()
}

/// A control request body that did not parse; answered 400 with the reason.
pub(crate) struct BadBody(String);

impl IntoResponse for BadBody {
    fn into_response(self) -> Response {
        control_error(
            StatusCode::BAD_REQUEST,
            &format!("invalid JSON body: {}", self.0),
        )
    }
}

pub(crate) fn body<T: for<'de> Deserialize<'de>>(bytes: &Bytes) -> Result<T, BadBody> {
    serde_json::from_slice(bytes).map_err(|e| BadBody(e.to_string()))
}

fn from_result<T: Serialize>(result: Result<T, ControlError>) -> Response {
    match result {
        Ok(value) => Json(value).into_response(),
        Err(e) => control_error(StatusCode::NOT_FOUND, &e.to_string()),
    }
}

async fn list_accounts(State(sandbox): State<Sandbox>) -> Response {
    Json(sandbox.accounts()).into_response()
}

#[derive(Deserialize)]
struct NewAccount {
    email: String,
    #[serde(default)]
    name: Option<String>,
}

async fn create_account(State(sandbox): State<Sandbox>, bytes: Bytes) -> Response {
    let new: NewAccount = match body(&bytes) {
        Ok(new) => new,
        Err(bad) => return bad.into_response(),
    };
    if !new.email.contains('@') {
        return control_error(StatusCode::BAD_REQUEST, "email must contain @");
    }
    let account = AccountInfo::from(
        &sandbox
            .lock()
            .ensure_account(&new.email, new.name.as_deref()),
    );
    (StatusCode::CREATED, Json(account)).into_response()
}

async fn account_messages(State(sandbox): State<Sandbox>, Path(email): Path<String>) -> Response {
    from_result(sandbox.messages(&email))
}

async fn account_sent(State(sandbox): State<Sandbox>, Path(email): Path<String>) -> Response {
    from_result(sandbox.sent_messages(&email))
}

async fn account_drafts(State(sandbox): State<Sandbox>, Path(email): Path<String>) -> Response {
    from_result(sandbox.drafts(&email))
}

async fn account_labels(State(sandbox): State<Sandbox>, Path(email): Path<String>) -> Response {
    from_result(sandbox.labels(&email))
}

#[derive(Deserialize)]
struct NewLabel {
    name: String,
}

async fn account_create_label(
    State(sandbox): State<Sandbox>,
    Path(email): Path<String>,
    bytes: Bytes,
) -> Response {
    let new: NewLabel = match body(&bytes) {
        Ok(new) => new,
        Err(bad) => return bad.into_response(),
    };
    match sandbox.create_label(&email, &new.name) {
        Ok(label) => Json(label).into_response(),
        Err(e @ ControlError::InvalidLabelName(_)) => {
            control_error(StatusCode::BAD_REQUEST, &e.to_string())
        }
        Err(e) => control_error(StatusCode::NOT_FOUND, &e.to_string()),
    }
}

async fn account_expire_history(
    State(sandbox): State<Sandbox>,
    Path(email): Path<String>,
) -> Response {
    from_result(sandbox.expire_history(&email).map(|()| json!({})))
}

async fn register_client(State(sandbox): State<Sandbox>, bytes: Bytes) -> Response {
    match body::<OAuthClient>(&bytes) {
        Ok(client) => {
            sandbox.register_client(client);
            (StatusCode::CREATED, Json(json!({}))).into_response()
        }
        Err(bad) => bad.into_response(),
    }
}

/// `POST /_sandbox/deliver`: an [`InboundMessage`] as JSON, e.g.
/// `{"from", "to": [..], "subject", "text", "html"?, "labels"?: [..],
/// "attachments"?: [{"filename", "content_type", "text"}], "raw"?}` →
/// `[{"email", "id", "thread_id"}]`, one per sandbox recipient; 422 when
/// no recipient is a sandbox account.
async fn deliver(State(sandbox): State<Sandbox>, bytes: Bytes) -> Response {
    let message: InboundMessage = match body(&bytes) {
        Ok(message) => message,
        Err(bad) => return bad.into_response(),
    };
    match sandbox.deliver(&message) {
        Ok(delivered) => Json(delivered).into_response(),
        Err(e) => control_error(StatusCode::UNPROCESSABLE_ENTITY, &e.to_string()),
    }
}

async fn set_push_subscription(State(sandbox): State<Sandbox>, bytes: Bytes) -> Response {
    let subscription: crate::pubsub::PushSubscription = match body(&bytes) {
        Ok(subscription) => subscription,
        Err(bad) => return bad.into_response(),
    };
    sandbox.set_push_subscription(subscription);
    StatusCode::NO_CONTENT.into_response()
}

async fn push_deliveries(State(sandbox): State<Sandbox>) -> Response {
    Json(sandbox.push_deliveries()).into_response()
}

#[derive(Deserialize)]
struct FaultRequest {
    method: String,
    fault: Fault,
    #[serde(default = "one")]
    times: u32,
}

fn one() -> u32 {
    1
}

async fn inject_fault(State(sandbox): State<Sandbox>, bytes: Bytes) -> Response {
    match body::<FaultRequest>(&bytes) {
        Ok(request) => {
            sandbox.inject_fault(&request.method, request.fault, request.times);
            Json(json!({})).into_response()
        }
        Err(bad) => bad.into_response(),
    }
}

async fn clear_faults(State(sandbox): State<Sandbox>) -> Response {
    sandbox.clear_faults();
    Json(json!({})).into_response()
}

#[derive(Deserialize)]
struct ExpireTokens {
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    email: Option<String>,
}

async fn expire_tokens(State(sandbox): State<Sandbox>, bytes: Bytes) -> Response {
    let request: ExpireTokens = match body(&bytes) {
        Ok(request) => request,
        Err(bad) => return bad.into_response(),
    };
    let expired = match (&request.token, &request.email) {
        (Some(token), _) => usize::from(sandbox.expire_access_token(token)),
        (None, Some(email)) => sandbox.expire_access_tokens_of(email),
        (None, None) => return control_error(StatusCode::BAD_REQUEST, "give token or email"),
    };
    Json(json!({ "expired": expired })).into_response()
}

#[derive(Deserialize)]
struct RevokeGrant {
    email: String,
    client_id: String,
}

async fn revoke_grant(State(sandbox): State<Sandbox>, bytes: Bytes) -> Response {
    match body::<RevokeGrant>(&bytes) {
        Ok(r) => {
            Json(json!({ "revoked": sandbox.revoke_grant(&r.email, &r.client_id) })).into_response()
        }
        Err(bad) => bad.into_response(),
    }
}

async fn calls(State(sandbox): State<Sandbox>) -> Response {
    Json(sandbox.call_counts()).into_response()
}

async fn quota(State(sandbox): State<Sandbox>) -> Response {
    Json(sandbox.lock().quota.clone()).into_response()
}

#[derive(Deserialize)]
struct AdvanceClock {
    seconds: u64,
}

async fn advance_clock(State(sandbox): State<Sandbox>, bytes: Bytes) -> Response {
    match body::<AdvanceClock>(&bytes) {
        Ok(r) => {
            sandbox.advance_clock(StdDuration::from_secs(r.seconds));
            Json(json!({})).into_response()
        }
        Err(bad) => bad.into_response(),
    }
}

#[derive(Deserialize)]
struct ApproveRequest {
    authorization_url: String,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    scopes: Option<Vec<String>>,
    #[serde(default)]
    deny: bool,
}

async fn approve(State(sandbox): State<Sandbox>, bytes: Bytes) -> Response {
    let request: ApproveRequest = match body(&bytes) {
        Ok(request) => request,
        Err(bad) => return bad.into_response(),
    };
    let mut consent = match (request.deny, request.scopes) {
        (true, _) => Consent::deny(),
        (false, Some(scopes)) => Consent::allow_only(scopes),
        (false, None) => Consent::allow_all(),
    };
    consent.account = request.email;
    match sandbox.approve(&request.authorization_url, consent) {
        Ok(url) => Json(json!({ "redirect_url": url })).into_response(),
        Err(e) => (
            StatusCode::BAD_REQUEST,
            Json(json!({ "error": e.error, "error_description": e.description })),
        )
            .into_response(),
    }
}
