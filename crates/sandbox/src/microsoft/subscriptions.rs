//! Graph change notifications for messages: `/v1.0/subscriptions` with the
//! validation handshake, and `created` notifications posted from spawned
//! tasks (a few tries each), recorded for tests.

// The errors are finished HTTP answers (`Response`), made once per request.
#![allow(clippy::result_large_err)]

use std::time::Duration as StdDuration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{OriginalUri, Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use serde_json::{Value, json};
use url::{Url, form_urlencoded};

use super::graph::{Caller, Need, bad_request, gate, iso, json_body};
use super::{MicrosoftSandbox, World, graph_error, object_id};
use crate::Sandbox;

/// Outlook messages: at most 10080 minutes (7 days) ahead.
pub const MAX_SUBSCRIPTION_MINUTES: i64 = 10_080;
const MAX_SUBSCRIPTIONS_PER_USER: usize = 100;
const VALIDATION_TIMEOUT: StdDuration = StdDuration::from_secs(10);
const NOTIFY_TIMEOUT: StdDuration = StdDuration::from_secs(5);
const NOTIFY_ATTEMPTS: u32 = 3;
/// Notification records kept (the oldest go first).
const MAX_RECORDS: usize = 1000;
/// The tenant of personal Microsoft accounts, as Graph reports it.
pub const SANDBOX_TENANT_ID: &str = "9188040d-6c67-4c5b-b112-36a304b66dad";

/// A change-notification subscription.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct MicrosoftSubscription {
    pub id: String,
    /// The subscribing user.
    pub email: String,
    pub resource: String,
    pub change_type: String,
    pub notification_url: String,
    pub client_state: Option<String>,
    pub expiration: DateTime<Utc>,
    pub application_id: String,
    pub creator_id: String,
    /// The watched folder's id; `None` for all of `me/messages`.
    pub folder_id: Option<String>,
}

impl MicrosoftSubscription {
    fn json(&self) -> Value {
        json!({
            "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#subscriptions/$entity",
            "id": self.id,
            "resource": self.resource,
            "applicationId": self.application_id,
            "changeType": self.change_type,
            "clientState": self.client_state,
            "notificationUrl": self.notification_url,
            "notificationQueryOptions": null,
            "lifecycleNotificationUrl": null,
            "expirationDateTime": iso(&self.expiration),
            "creatorId": self.creator_id,
            "includeResourceData": false,
            "latestSupportedTlsVersion": "v1_2",
            "encryptionCertificate": null,
            "encryptionCertificateId": null,
            "notificationUrlAppId": null,
        })
    }
}

/// A notification the sandbox posted (or tried to).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct NotificationDelivery {
    pub subscription_id: String,
    pub notification_url: String,
    pub message_id: String,
    pub client_state: Option<String>,
    /// The JSON posted.
    pub body: Value,
    pub attempts: u32,
    /// The last answer's status, if any came.
    pub status: Option<u16>,
    pub delivered: bool,
}

/// A notification waiting for the lock to be released.
pub(crate) struct Pending {
    subscription: MicrosoftSubscription,
    message_id: String,
    body: Value,
}

impl World {
    /// Queues `created` notifications for a message stored in `folder_id`.
    pub(crate) fn on_created(&mut self, email: &str, folder_id: &str, message_id: &str) {
        let now = Utc::now();
        let Some(user_id) = self.account(email).map(|a| a.id.clone()) else {
            return;
        };
        let due: Vec<MicrosoftSubscription> = self
            .subscriptions
            .values()
            .filter(|s| s.email.eq_ignore_ascii_case(email) && s.expiration > now)
            .filter(|s| s.folder_id.as_deref().is_none_or(|f| f == folder_id))
            .filter(|s| {
                s.change_type
                    .split(',')
                    .any(|t| t.trim().eq_ignore_ascii_case("created"))
            })
            .cloned()
            .collect();
        for subscription in due {
            let resource = format!("Users/{user_id}/Messages/{message_id}");
            let body = json!({"value": [{
                "subscriptionId": subscription.id,
                "subscriptionExpirationDateTime": iso(&subscription.expiration),
                "changeType": "created",
                "resource": resource,
                "resourceData": {
                    "@odata.type": "#Microsoft.Graph.Message",
                    "@odata.id": resource,
                    "@odata.etag": "W/\"CQAAAA==\"",
                    "id": message_id,
                },
                "clientState": subscription.client_state,
                "tenantId": SANDBOX_TENANT_ID,
            }]});
            self.outbox.push(Pending {
                subscription,
                message_id: message_id.to_owned(),
                body,
            });
        }
    }

