//! Test controls of the Graph mail emulation: Rust methods on
//! [`MicrosoftSandbox`] and their HTTP twins under `/_sandbox/microsoft/`.

use axum::Json;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{Duration, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::mail::{EmailAddress, Message, bracketed};
use super::subscriptions::{MicrosoftSubscription, NotificationDelivery};
use super::{Access, MS_ACCESS_TOKEN_SECONDS, MicrosoftSandbox};
use crate::Sandbox;
use crate::http_util::Params;
use crate::state::random_token;

/// Graph calls to fail: the next `times` calls (whose path contains
/// `path_contains`, of user `email`, when given) answer `status` with a
/// Graph error body (429 `ApplicationThrottled`, 503
/// `ServiceNotAvailable`, ...) and `Retry-After: retry_after` when set.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GraphFault {
    pub status: u16,
    #[serde(default = "one")]
    pub times: usize,
    #[serde(default)]
    pub retry_after: Option<u64>,
    #[serde(default)]
    pub path_contains: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    /// The call takes effect, then its answer is lost (504): what a client
    /// sees when a connection breaks after Graph did the work.
    #[serde(default)]
    pub after_commit: bool,
    /// With `after_commit`: the answer comes only this many milliseconds
    /// after the work is done, so a client that dies meanwhile never learns
    /// that Graph acted. The answer is then the fault's `status`, or, when
    /// `status` is 200, the call's own ([`GraphFault::held_answer`]).
    #[serde(default)]
    pub hold_millis: Option<u64>,
}

fn one() -> usize {
    1
}

impl GraphFault {
    /// `times` answers of 429 with `Retry-After: retry_after_seconds`.
    pub fn throttle(times: usize, retry_after_seconds: u64) -> Self {
        GraphFault {
            status: 429,
            times,
            retry_after: Some(retry_after_seconds),
            ..GraphFault::default()
        }
    }

    /// `times` answers of `status` (no `Retry-After` unless set).
    pub fn status(status: u16, times: usize) -> Self {
        GraphFault {
            status,
            times,
            ..GraphFault::default()
        }
    }

    /// `times` calls that take effect and then answer 504 (the answer lost).
    pub fn lost_answer(times: usize) -> Self {
        GraphFault {
            status: 504,
            times,
            after_commit: true,
            ..GraphFault::default()
        }
    }

    /// `times` calls that take effect and give their own answer only
    /// `hold` later (counted as `graph.held` when the hold starts).
    pub fn held_answer(times: usize, hold: std::time::Duration) -> Self {
        GraphFault {
            status: 200,
            times,
            after_commit: true,
            ..GraphFault::default()
        }
        .held_for(hold)
    }

    /// An after-commit fault's answer comes `hold` after the work is done
    /// (e.g. `lost_answer(1).held_for(..)`: the 504 only then).
    pub fn held_for(mut self, hold: std::time::Duration) -> Self {
        self.hold_millis = Some(u64::try_from(hold.as_millis()).unwrap_or(u64::MAX));
        self
    }

    /// Whether the call's own answer is given (late) instead of an error.
    pub(super) fn answers_itself(&self) -> bool {
        self.status == 200 && self.after_commit && self.hold_millis.is_some()
    }

    pub fn retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds);
        self
    }

    /// Only calls whose path contains `part` (e.g. `/messages/delta`).
    pub fn on_path(mut self, part: &str) -> Self {
        self.path_contains = Some(part.to_owned());
        self
    }

    /// Only calls of `email`'s tokens.
    pub fn for_user(mut self, email: &str) -> Self {
        self.email = Some(email.to_owned());
        self
    }
}

/// Mail arriving from outside into an account's inbox.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MicrosoftInbound {
    pub from: String,
    #[serde(default)]
    pub from_name: Option<String>,
    /// The sandbox account receiving it.
    pub to: String,
    #[serde(default)]
    pub cc: Vec<String>,
    #[serde(default)]
    pub subject: String,
    #[serde(default)]
    pub text: String,
    /// An HTML body instead of `text`.
    #[serde(default)]
    pub html: Option<String>,
    /// An `internetMessageId` (with or without `<>`).
    #[serde(default)]
    pub in_reply_to: Option<String>,
    #[serde(default)]
    pub references: Vec<String>,
    /// Its own `Message-ID` (made up when absent).
    #[serde(default)]
    pub message_id: Option<String>,
    /// More headers (name, value), e.g. `List-Unsubscribe`.
    #[serde(default)]
    pub headers: Vec<(String, String)>,
}

