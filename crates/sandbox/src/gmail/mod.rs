//! Gmail v1 under `/gmail/v1/users/{userId}/...`.

pub(crate) mod batch;
pub mod mailbox;
pub mod mime;

use std::collections::BTreeSet;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::Duration;
use serde_json::{Map, Value, json};

use crate::Sandbox;
use crate::chaos::{self, Strike};
use crate::control::apply_fault;
use crate::google_error::ApiError;
use crate::http_util::{self, Params};
use crate::scopes::GmailMethod;
use crate::state::State as World;
use mailbox::{HistoryChange, Mailbox, NewMessage, SearchQuery, StoredMessage, Threading};
use mime::Format;

pub(crate) fn routes() -> Router<Sandbox> {
    const USER: &str = "/gmail/v1/users/{user_id}";
    Router::new()
        .route(&format!("{USER}/profile"), get(get_profile))
        .route(&format!("{USER}/messages"), get(messages_list))
        .route(&format!("{USER}/messages/send"), post(messages_send))
        .route(&format!("{USER}/messages/{{id}}"), get(messages_get))
        .route(
            &format!("{USER}/messages/{{id}}/modify"),
            post(messages_modify),
        )
        .route(
            &format!("{USER}/drafts"),
            get(drafts_list).post(drafts_create),
        )
        .route(&format!("{USER}/drafts/send"), post(drafts_send))
        .route(
            &format!("{USER}/drafts/{{id}}"),
            get(drafts_get).delete(drafts_delete),
        )
        .route(&format!("{USER}/threads/{{id}}"), get(threads_get))
        .route(&format!("{USER}/history"), get(history_list))
        .route(
            &format!("{USER}/labels"),
            get(labels_list).post(labels_create),
        )
        .route(&format!("{USER}/watch"), post(watch))
        .route(&format!("{USER}/stop"), post(stop))
        .route(&format!("{USER}/settings/sendAs"), get(send_as_list))
        .route_layer(axum::middleware::from_fn(chaos::drop_answer_layer))
}

/// The authenticated account behind a Gmail request.
struct Caller {
    email: String,
    scopes: BTreeSet<String>,
}

/// Counts the call, authenticates, checks `userId` and scopes, applies any
/// injected fault (else chaos) and charges quota, in that order.
async fn authorize(
    sandbox: &Sandbox,
    method: GmailMethod,
    headers: &HeaderMap,
    user_id: &str,
) -> Result<Caller, ApiError> {
    let (caller, fault, strike) = {
        let mut world = sandbox.lock();
        world.count_call(method.name());
        let Some(token) = http_util::bearer(headers) else {
            return Err(ApiError::LoginRequired);
        };
        let now = world.now();
        let Some(access) = world
            .access_tokens
            .get(&token)
            .filter(|t| !t.revoked && t.expires_at > now)
        else {
            return Err(ApiError::InvalidCredentials);
        };
        let caller = Caller {
            email: access.email.clone(),
            scopes: access.scopes.clone(),
        };
        if user_id != "me" && !user_id.eq_ignore_ascii_case(&caller.email) {
            return Err(ApiError::Forbidden(format!(
                "Delegation denied for {}",
                caller.email
            )));
        }
        if !method.is_authorized_by(&caller.scopes) {
            return Err(ApiError::InsufficientScopes);
        }
        let fault = world.take_fault(method.name());
        let strike = match fault {
            Some(_) => None,
            None => world.chaos.draw(method),
        };
        (caller, fault, strike)
    };
    if let Some(response) = strike.and_then(Strike::apply) {
        return Err(ApiError::Injected(Box::new(response)));
    }
    if let Some(response) = apply_fault(fault).await {
        return Err(ApiError::Injected(Box::new(response)));
    }
    let mut world = sandbox.lock();
    *world
        .quota
        .entry(caller.email.to_ascii_lowercase())
        .or_default() += method.quota_units();
    Ok(caller)
}

fn json_object(body: &Bytes) -> Result<Map<String, Value>, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(ApiError::ParseError(
            "Root element must be a message.".into(),
        )),
        Err(e) => Err(ApiError::ParseError(format!("Unexpected token. {e}"))),
    }
}

fn parse_max_results(params: &Params) -> Result<usize, ApiError> {
    match params.get("maxResults") {
        None => Ok(100),
        Some(raw) => raw.parse::<usize>().map(|n| n.clamp(1, 500)).map_err(|_| ApiError::BadRequest {
            message: format!(
                "Invalid value '{raw}'. Values must match the following regular expression: '[0-9]+'"
            ),
            reason: "invalidParameter",
        }),
    }
}