    fn record(&mut self, delivery: NotificationDelivery) {
        self.notifications.push(delivery);
        if self.notifications.len() > MAX_RECORDS {
            self.notifications.remove(0);
        }
    }
}

impl MicrosoftSandbox {
    /// Posts what the last change queued, each from its own task.
    pub(crate) fn flush(&self) {
        let pending = std::mem::take(&mut self.lock().outbox);
        for pending in pending {
            match tokio::runtime::Handle::try_current() {
                Ok(runtime) => {
                    runtime.spawn(notify(self.clone(), pending));
                }
                Err(_) => self.lock().record(NotificationDelivery {
                    subscription_id: pending.subscription.id,
                    notification_url: pending.subscription.notification_url,
                    message_id: pending.message_id,
                    client_state: pending.subscription.client_state,
                    body: pending.body,
                    attempts: 0,
                    status: None,
                    delivered: false,
                }),
            }
        }
    }
}

fn client(timeout: StdDuration) -> Option<reqwest::Client> {
    reqwest::Client::builder().timeout(timeout).build().ok()
}

async fn notify(microsoft: MicrosoftSandbox, pending: Pending) {
    let mut record = NotificationDelivery {
        subscription_id: pending.subscription.id.clone(),
        notification_url: pending.subscription.notification_url.clone(),
        message_id: pending.message_id.clone(),
        client_state: pending.subscription.client_state.clone(),
        body: pending.body.clone(),
        attempts: 0,
        status: None,
        delivered: false,
    };
    if let Some(http) = client(NOTIFY_TIMEOUT) {
        for attempt in 1..=NOTIFY_ATTEMPTS {
            record.attempts = attempt;
            let answer = http
                .post(&pending.subscription.notification_url)
                .json(&pending.body)
                .send()
                .await;
            if let Ok(answer) = answer {
                record.status = Some(answer.status().as_u16());
                if answer.status().is_success() {
                    record.delivered = true;
                    break;
                }
            }
            if attempt < NOTIFY_ATTEMPTS {
                tokio::time::sleep(StdDuration::from_millis(250 * u64::from(attempt))).await;
            }
        }
    }
    microsoft.lock().record(record);
}

/// The handshake: POST `{url}?validationToken=...`; 200, `text/plain` and
/// the token back, within 10 s.
async fn validate(notification_url: &str) -> bool {
    let token = format!(
        "Validation: Testing client application reachability for subscription Request-Id: {}",
        object_id()
    );
    let encoded: String = form_urlencoded::byte_serialize(token.as_bytes()).collect();
    let encoded = encoded.replace('+', "%20");
    let separator = if notification_url.contains('?') {
        '&'
    } else {
        '?'
    };
    let url = format!("{notification_url}{separator}validationToken={encoded}");
    let Some(http) = client(VALIDATION_TIMEOUT) else {
        return false;
    };
    let Ok(answer) = http
        .post(url)
        .header(header::CONTENT_TYPE, "text/plain")
        .body("")
        .send()
        .await
    else {
        return false;
    };
    let plain = answer
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().to_ascii_lowercase().starts_with("text/plain"));
    if answer.status() != reqwest::StatusCode::OK || !plain {
        return false;
    }
    answer.text().await.is_ok_and(|body| body.trim() == token)
}

fn invalid(message: &str) -> Response {
    bad_request("InvalidRequest", message)
}

fn expiration(body: &Value) -> Result<DateTime<Utc>, Response> {
    let Some(text) = body.get("expirationDateTime").and_then(Value::as_str) else {
        return Err(invalid("expirationDateTime is required."));
    };
    let Ok(at) = DateTime::parse_from_rfc3339(text.trim()) else {
        return Err(invalid(&format!("Invalid expirationDateTime '{text}'.")));
    };
    let at = at.with_timezone(&Utc);
    let now = Utc::now();
    if at <= now {
        return Err(bad_request(
            "ExtensionError",
            "Subscription expiration date time must be in the future.",
        ));
    }
    if at > now + Duration::minutes(MAX_SUBSCRIPTION_MINUTES) {
        return Err(bad_request(
            "ExtensionError",
            &format!(
                "Subscription expiration can only be {MAX_SUBSCRIPTION_MINUTES} minutes in the future."
            ),
        ));
    }
    Ok(at)
}