impl MicrosoftInbound {
    pub fn new(from: &str, to: &str, subject: &str, text: &str) -> Self {
        MicrosoftInbound {
            from: from.to_owned(),
            to: to.to_owned(),
            subject: subject.to_owned(),
            text: text.to_owned(),
            ..MicrosoftInbound::default()
        }
    }

    pub fn in_reply_to(mut self, internet_message_id: &str) -> Self {
        self.in_reply_to = Some(internet_message_id.to_owned());
        self
    }

    pub fn with_message_id(mut self, internet_message_id: &str) -> Self {
        self.message_id = Some(internet_message_id.to_owned());
        self
    }
}

/// What a delivery made.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct MicrosoftDelivered {
    /// The Graph message id.
    pub id: String,
    pub conversation_id: String,
    pub internet_message_id: String,
}

/// A stored message, for assertions.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct MicrosoftMessageView {
    pub id: String,
    /// `inbox`, `drafts`, `sentitems` or `deleteditems`.
    pub folder: String,
    pub conversation_id: String,
    pub internet_message_id: String,
    pub subject: String,
    pub from: Option<String>,
    pub to: Vec<String>,
    pub cc: Vec<String>,
    pub bcc: Vec<String>,
    pub is_draft: bool,
    pub is_read: bool,
    pub body: String,
    pub body_is_html: bool,
    pub in_reply_to: Option<String>,
    pub references: Vec<String>,
    /// `singleValueExtendedProperties` (id, value).
    pub extended_properties: Vec<(String, String)>,
    /// What `$value` serves.
    pub mime: String,
}

fn addresses(list: &[EmailAddress]) -> Vec<String> {
    list.iter().map(|a| a.address.clone()).collect()
}

impl MicrosoftSandbox {
    /// Test control: an access token of `email` (the account is made if
    /// missing) with `scopes`, as if an app had gone through consent.
    pub fn issue_access_token(&self, email: &str, scopes: &[&str]) -> String {
        let mut world = self.lock();
        let account = world.ensure_account(email, None);
        let token = format!("EwB{}", random_token(80));
        world.access.insert(
            token.clone(),
            Access {
                email: account.email,
                scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
                expires_at: Utc::now() + Duration::seconds(MS_ACCESS_TOKEN_SECONDS),
                client_id: "sandbox-test-app".to_owned(),
            },
        );
        token
    }

    /// Delivers mail from outside to `inbound.to`'s inbox (threaded by
    /// `in_reply_to`/`references`); subscribers are notified.
    pub fn deliver(&self, inbound: MicrosoftInbound) -> Result<MicrosoftDelivered, String> {
        let delivered = {
            let mut world = self.lock();
            let Some(account) = world.account(&inbound.to).cloned() else {
                return Err(format!("no Microsoft account {}", inbound.to));
            };
            let mut message = Message::draft(&account, "");
            let from = EmailAddress {
                name: inbound
                    .from_name
                    .clone()
                    .unwrap_or_else(|| inbound.from.clone()),
                address: inbound.from.clone(),
            };
            message.from = Some(from.clone());
            message.sender = Some(from);
            message.to = vec![EmailAddress {
                name: account.display_name.clone(),
                address: account.email.clone(),
            }];
            message.cc = inbound.cc.iter().map(|a| EmailAddress::new(a)).collect();
            message.subject = inbound.subject.clone();
            match &inbound.html {
                Some(html) => {
                    message.html = true;
                    message.content = html.clone();
                }
                None => message.content = inbound.text.clone(),
            }
            if let Some(id) = &inbound.message_id {
                message.internet_message_id = bracketed(id);
            }
            message.in_reply_to = inbound.in_reply_to.as_deref().map(bracketed);
            message.references = inbound.references.iter().map(|r| bracketed(r)).collect();
            if message.references.is_empty() {
                message.references.extend(message.in_reply_to.clone());
            }
            message.custom_headers = inbound
                .headers
                .iter()
                .map(|(n, v)| (n.replace([':', '\r', '\n'], ""), v.clone()))
                .collect();
            message.sent = Some(Utc::now());
            let internet_message_id = message.internet_message_id.clone();
            let (id, conversation_id) = world.deliver(&account.email, message);
            MicrosoftDelivered {
                id,
                conversation_id,
                internet_message_id,
            }
        };
        self.flush();
        Ok(delivered)
    }