fn parse_page_token(params: &Params) -> Result<usize, ApiError> {
    match params.get("pageToken") {
        None => Ok(0),
        Some(raw) => raw.parse::<usize>().map_err(|_| ApiError::BadRequest {
            message: "Invalid pageToken".into(),
            reason: "invalid",
        }),
    }
}

/// Applies `maxResults`/`pageToken` paging: the page and the next token.
fn page<T>(items: Vec<T>, offset: usize, max: usize) -> (Vec<T>, Option<String>) {
    let total = items.len();
    let page: Vec<T> = items.into_iter().skip(offset).take(max).collect();
    let end = offset.saturating_add(max);
    let next = (end < total).then(|| end.to_string());
    (page, next)
}

/// A list response: `key` omitted when empty (as Gmail does), then
/// `nextPageToken` when there is more.
fn list_body(key: &str, page: Vec<Value>, next: Option<String>) -> Value {
    let mut body = json!({});
    if !page.is_empty() {
        body[key] = Value::Array(page);
    }
    if let Some(next) = next {
        body["nextPageToken"] = json!(next);
    }
    body
}

fn message_json(message: &StoredMessage, format: Format, wanted: &[String]) -> Value {
    let mut out = json!({
        "id": message.id,
        "threadId": message.thread_id,
    });
    if !message.label_ids.is_empty() {
        out["labelIds"] = json!(message.label_ids);
    }
    out["snippet"] = json!(mime::snippet(&message.parsed.text));
    out["sizeEstimate"] = json!(message.raw.len());
    out["historyId"] = json!(message.history_id.to_string());
    out["internalDate"] = json!(message.internal_date.timestamp_millis().to_string());
    match format {
        Format::Minimal => {}
        Format::Metadata => out["payload"] = mime::payload(&message.raw, true, wanted),
        Format::Full => out["payload"] = mime::payload(&message.raw, false, wanted),
        Format::Raw => out["raw"] = json!(mime::encode(&message.raw)),
    }
    out
}

fn mailbox<'w>(world: &'w World, email: &str) -> Result<&'w Mailbox, ApiError> {
    world.mailbox(email).ok_or(ApiError::NotFound)
}

fn mailbox_mut<'w>(world: &'w mut World, email: &str) -> Result<&'w mut Mailbox, ApiError> {
    world.mailbox_mut(email).ok_or(ApiError::NotFound)
}

fn is_gmail_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 32 && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
}

fn format_param(params: &Params, caller: &Caller, method: GmailMethod) -> Result<Format, ApiError> {
    let Some(format) = Format::parse(params.get("format")) else {
        return Err(ApiError::InvalidArgument(format!(
            "Invalid value at 'format' ({})",
            params.get("format").unwrap_or_default()
        )));
    };
    if matches!(format, Format::Full | Format::Raw) && method.only_metadata(&caller.scopes) {
        let name = if format == Format::Raw { "RAW" } else { "FULL" };
        return Err(ApiError::Forbidden(format!(
            "Metadata scope doesn't allow format {name}"
        )));
    }
    Ok(format)
}

fn metadata_headers(params: &Params) -> Vec<String> {
    params
        .all("metadataHeaders")
        .into_iter()
        .map(str::to_owned)
        .collect()
}

type ApiResult = Result<Response, ApiError>;

async fn get_profile(
    State(sandbox): State<Sandbox>,
    Path(user_id): Path<String>,
    headers: HeaderMap,
) -> ApiResult {
    let caller = authorize(&sandbox, GmailMethod::GetProfile, &headers, &user_id).await?;
    let world = sandbox.lock();
    let mailbox = mailbox(&world, &caller.email)?;
    let email = world
        .account(&caller.email)
        .map_or(caller.email.clone(), |a| a.email.clone());
    Ok(Json(json!({
        "emailAddress": email,
        "messagesTotal": mailbox.messages.len(),
        "threadsTotal": mailbox.thread_count(),
        "historyId": mailbox.history_id.to_string(),
    }))
    .into_response())
}