/// The folder of a messages resource of `caller`: `Some(None)` for all
/// messages, `None` when unsupported.
fn resource_folder(world: &mut World, caller: &Caller, resource: &str) -> Option<Option<String>> {
    let lower = resource.trim().trim_start_matches('/').to_ascii_lowercase();
    let original = resource.trim().trim_start_matches('/');
    let rest_start = if lower.starts_with("me/") {
        3
    } else if let Some(after) = lower.strip_prefix("users/") {
        let (user, _) = after.split_once('/')?;
        let user = user.trim_matches(|c| c == '\'' || c == '(' || c == ')');
        if user != caller.account.id && !user.eq_ignore_ascii_case(&caller.email) {
            return None;
        }
        "users/".len() + after.find('/')? + 1
    } else {
        return None;
    };
    let rest = &original[rest_start..];
    let rest_lower = rest.to_ascii_lowercase();
    if rest_lower == "messages" {
        return Some(None);
    }
    let folder = if let Some(after) = rest_lower.strip_prefix("mailfolders('") {
        let end = after.find("')/messages")?;
        if after.len() != end + "')/messages".len() {
            return None;
        }
        &rest["mailfolders('".len()..("mailfolders('".len() + end)]
    } else if let Some(after) = rest_lower.strip_prefix("mailfolders/") {
        let end = after.find("/messages")?;
        if after.len() != end + "/messages".len() {
            return None;
        }
        &rest["mailfolders/".len()..("mailfolders/".len() + end)]
    } else {
        return None;
    };
    let id = world.mailbox(&caller.email).folder(folder)?.id.clone();
    Some(Some(id))
}

pub(super) async fn create(
    State(sandbox): State<Sandbox>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let microsoft = sandbox.microsoft();
    let draft = {
        let mut world = microsoft.lock();
        match prepare(&mut world, uri.path(), &headers, &body) {
            Ok(draft) => draft,
            Err(response) => return response,
        }
    };
    // Never under the lock: the endpoint may call the sandbox back.
    if !validate(&draft.notification_url).await {
        return bad_request(
            "ValidationError",
            "Subscription validation request failed. Notification endpoint must respond with 200 OK to validation request.",
        );
    }
    let mut world = microsoft.lock();
    let count = world
        .subscriptions
        .values()
        .filter(|s| s.email == draft.email)
        .count();
    if count >= MAX_SUBSCRIPTIONS_PER_USER {
        return too_many();
    }
    world.subscriptions.insert(draft.id.clone(), draft.clone());
    (StatusCode::CREATED, Json(draft.json())).into_response()
}

fn too_many() -> Response {
    graph_error(
        StatusCode::FORBIDDEN,
        "ExtensionError",
        "Operation: Create; Exception: [Status Code: Forbidden; Reason: The maximum number of subscriptions for this mailbox has been reached (sandbox limit 100).]",
    )
}