    /// Delivers an RFC 5322 message to `email`'s inbox as is (`$value`
    /// serves it unchanged).
    pub fn deliver_raw(&self, email: &str, raw: &str) -> Result<MicrosoftDelivered, String> {
        let parsed = crate::gmail::mime::parse(raw.as_bytes());
        let delivered = {
            let mut world = self.lock();
            let Some(account) = world.account(email).cloned() else {
                return Err(format!("no Microsoft account {email}"));
            };
            let mut message = Message::draft(&account, "");
            let from = parsed.from.as_deref().map(EmailAddress::new);
            message.from.clone_from(&from);
            message.sender = from;
            message.to = parsed.to.iter().map(|a| EmailAddress::new(a)).collect();
            message.cc = parsed.cc.iter().map(|a| EmailAddress::new(a)).collect();
            message.subject = parsed.subject.clone();
            message.content = parsed.text.clone();
            if let Some(id) = &parsed.message_id {
                message.internet_message_id = bracketed(id);
            }
            message.references = parsed.references.iter().map(|r| bracketed(r)).collect();
            message.raw = Some(raw.to_owned());
            message.sent = Some(Utc::now());
            let internet_message_id = message.internet_message_id.clone();
            let (id, conversation_id) = world.deliver(&account.email, message);
            MicrosoftDelivered {
                id,
                conversation_id,
                internet_message_id,
            }
        };
        self.flush();
        Ok(delivered)
    }

    /// `email`'s messages in `folder` (well-known name or id), newest
    /// first.
    pub fn messages(&self, email: &str, folder: &str) -> Vec<MicrosoftMessageView> {
        let mut world = self.lock();
        let mailbox = world.mailbox(email);
        let Some(folder_id) = mailbox.folder(folder).map(|f| f.id.clone()) else {
            return Vec::new();
        };
        let mut found: Vec<&Message> = mailbox
            .messages
            .iter()
            .filter(|m| m.folder_id == folder_id)
            .collect();
        found.sort_by_key(|m| std::cmp::Reverse((m.received, m.order)));
        found
            .into_iter()
            .map(|m| MicrosoftMessageView {
                id: m.id.clone(),
                folder: mailbox.folder_name(&m.folder_id).to_owned(),
                conversation_id: m.conversation_id.clone(),
                internet_message_id: m.internet_message_id.clone(),
                subject: m.subject.clone(),
                from: m.from.as_ref().map(|a| a.address.clone()),
                to: addresses(&m.to),
                cc: addresses(&m.cc),
                bcc: addresses(&m.bcc),
                is_draft: m.is_draft,
                is_read: m.is_read,
                body: m.content.clone(),
                body_is_html: m.html,
                in_reply_to: m.in_reply_to.clone(),
                references: m.references.clone(),
                extended_properties: m.extended.clone(),
                mime: m.mime(),
            })
            .collect()
    }

    /// Expires `email`'s delta tokens (and paging tokens): all of them, or
    /// those issued more than `older_than` ago. Returns how many.
    pub fn expire_delta_tokens(&self, email: &str, older_than: Option<Duration>) -> usize {
        let mut world = self.lock();
        let cutoff = older_than.map(|age| Utc::now() - age);
        let due = |issued| cutoff.is_none_or(|cutoff| issued < cutoff);
        let mut count = 0;
        for state in world.delta_tokens.values_mut() {
            if state.email().eq_ignore_ascii_case(email) && !state.expired && due(state.issued_at) {
                state.expired = true;
                count += 1;
            }
        }
        for page in world.delta_pages.values_mut() {
            if page.state.email().eq_ignore_ascii_case(email)
                && !page.state.expired
                && due(page.state.issued_at)
            {
                page.state.expired = true;
                count += 1;
            }
        }
        count
    }

    /// Files message `id` of `email` in well-known `folder` (`junkemail`,
    /// `deleteditems`, ...) keeping its id, as a person moving it would
    /// with immutable ids; whether the message and folder exist.
    pub fn file_message(&self, email: &str, id: &str, folder: &str) -> bool {
        let filed = self.lock().file_message(email, id, folder);
        self.flush();
        filed
    }

    /// Injects Graph faults (see [`GraphFault`]); they queue in order.
    pub fn fail_graph_calls(&self, fault: GraphFault) {
        if fault.times > 0 {
            self.lock().graph_faults.push(fault);
        }
    }