async fn messages_list(
    State(sandbox): State<Sandbox>,
    Path(user_id): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> ApiResult {
    let method = GmailMethod::MessagesList;
    let caller = authorize(&sandbox, method, &headers, &user_id).await?;
    let params = Params::from_query(query.as_deref());
    let q = params.get("q").unwrap_or_default();
    if !q.is_empty() && method.only_metadata(&caller.scopes) {
        return Err(ApiError::Forbidden(
            "Metadata scope does not support 'q' parameter".into(),
        ));
    }
    let max = parse_max_results(&params)?;
    let offset = parse_page_token(&params)?;
    let mut search = SearchQuery::parse(q);
    search.label_ids = params
        .all("labelIds")
        .into_iter()
        .map(str::to_owned)
        .collect();
    search.include_spam_trash = params.get("includeSpamTrash") == Some("true");
    let world = sandbox.lock();
    let found: Vec<Value> = mailbox(&world, &caller.email)?
        .search(&search, world.now())
        .into_iter()
        .map(|m| json!({ "id": m.id, "threadId": m.thread_id }))
        .collect();
    let total = found.len();
    let (page, next) = page(found, offset, max);
    let mut body = list_body("messages", page, next);
    body["resultSizeEstimate"] = json!(total);
    Ok(Json(body).into_response())
}

async fn messages_get(
    State(sandbox): State<Sandbox>,
    Path((user_id, id)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> ApiResult {
    let method = GmailMethod::MessagesGet;
    let caller = authorize(&sandbox, method, &headers, &user_id).await?;
    let params = Params::from_query(query.as_deref());
    let format = format_param(&params, &caller, method)?;
    if !is_gmail_id(&id) {
        return Err(ApiError::InvalidArgument("Invalid id value".into()));
    }
    let world = sandbox.lock();
    let message = mailbox(&world, &caller.email)?
        .message(&id)
        .ok_or(ApiError::NotFound)?;
    Ok(Json(message_json(message, format, &metadata_headers(&params))).into_response())
}

/// A `Message` resource from a request body: decoded `raw` and `threadId`.
struct MessageInput {
    raw: Vec<u8>,
    thread_id: Option<String>,
}

fn message_input(object: &Map<String, Value>) -> Result<MessageInput, ApiError> {
    let raw = match object.get("raw") {
        Some(Value::String(raw)) if !raw.is_empty() => raw,
        Some(Value::String(_) | Value::Null) | None => {
            return Err(ApiError::InvalidArgument(
                "'raw' RFC822 payload message string or uploading message via /upload/* URL required".into(),
            ));
        }
        Some(other) => {
            return Err(ApiError::InvalidArgument(format!(
                "Invalid value at 'message.raw' (TYPE_BYTES), {other}"
            )));
        }
    };
    let Some(decoded) = mime::decode(raw) else {
        return Err(ApiError::InvalidArgument(format!(
            "Invalid value at 'message.raw' (TYPE_BYTES), Base64 decoding failed for \"{}\"",
            raw.chars().take(64).collect::<String>()
        )));
    };
    let thread_id = match object.get("threadId") {
        Some(Value::String(t)) if !t.is_empty() => Some(t.clone()),
        _ => None,
    };
    Ok(MessageInput {
        raw: decoded,
        thread_id,
    })
}

/// Gmail fills in what a client may leave out of an outgoing message.
fn complete_outgoing(world: &mut World, sender: &str, raw: Vec<u8>) -> Vec<u8> {
    let parsed = mime::parse(&raw);
    let mut prefix = String::new();
    if parsed.from.is_none() {
        prefix.push_str(&format!("From: {sender}\r\n"));
    }
    if !parsed.has_date {
        prefix.push_str(&format!("Date: {}\r\n", world.now().to_rfc2822()));
    }
    if parsed.message_id.is_none() {
        prefix.push_str(&format!(
            "Message-ID: <sbx.{}@mail.gmail.com>\r\n",
            crate::state::random_token(24).replace(['-', '_'], "x")
        ));
    }
    let mut out = prefix.into_bytes();
    out.extend(raw);
    out
}

async fn messages_send(
    State(sandbox): State<Sandbox>,
    Path(user_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    let caller = authorize(&sandbox, GmailMethod::MessagesSend, &headers, &user_id).await?;
    let input = message_input(&json_object(&body)?)?;
    let (sent, stall) = {
        let mut world = sandbox.lock();
        let sent = send(&mut world, &caller.email, input)?;
        (
            sent,
            world.take_stalled_answer(GmailMethod::MessagesSend.name()),
        )
    };
    sandbox.wake_publisher();
    if let Some(stall) = stall {
        tokio::time::sleep(stall).await;
    }
    Ok(Json(sent).into_response())
}

/// Stores the sender's SENT copy and delivers to sandbox recipients.
fn send(world: &mut World, sender: &str, input: MessageInput) -> Result<Value, ApiError> {
    let raw = complete_outgoing(world, sender, input.raw);
    let parsed = mime::parse(&raw);
    let recipients: BTreeSet<String> = parsed
        .recipients()
        .map(|r| r.to_ascii_lowercase())
        .collect();
    if recipients.is_empty() {
        return Err(ApiError::InvalidArgument(
            "Recipient address required".into(),
        ));
    }
    let sender_key = sender.to_ascii_lowercase();
    let mut labels = vec![mailbox::SENT.to_owned()];
    if recipients.contains(&sender_key) {
        labels.extend([mailbox::INBOX.to_owned(), mailbox::UNREAD.to_owned()]);
    }
    let now = world.now();
    let id = world.new_message_id();
    let history_id = world.next_history_id();
    let stored = mailbox_mut(world, sender)?.add(
        NewMessage {
            id,
            raw: raw.clone(),
            label_ids: labels,
            internal_date: now,
        },
        Threading::Requested(input.thread_id.as_deref()),
        history_id,
    );
    let response =
        json!({ "id": stored.id, "threadId": stored.thread_id, "labelIds": stored.label_ids });
    let delivered_raw = mime::without_bcc(&raw);
    for recipient in recipients.iter().filter(|r| **r != sender_key) {
        if world.mailbox(recipient).is_none() {
            continue;
        }
        let id = world.new_message_id();
        let history_id = world.next_history_id();
        if let Some(inbox) = world.mailbox_mut(recipient) {
            inbox.add(
                NewMessage {
                    id,
                    raw: delivered_raw.clone(),
                    label_ids: vec![mailbox::INBOX.to_owned(), mailbox::UNREAD.to_owned()],
                    internal_date: now,
                },
                Threading::Inbound,
                history_id,
            );
        }
    }
    Ok(response)
}

async fn drafts_create(
    State(sandbox): State<Sandbox>,
    Path(user_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    let caller = authorize(&sandbox, GmailMethod::DraftsCreate, &headers, &user_id).await?;
    let input = match json_object(&body)?.get("message") {
        Some(Value::Object(message)) => message_input(message)?,
        _ => return Err(ApiError::InvalidArgument("Missing draft message".into())),
    };
    let (response, stall) = create_draft(&sandbox, &caller.email, input)?;
    if let Some(stall) = stall {
        tokio::time::sleep(stall).await;
    }
    Ok(Json(response).into_response())
}

/// The synchronous part of `drafts.create` (the world lock is not held
/// across the stalled answer).
fn create_draft(
    sandbox: &Sandbox,
    email: &str,
    input: MessageInput,
) -> Result<(Value, Option<std::time::Duration>), ApiError> {
    let mut world = sandbox.lock();
    let now = world.now();
    let id = world.new_message_id();
    let draft_id = format!("r{}", world.next_id() + 5_000_000_000_000_000_000);
    let history_id = world.next_history_id();
    let mailbox = mailbox_mut(&mut world, email)?;
    let stored = mailbox.add(
        NewMessage {
            id,
            raw: input.raw,
            label_ids: vec![mailbox::DRAFT.to_owned()],
            internal_date: now,
        },
        Threading::Requested(input.thread_id.as_deref()),
        history_id,
    );
    let response = json!({
        "id": draft_id,
        "message": { "id": stored.id, "threadId": stored.thread_id, "labelIds": stored.label_ids },
    });
    let message_id = stored.id.clone();
    mailbox.drafts.push(mailbox::StoredDraft {
        id: draft_id,
        message_id,
    });
    let stall = world.take_stalled_answer(GmailMethod::DraftsCreate.name());
    Ok((response, stall))
}

async fn drafts_list(
    State(sandbox): State<Sandbox>,
    Path(user_id): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> ApiResult {
    let caller = authorize(&sandbox, GmailMethod::DraftsList, &headers, &user_id).await?;
    let params = Params::from_query(query.as_deref());
    let max = parse_max_results(&params)?;
    let offset = parse_page_token(&params)?;
    let mut search = SearchQuery::parse(params.get("q").unwrap_or_default());
    search.include_spam_trash = params.get("includeSpamTrash") == Some("true");
    let world = sandbox.lock();
    let now = world.now();
    let mailbox = mailbox(&world, &caller.email)?;
    let drafts: Vec<Value> = mailbox
        .drafts
        .iter()
        .rev()
        .filter_map(|d| {
            let message = mailbox.message(&d.message_id)?;
            search.matches(message, now).then(|| {
                json!({ "id": d.id, "message": { "id": message.id, "threadId": message.thread_id } })
            })
        })
        .collect();
    let total = drafts.len();
    let (page, next) = page(drafts, offset, max);
    let mut body = list_body("drafts", page, next);
    body["resultSizeEstimate"] = json!(total);
    Ok(Json(body).into_response())
}

async fn drafts_get(
    State(sandbox): State<Sandbox>,
    Path((user_id, id)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> ApiResult {
    let method = GmailMethod::DraftsGet;
    let caller = authorize(&sandbox, method, &headers, &user_id).await?;
    let params = Params::from_query(query.as_deref());
    let format = format_param(&params, &caller, method)?;
    let world = sandbox.lock();
    let mailbox = mailbox(&world, &caller.email)?;
    let draft = mailbox
        .drafts
        .iter()
        .find(|d| d.id == id)
        .ok_or(ApiError::NotFound)?;
    let message = mailbox
        .message(&draft.message_id)
        .ok_or(ApiError::NotFound)?;
    Ok(Json(json!({ "id": draft.id, "message": message_json(message, format, &metadata_headers(&params)) }))
        .into_response())
}

async fn drafts_delete(
    State(sandbox): State<Sandbox>,
    Path((user_id, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> ApiResult {
    let caller = authorize(&sandbox, GmailMethod::DraftsDelete, &headers, &user_id).await?;
    delete_draft(&mut sandbox.lock(), &caller.email, &id)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Delete draft `id` of `email` and its message.
pub(crate) fn delete_draft(world: &mut World, email: &str, id: &str) -> Result<(), ApiError> {
    let history_id = world.next_history_id();
    let mailbox = mailbox_mut(world, email)?;
    let index = mailbox
        .drafts
        .iter()
        .position(|d| d.id == id)
        .ok_or(ApiError::NotFound)?;
    let draft = mailbox.drafts.remove(index);
    mailbox.remove(&draft.message_id, history_id);
    Ok(())
}

/// A person editing draft `id` in Gmail: its message is replaced by one with
/// the same headers and `text` as its body (a new message id, the same
/// draft id and thread), as Gmail does on every save.
pub(crate) fn edit_draft(
    world: &mut World,
    email: &str,
    id: &str,
    text: &str,
) -> Result<(), ApiError> {
    let now = world.now();
    let new_id = world.new_message_id();
    let history_id = world.next_history_id();
    let mailbox = mailbox_mut(world, email)?;
    let draft = mailbox
        .drafts
        .iter()
        .find(|d| d.id == id)
        .cloned()
        .ok_or(ApiError::NotFound)?;
    let stored = mailbox
        .message(&draft.message_id)
        .cloned()
        .ok_or(ApiError::NotFound)?;
    let raw = String::from_utf8_lossy(&stored.raw).replace("\r\n", "\n");
    let head = raw.split("\n\n").next().unwrap_or_default();
    // Whole header lines (with their folded continuations), minus how the
    // old body was encoded.
    let mut headers: Vec<String> = Vec::new();
    for line in head.lines() {
        if line.starts_with([' ', '\t']) {
            if let Some(last) = headers.last_mut() {
                last.push_str("\r\n");
                last.push_str(line);
            }
        } else {
            headers.push(line.to_owned());
        }
    }
    headers.retain(|header| {
        let name = header.split(':').next().unwrap_or_default().trim();
        !name.eq_ignore_ascii_case("Content-Transfer-Encoding")
            && !name.eq_ignore_ascii_case("Content-Type")
    });
    headers.push("Content-Type: text/plain; charset=utf-8".into());
    headers.push("Content-Transfer-Encoding: 8bit".into());
    let body = text.replace("\r\n", "\n").replace('\n', "\r\n");
    let new_raw = format!("{}\r\n\r\n{body}", headers.join("\r\n"));
    mailbox.remove(&draft.message_id, history_id);
    let replaced = mailbox.add(
        NewMessage {
            id: new_id,
            raw: new_raw.into_bytes(),
            label_ids: vec![mailbox::DRAFT.to_owned()],
            internal_date: now,
        },
        Threading::Requested(Some(&stored.thread_id)),
        history_id,
    );
    let new_message_id = replaced.id.clone();
    if let Some(kept) = mailbox.drafts.iter_mut().find(|d| d.id == id) {
        kept.message_id = new_message_id;
    }
    Ok(())
}

/// `drafts.send`: the draft named by `id` (its message replaced by
/// `message.raw` when given) is sent as `messages.send` would send it, and
/// the draft is gone. Answers the sent Message.
async fn drafts_send(
    State(sandbox): State<Sandbox>,
    Path(user_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    let caller = authorize(&sandbox, GmailMethod::DraftsSend, &headers, &user_id).await?;
    let object = json_object(&body)?;
    let Some(id) = object.get("id").and_then(Value::as_str) else {
        return Err(ApiError::InvalidArgument("Invalid draft".into()));
    };
    let replacement = match object.get("message") {
        Some(Value::Object(message)) if message.contains_key("raw") => {
            Some(message_input(message)?)
        }
        _ => None,
    };
    let sent = send_draft(&mut sandbox.lock(), &caller.email, id, replacement)?;
    sandbox.wake_publisher();
    Ok(Json(sent).into_response())
}

/// Send draft `id` of `email` (its message replaced by `replacement` when
/// given) as `messages.send` would, in its thread; the draft is gone.
fn send_draft(
    world: &mut World,
    email: &str,
    id: &str,
    replacement: Option<MessageInput>,
) -> Result<Value, ApiError> {
    let mailbox = mailbox_mut(world, email)?;
    let draft = mailbox
        .drafts
        .iter()
        .find(|draft| draft.id == id)
        .cloned()
        .ok_or(ApiError::NotFound)?;
    let stored = mailbox
        .message(&draft.message_id)
        .ok_or(ApiError::NotFound)?;
    let input = replacement.unwrap_or(MessageInput {
        raw: stored.raw.clone(),
        thread_id: Some(stored.thread_id.clone()),
    });
    // Sent first: a draft Gmail cannot send (no recipient) stays a draft.
    let sent = send(world, email, input)?;
    let history_id = world.next_history_id();
    let mailbox = mailbox_mut(world, email)?;
    mailbox.drafts.retain(|kept| kept.id != draft.id);
    mailbox.remove(&draft.message_id, history_id);
    Ok(sent)
}

/// A person sending draft `id` from Gmail, as it is.
pub(crate) fn send_draft_as_is(
    world: &mut World,
    email: &str,
    id: &str,
) -> Result<Value, ApiError> {
    send_draft(world, email, id, None)
}

/// `settings.sendAs.list`: the account's primary address, the one send-as
/// alias every Gmail account has.
async fn send_as_list(
    State(sandbox): State<Sandbox>,
    Path(user_id): Path<String>,
    headers: HeaderMap,
) -> ApiResult {
    let caller = authorize(&sandbox, GmailMethod::SendAsList, &headers, &user_id).await?;
    let world = sandbox.lock();
    let name = world
        .account(&caller.email)
        .map(|account| account.name.clone())
        .unwrap_or_default();
    let signature = world
        .mailbox(&caller.email)
        .map(|mailbox| mailbox.signature.clone())
        .unwrap_or_default();
    Ok(Json(json!({ "sendAs": [{
        "sendAsEmail": caller.email,
        "displayName": name,
        "replyToAddress": "",
        "signature": signature,
        "isPrimary": true,
        "isDefault": true,
        "treatAsAlias": false,
        "verificationStatus": "accepted",
    }]}))
    .into_response())
}

async fn threads_get(
    State(sandbox): State<Sandbox>,
    Path((user_id, id)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> ApiResult {
    let method = GmailMethod::ThreadsGet;
    let caller = authorize(&sandbox, method, &headers, &user_id).await?;
    let params = Params::from_query(query.as_deref());
    // threads.get has no raw format in the discovery document.
    let format = match format_param(&params, &caller, method)? {
        Format::Raw => {
            return Err(ApiError::InvalidArgument(
                "Invalid value at 'format' (raw)".into(),
            ));
        }
        format => format,
    };
    let wanted = metadata_headers(&params);
    let world = sandbox.lock();
    let mut messages = mailbox(&world, &caller.email)?.thread(&id);
    if messages.is_empty() {
        return Err(ApiError::NotFound);
    }
    messages.sort_by_key(|m| m.internal_date);
    let history_id = messages
        .iter()
        .map(|m| m.history_id)
        .max()
        .unwrap_or_default();
    Ok(Json(json!({
        "id": id,
        "historyId": history_id.to_string(),
        "messages": messages.iter().map(|m| message_json(m, format, &wanted)).collect::<Vec<_>>(),
    }))
    .into_response())
}

fn history_record_json(id: u64, change: &HistoryChange) -> Value {
    match change {
        HistoryChange::MessageAdded {
            message_id,
            thread_id,
            label_ids,
        } => json!({
            "id": id.to_string(),
            "messages": [{ "id": message_id, "threadId": thread_id }],
            "messagesAdded": [{ "message": { "id": message_id, "threadId": thread_id, "labelIds": label_ids } }],
        }),
        HistoryChange::MessageDeleted {
            message_id,
            thread_id,
        } => json!({
            "id": id.to_string(),
            "messages": [{ "id": message_id, "threadId": thread_id }],
            "messagesDeleted": [{ "message": { "id": message_id, "threadId": thread_id } }],
        }),
        HistoryChange::LabelsAdded {
            message_id,
            thread_id,
            label_ids,
            changed,
        } => json!({
            "id": id.to_string(),
            "messages": [{ "id": message_id, "threadId": thread_id }],
            "labelsAdded": [{
                "message": { "id": message_id, "threadId": thread_id, "labelIds": label_ids },
                "labelIds": changed,
            }],
        }),
        HistoryChange::LabelsRemoved {
            message_id,
            thread_id,
            label_ids,
            changed,
        } => json!({
            "id": id.to_string(),
            "messages": [{ "id": message_id, "threadId": thread_id }],
            "labelsRemoved": [{
                "message": { "id": message_id, "threadId": thread_id, "labelIds": label_ids },
                "labelIds": changed,
            }],
        }),
    }
}

async fn history_list(
    State(sandbox): State<Sandbox>,
    Path(user_id): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> ApiResult {
    let caller = authorize(&sandbox, GmailMethod::HistoryList, &headers, &user_id).await?;
    let params = Params::from_query(query.as_deref());
    let start: u64 = match params.get("startHistoryId").map(str::parse) {
        Some(Ok(start)) => start,
        Some(Err(_)) => {
            return Err(ApiError::BadRequest {
                message: "Invalid startHistoryId".into(),
                reason: "invalidArgument",
            });
        }
        None => {
            return Err(ApiError::BadRequest {
                message: "Required parameter: startHistoryId".into(),
                reason: "required",
            });
        }
    };
    let max = parse_max_results(&params)?;
    let offset = parse_page_token(&params)?;
    let types = params.all("historyTypes");
    let wants = |t: &str| types.is_empty() || types.iter().any(|x| x.eq_ignore_ascii_case(t));
    let label = params.get("labelId");
    let world = sandbox.lock();
    let mailbox = mailbox(&world, &caller.email)?;
    if start < mailbox.history_floor {
        return Err(ApiError::NotFound);
    }
    let records: Vec<Value> = mailbox
        .history
        .iter()
        .filter(|r| r.id > start)
        .filter(|record| {
            let kind = match &record.change {
                HistoryChange::MessageAdded { .. } => "messageAdded",
                HistoryChange::MessageDeleted { .. } => "messageDeleted",
                HistoryChange::LabelsAdded { .. } => "labelAdded",
                HistoryChange::LabelsRemoved { .. } => "labelRemoved",
            };
            wants(kind) && label.is_none_or(|l| record.change.concerns_label(l))
        })
        .map(|record| history_record_json(record.id, &record.change))
        .collect();
    let (page, next) = page(records, offset, max);
    let mut body = list_body("history", page, next);
    body["historyId"] = json!(mailbox.history_id.to_string());
    Ok(Json(body).into_response())
}

fn user_label_json(label: &mailbox::UserLabel) -> Value {
    json!({
        "id": label.id,
        "name": label.name,
        "type": "user",
        "labelListVisibility": label.label_list_visibility,
        "messageListVisibility": label.message_list_visibility,
    })
}

/// `labels.list`: the system labels, then the user's labels in creation
/// order.
async fn labels_list(
    State(sandbox): State<Sandbox>,
    Path(user_id): Path<String>,
    headers: HeaderMap,
) -> ApiResult {
    let caller = authorize(&sandbox, GmailMethod::LabelsList, &headers, &user_id).await?;
    let world = sandbox.lock();
    let mailbox = mailbox(&world, &caller.email)?;
    let labels: Vec<Value> = mailbox::SYSTEM_LABELS
        .iter()
        .map(|l| json!({ "id": l, "name": l, "type": "system" }))
        .chain(mailbox.user_labels.iter().map(user_label_json))
        .collect();
    Ok(Json(json!({ "labels": labels })).into_response())
}

/// An optional enum field of a request body: absent or null gives
/// `default`; anything but one of `allowed` is 400.
fn enum_field(
    object: &Map<String, Value>,
    key: &str,
    field: &str,
    allowed: &[&str],
    default: &str,
) -> Result<String, ApiError> {
    match object.get(key) {
        None | Some(Value::Null) => Ok(default.to_owned()),
        Some(Value::String(value)) if allowed.contains(&value.as_str()) => Ok(value.clone()),
        Some(other) => Err(ApiError::InvalidArgument(format!(
            "Invalid value at '{field}' ({other})"
        ))),
    }
}

/// `labels.create`: `{"name", "labelListVisibility"?,
/// "messageListVisibility"?}` → the new Label. A name taken by a user
/// label or a system label (case-insensitively) is 409 "Label name exists
/// or conflicts"; an empty name, or one with control characters, is 400.
async fn labels_create(
    State(sandbox): State<Sandbox>,
    Path(user_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    let method = GmailMethod::LabelsCreate;
    let caller = authorize(&sandbox, method, &headers, &user_id).await?;
    let object = json_object(&body)?;
    let name = match object.get("name") {
        Some(Value::String(name)) => name.as_str(),
        None | Some(Value::Null) => "",
        Some(other) => {
            return Err(ApiError::InvalidArgument(format!(
                "Invalid value at 'label.name' (TYPE_STRING), {other}"
            )));
        }
    };
    if name.trim().is_empty() || name.chars().any(char::is_control) {
        return Err(ApiError::InvalidArgument("Invalid label name".into()));
    }
    let label_list_visibility = enum_field(
        &object,
        "labelListVisibility",
        "label.label_list_visibility",
        &["labelShow", "labelShowIfUnread", "labelHide"],
        "labelShow",
    )?;
    let message_list_visibility = enum_field(
        &object,
        "messageListVisibility",
        "label.message_list_visibility",
        &["show", "hide"],
        "show",
    )?;
    let (label, stall) = {
        let mut world = sandbox.lock();
        let mailbox = mailbox_mut(&mut world, &caller.email)?;
        if mailbox::is_reserved_label_name(name) || mailbox.user_label_named(name).is_some() {
            return Err(ApiError::AlreadyExists(
                "Label name exists or conflicts".into(),
            ));
        }
        let label = user_label_json(mailbox.create_label(
            name,
            &label_list_visibility,
            &message_list_visibility,
        ));
        (label, world.take_stalled_answer(method.name()))
    };
    if let Some(stall) = stall {
        tokio::time::sleep(stall).await;
    }
    Ok(Json(label).into_response())
}

/// A repeated string field of a request body (absent or null: empty).
fn string_list(object: &Map<String, Value>, key: &str) -> Result<Vec<String>, ApiError> {
    let invalid = |value: &Value| {
        ApiError::InvalidArgument(format!("Invalid value at '{key}' (TYPE_STRING), {value}"))
    };
    match object.get(key) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| {
                item.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| invalid(item))
            })
            .collect(),
        Some(other) => Err(invalid(other)),
    }
}

/// `messages.modify`: `{"addLabelIds", "removeLabelIds"}` → `{"id",
/// "threadId", "labelIds"}`. Label ids are system labels (not `SENT` or
/// `DRAFT`, which only Gmail applies) or the mailbox's user labels; any
/// other is 400 "Invalid label: <id>" and nothing changes.
async fn messages_modify(
    State(sandbox): State<Sandbox>,
    Path((user_id, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    let method = GmailMethod::MessagesModify;
    let caller = authorize(&sandbox, method, &headers, &user_id).await?;
    if !is_gmail_id(&id) {
        return Err(ApiError::InvalidArgument("Invalid id value".into()));
    }
    let object = json_object(&body)?;
    let add = string_list(&object, "addLabelIds")?;
    let remove = string_list(&object, "removeLabelIds")?;
    if add.is_empty() && remove.is_empty() {
        return Err(ApiError::InvalidArgument(
            "No label add or removes specified".into(),
        ));
    }
    let (response, stall) = {
        let mut world = sandbox.lock();
        let history_ids = [world.next_history_id(), world.next_history_id()];
        let mailbox = mailbox_mut(&mut world, &caller.email)?;
        if mailbox.message(&id).is_none() {
            return Err(ApiError::NotFound);
        }
        let message = mailbox
            .modify_labels(&id, &add, &remove, history_ids)
            .map_err(|invalid| ApiError::InvalidArgument(format!("Invalid label: {}", invalid.0)))?
            .ok_or(ApiError::NotFound)?;
        let mut response = json!({ "id": message.id, "threadId": message.thread_id });
        if !message.label_ids.is_empty() {
            response["labelIds"] = json!(message.label_ids);
        }
        (response, world.take_stalled_answer(method.name()))
    };
    sandbox.wake_publisher();
    if let Some(stall) = stall {
        tokio::time::sleep(stall).await;
    }
    Ok(Json(response).into_response())
}

async fn watch(
    State(sandbox): State<Sandbox>,
    Path(user_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    let caller = authorize(&sandbox, GmailMethod::Watch, &headers, &user_id).await?;
    let object = json_object(&body)?;
    let valid_topic = object
        .get("topicName")
        .and_then(Value::as_str)
        .is_some_and(|t| t.starts_with("projects/") && t.contains("/topics/"));
    if !valid_topic {
        return Err(ApiError::InvalidArgument(
            "Invalid topicName does not match projects/SOME-PROJECT/topics/SOME-TOPIC".into(),
        ));
    }
    let mut world = sandbox.lock();
    // Google asks for watch to be renewed at least every 7 days.
    let expiration = world.now() + Duration::days(7);
    let labels: Vec<String> = object
        .get("labelIds")
        .and_then(Value::as_array)
        .map(|ids| {
            ids.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    let mailbox = mailbox_mut(&mut world, &caller.email)?;
    mailbox.watch_expiration = Some(expiration);
    mailbox.watch_labels = labels;
    // Changes from now on are published, not what happened before.
    mailbox.watch_published = mailbox.history_id;
    Ok(Json(json!({
        "historyId": mailbox.history_id.to_string(),
        "expiration": expiration.timestamp_millis().to_string(),
    }))
    .into_response())
}

async fn stop(
    State(sandbox): State<Sandbox>,
    Path(user_id): Path<String>,
    headers: HeaderMap,
) -> ApiResult {
    let caller = authorize(&sandbox, GmailMethod::Stop, &headers, &user_id).await?;
    let mut world = sandbox.lock();
    mailbox_mut(&mut world, &caller.email)?.watch_expiration = None;
    Ok(StatusCode::NO_CONTENT.into_response())
}