fn prepare(
    world: &mut World,
    path: &str,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<MicrosoftSubscription, Response> {
    let caller = gate(
        world,
        "graph.subscriptions.create",
        path,
        headers,
        Need::Read,
    )?;
    let body = json_body(body, false)?;
    let string = |key: &str| body.get(key).and_then(Value::as_str).map(str::trim);
    let Some(change_type) = string("changeType").filter(|s| !s.is_empty()) else {
        return Err(invalid("changeType is required."));
    };
    if !change_type.split(',').all(|t| {
        ["created", "updated", "deleted"]
            .iter()
            .any(|known| t.trim().eq_ignore_ascii_case(known))
    }) {
        return Err(invalid(&format!("Invalid changeType '{change_type}'.")));
    }
    let Some(notification_url) = string("notificationUrl") else {
        return Err(invalid("notificationUrl is required."));
    };
    if !Url::parse(notification_url).is_ok_and(|u| matches!(u.scheme(), "http" | "https")) {
        return Err(invalid(&format!(
            "Invalid notificationUrl '{notification_url}': an http(s) URL is required."
        )));
    }
    let Some(resource) = string("resource") else {
        return Err(invalid("resource is required."));
    };
    let Some(folder_id) = resource_folder(world, &caller, resource) else {
        return Err(bad_request(
            "ExtensionError",
            &format!(
                "Resource '{resource}' is not supported by the sandbox: me/mailFolders('{{folder}}')/messages or me/messages expected."
            ),
        ));
    };
    let client_state = match body.get("clientState") {
        None | Some(Value::Null) => None,
        Some(Value::String(state)) if state.len() <= 128 => Some(state.clone()),
        Some(_) => {
            return Err(invalid(
                "clientState must be a string of at most 128 characters.",
            ));
        }
    };
    let expiration = expiration(&body)?;
    let count = world
        .subscriptions
        .values()
        .filter(|s| s.email == caller.email)
        .count();
    if count >= MAX_SUBSCRIPTIONS_PER_USER {
        return Err(too_many());
    }
    Ok(MicrosoftSubscription {
        id: object_id(),
        email: caller.email.clone(),
        resource: resource.to_owned(),
        change_type: change_type.to_owned(),
        notification_url: notification_url.to_owned(),
        client_state,
        expiration,
        application_id: caller.client_id.clone(),
        creator_id: caller.account.id.clone(),
        folder_id,
    })
}

fn subscription_not_found(id: &str) -> Response {
    graph_error(
        StatusCode::NOT_FOUND,
        "ResourceNotFound",
        &format!("The object was not found. Subscription '{id}' does not exist."),
    )
}

pub(super) async fn get_one(
    State(sandbox): State<Sandbox>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let microsoft = sandbox.microsoft();
    let mut world = microsoft.lock();
    let caller = match gate(
        &mut world,
        "graph.subscriptions.get",
        uri.path(),
        &headers,
        Need::Read,
    ) {
        Ok(caller) => caller,
        Err(response) => return response,
    };
    match world
        .subscriptions
        .get(&id)
        .filter(|s| s.email == caller.email)
    {
        Some(subscription) => Json(subscription.json()).into_response(),
        None => subscription_not_found(&id),
    }
}

pub(super) async fn list(
    State(sandbox): State<Sandbox>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
) -> Response {
    let microsoft = sandbox.microsoft();
    let mut world = microsoft.lock();
    let caller = match gate(
        &mut world,
        "graph.subscriptions.list",
        uri.path(),
        &headers,
        Need::Read,
    ) {
        Ok(caller) => caller,
        Err(response) => return response,
    };
    let value: Vec<Value> = world
        .subscriptions
        .values()
        .filter(|s| s.email == caller.email)
        .map(MicrosoftSubscription::json)
        .collect();
    Json(json!({"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#subscriptions", "value": value}))
        .into_response()
}

pub(super) async fn renew(
    State(sandbox): State<Sandbox>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let microsoft = sandbox.microsoft();
    let (caller_email, at, moved_to) = {
        let mut world = microsoft.lock();
        let caller = match gate(
            &mut world,
            "graph.subscriptions.update",
            uri.path(),
            &headers,
            Need::Read,
        ) {
            Ok(caller) => caller,
            Err(response) => return response,
        };
        let body = match json_body(&body, false) {
            Ok(body) => body,
            Err(response) => return response,
        };
        let at = match expiration(&body) {
            Ok(at) => at,
            Err(response) => return response,
        };
        // Graph deletes a subscription once it expires: it cannot be renewed.
        if world
            .subscriptions
            .get(&id)
            .is_some_and(|s| s.expiration <= Utc::now())
        {
            world.subscriptions.remove(&id);
        }
        let Some(current) = world
            .subscriptions
            .get(&id)
            .filter(|s| s.email == caller.email)
        else {
            return subscription_not_found(&id);
        };
        // A new notificationUrl is validated like a new subscription's.
        let moved_to = match body.get("notificationUrl").and_then(Value::as_str) {
            Some(url) if url.trim() != current.notification_url => {
                if !Url::parse(url.trim()).is_ok_and(|u| matches!(u.scheme(), "http" | "https")) {
                    return invalid(&format!(
                        "Invalid notificationUrl '{url}': an http(s) URL is required."
                    ));
                }
                Some(url.trim().to_owned())
            }
            _ => None,
        };
        (caller.email, at, moved_to)
    };
    // Never under the lock: the endpoint may call the sandbox back.
    if let Some(url) = &moved_to
        && !validate(url).await
    {
        return bad_request(
            "ValidationError",
            "Subscription validation request failed. Notification endpoint must respond with 200 OK to validation request.",
        );
    }
    let mut world = microsoft.lock();
    match world
        .subscriptions
        .get_mut(&id)
        .filter(|s| s.email == caller_email)
    {
        Some(subscription) => {
            subscription.expiration = at;
            if let Some(url) = moved_to {
                subscription.notification_url = url;
            }
            Json(subscription.json()).into_response()
        }
        None => subscription_not_found(&id),
    }
}

pub(super) async fn delete(
    State(sandbox): State<Sandbox>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let microsoft = sandbox.microsoft();
    let mut world = microsoft.lock();
    let caller = match gate(
        &mut world,
        "graph.subscriptions.delete",
        uri.path(),
        &headers,
        Need::Read,
    ) {
        Ok(caller) => caller,
        Err(response) => return response,
    };
    if world
        .subscriptions
        .get(&id)
        .is_none_or(|s| s.email != caller.email)
    {
        return subscription_not_found(&id);
    }
    world.subscriptions.remove(&id);
    StatusCode::NO_CONTENT.into_response()
}