    /// Drops every injected Graph fault not used up yet.
    pub fn clear_graph_faults(&self) {
        self.lock().graph_faults.clear();
    }

    /// Notifications posted (or given up on), oldest first.
    pub fn notifications(&self) -> Vec<NotificationDelivery> {
        self.lock().notifications.clone()
    }

    /// `email`'s subscriptions.
    pub fn subscriptions(&self, email: &str) -> Vec<MicrosoftSubscription> {
        self.lock()
            .subscriptions
            .values()
            .filter(|s| s.email.eq_ignore_ascii_case(email))
            .cloned()
            .collect()
    }

    /// A subscription expires now (it notifies no more).
    pub fn expire_subscription(&self, id: &str) -> bool {
        let mut world = self.lock();
        match world.subscriptions.get_mut(id) {
            Some(subscription) => {
                subscription.expiration = Utc::now() - Duration::seconds(1);
                true
            }
            None => false,
        }
    }
}

fn control_error(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({"error": message}))).into_response()
}

pub(super) async fn deliver(
    State(sandbox): State<Sandbox>,
    Json(inbound): Json<MicrosoftInbound>,
) -> Response {
    match sandbox.microsoft().deliver(inbound) {
        Ok(delivered) => Json(json!({
            "id": delivered.id,
            "conversationId": delivered.conversation_id,
            "internetMessageId": delivered.internet_message_id,
        }))
        .into_response(),
        Err(error) => control_error(StatusCode::NOT_FOUND, &error),
    }
}

pub(super) async fn messages(
    State(sandbox): State<Sandbox>,
    RawQuery(query): RawQuery,
) -> Response {
    let params = Params::from_query(query.as_deref());
    let Some(email) = params.get("email") else {
        return control_error(StatusCode::BAD_REQUEST, "email is required");
    };
    let folder = params.get("folder").unwrap_or("inbox");
    Json(sandbox.microsoft().messages(email, folder)).into_response()
}

#[derive(Deserialize)]
pub(super) struct ExpireDeltaBody {
    email: String,
    #[serde(default)]
    older_than_seconds: Option<i64>,
}

pub(super) async fn expire_delta(
    State(sandbox): State<Sandbox>,
    Json(body): Json<ExpireDeltaBody>,
) -> Response {
    let older_than = body
        .older_than_seconds
        .map(|s| Duration::seconds(s.clamp(0, 10 * 365 * 24 * 3600)));
    let expired = sandbox
        .microsoft()
        .expire_delta_tokens(&body.email, older_than);
    Json(json!({"expired": expired})).into_response()
}

pub(super) async fn graph_faults(
    State(sandbox): State<Sandbox>,
    Json(fault): Json<GraphFault>,
) -> Response {
    let status_ok = (400..=599).contains(&fault.status) || fault.answers_itself();
    if !status_ok || fault.times > 1000 || fault.hold_millis.is_some_and(|ms| ms > 600_000) {
        return control_error(
            StatusCode::BAD_REQUEST,
            "status must be 400-599 (or 200 for a held answer), times at most 1000 \
             and hold_millis at most 600000",
        );
    }
    sandbox.microsoft().fail_graph_calls(fault);
    StatusCode::NO_CONTENT.into_response()
}

pub(super) async fn notifications(State(sandbox): State<Sandbox>) -> Response {
    Json(sandbox.microsoft().notifications()).into_response()
}

pub(super) async fn subscriptions(
    State(sandbox): State<Sandbox>,
    RawQuery(query): RawQuery,
) -> Response {
    let params = Params::from_query(query.as_deref());
    let Some(email) = params.get("email") else {
        return control_error(StatusCode::BAD_REQUEST, "email is required");
    };
    Json(sandbox.microsoft().subscriptions(email)).into_response()
}

#[derive(Deserialize)]
pub(super) struct TokenBody {
    email: String,
    scopes: Vec<String>,
}

pub(super) async fn access_token(
    State(sandbox): State<Sandbox>,
    Json(body): Json<TokenBody>,
) -> Response {
    let scopes: Vec<&str> = body.scopes.iter().map(String::as_str).collect();
    let token = sandbox.microsoft().issue_access_token(&body.email, &scopes);
    Json(json!({"access_token": token, "token_type": "Bearer", "expires_in": MS_ACCESS_TOKEN_SECONDS}))
        .into_response()
}
