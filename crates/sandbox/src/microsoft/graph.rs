//! Graph v1.0 mail endpoints under `/me`: messages (get, `$value`, list,
//! create, update, delete, createReply, send, sendMail) and delta, behind
//! the shared Bearer/permission/fault gate.

// The errors are finished HTTP answers (`Response`), made once per request.
#![allow(clippy::result_large_err)]

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{OriginalUri, Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Map, Value, json};
use url::form_urlencoded;

use super::mail::{
    self, Clause, Comparison, EmailAddress, Expand, Mailbox, Message, Patch, parse_filter,
};
use super::{GraphFault, MicrosoftAccount, World, graph_error};
use crate::Sandbox;
use crate::http_util::{self, Params};
use crate::state::random_token;

const MAIL_READ: &str = "Mail.Read";
const MAIL_READ_WRITE: &str = "Mail.ReadWrite";
const MAIL_SEND: &str = "Mail.Send";
const DEFAULT_TOP: usize = 10;
const MAX_TOP: usize = 1000;
/// Delta and skip tokens kept at most (the oldest go first: 410).
const MAX_DELTA_STATES: usize = 10_000;
const GRAPH: &str = "https://graph.microsoft.com/v1.0";

/// What an endpoint needs of the token's permissions.
#[derive(Clone, Copy)]
pub(super) enum Need {
    Read,
    Write,
    Send,
}

/// The signed-in user of a Graph call.
pub(super) struct Caller {
    pub email: String,
    pub account: MicrosoftAccount,
    pub client_id: String,
}

fn has_scope(scopes: &BTreeSet<String>, wanted: &str) -> bool {
    scopes.iter().any(|scope| {
        scope
            .strip_prefix("https://graph.microsoft.com/")
            .unwrap_or(scope)
            .eq_ignore_ascii_case(wanted)
    })
}

/// Counts the call, then: Bearer token (401s), injected faults, then the
/// permission (403).
pub(super) fn gate(
    world: &mut World,
    name: &str,
    path: &str,
    headers: &HeaderMap,
    need: Need,
) -> Result<Caller, Response> {
    world.count(name);
    let unauthorized = |message: &str| {
        graph_error(
            StatusCode::UNAUTHORIZED,
            "InvalidAuthenticationToken",
            message,
        )
    };
    let Some(token) = http_util::bearer(headers) else {
        return Err(unauthorized("Access token is empty."));
    };
    let Some(access) = world.access.get(&token) else {
        return Err(unauthorized(
            "IDX14100: JWT is not well formed, there are no dots (.).",
        ));
    };
    if access.expires_at < Utc::now() {
        return Err(unauthorized(
            "Lifetime validation failed, the token is expired.",
        ));
    }
    let (email, scopes, client_id) = (
        access.email.clone(),
        access.scopes.clone(),
        access.client_id.clone(),
    );
    let Some(account) = world.account(&email).cloned() else {
        return Err(graph_error(
            StatusCode::NOT_FOUND,
            "ErrorInvalidUser",
            "The requested user is invalid.",
        ));
    };
    if let Some(fault) = world.take_fault(&account.email, path) {
        world.count("graph.fault");
        return Err(fault_response(&fault));
    }
    let allowed = match need {
        Need::Read => has_scope(&scopes, MAIL_READ) || has_scope(&scopes, MAIL_READ_WRITE),
        Need::Write => has_scope(&scopes, MAIL_READ_WRITE),
        Need::Send => has_scope(&scopes, MAIL_SEND),
    };
    if !allowed {
        return Err(graph_error(
            StatusCode::FORBIDDEN,
            "ErrorAccessDenied",
            "Access is denied. Check credentials and try again.",
        ));
    }
    Ok(Caller {
        email: account.email.clone(),
        account,
        client_id,
    })
}

impl World {
    /// The first injected fault matching this call, used up by one.
    fn take_fault(&mut self, email: &str, path: &str) -> Option<GraphFault> {
        self.take_fault_when(email, path, false)
    }

    /// The first fault matching this call and taking effect before
    /// (`after_commit` false) or after the call's work, used up by one.
    pub(super) fn take_fault_when(
        &mut self,
        email: &str,
        path: &str,
        after_commit: bool,
    ) -> Option<GraphFault> {
        let index = self.graph_faults.iter().position(|fault| {
            fault.times > 0
                && fault.after_commit == after_commit
                && fault
                    .path_contains
                    .as_deref()
                    .is_none_or(|part| path.contains(part))
                && fault
                    .email
                    .as_deref()
                    .is_none_or(|who| who.eq_ignore_ascii_case(email))
        })?;
        let fault = &mut self.graph_faults[index];
        fault.times -= 1;
        let taken = fault.clone();
        if fault.times == 0 {
            self.graph_faults.remove(index);
        }
        Some(taken)
    }
}

pub(super) fn fault_response(fault: &GraphFault) -> Response {
    let status = StatusCode::from_u16(fault.status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
    let (code, message) = match fault.status {
        429 => (
            "ApplicationThrottled",
            "Application is over its MailboxConcurrency limit.",
        ),
        503 => (
            "ServiceNotAvailable",
            "The service is temporarily unavailable. Please retry later.",
        ),
        504 => ("GatewayTimeout", "The gateway timed out (sandbox fault)."),
        500 => (
            "InternalServerError",
            "An internal server error occurred (sandbox fault).",
        ),
        _ => ("SandboxFault", "An injected sandbox fault."),
    };
    let mut response = graph_error(status, code, message);
    if let Some(seconds) = fault.retry_after {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    response
}

/// Runs a handler's work under the lock, then sends what it queued.
fn run(sandbox: &Sandbox, work: impl FnOnce(&mut World) -> Result<Response, Response>) -> Response {
    let microsoft = sandbox.microsoft();
    let response = {
        let mut world = microsoft.lock();
        work(&mut world).unwrap_or_else(|error| error)
    };
    microsoft.flush();
    response
}

pub(super) fn not_found() -> Response {
    graph_error(
        StatusCode::NOT_FOUND,
        "ErrorItemNotFound",
        "The specified object was not found in the store.",
    )
}

pub(super) fn bad_request(code: &str, message: &str) -> Response {
    graph_error(StatusCode::BAD_REQUEST, code, message)
}

/// A JSON request body (`None` for an empty one when `optional`).
pub(super) fn json_body(body: &Bytes, optional: bool) -> Result<Value, Response> {
    if body.iter().all(u8::is_ascii_whitespace) {
        if optional {
            return Ok(json!({}));
        }
        return Err(bad_request(
            "BadRequest",
            "Empty Payload. JSON content expected.",
        ));
    }
    serde_json::from_slice(body).map_err(|_| {
        bad_request(
            "BadRequest",
            "Unable to read JSON request payload. Please ensure Content-Type header is set and payload is of valid JSON format.",
        )
    })
}

/// `http://{Host}{path}`: where the client reached us.
fn link_base(headers: &HeaderMap, path: &str) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    format!("http://{host}{path}")
}

/// `$`-names kept literal, like Graph's own links.
fn encode_query(pairs: &[(String, String)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| {
            let k: String = form_urlencoded::byte_serialize(k.as_bytes()).collect();
            let v: String = form_urlencoded::byte_serialize(v.as_bytes()).collect();
            format!("{}={v}", k.replace("%24", "$"))
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// An OData query option, with or without its `$`.
fn option<'a>(params: &'a Params, name: &str) -> Option<&'a str> {
    params.get(&format!("${name}")).or_else(|| params.get(name))
}

fn select(params: &Params) -> Option<Vec<String>> {
    option(params, "select").map(|s| {
        s.split(',')
            .map(|p| p.trim().to_owned())
            .filter(|p| !p.is_empty())
            .collect()
    })
}

fn expand(params: &Params) -> Result<Expand, Response> {
    Expand::parse(option(params, "expand")).map_err(|e| bad_request("BadRequest", &e))
}

fn filter(params: &Params) -> Result<Vec<Clause>, Response> {
    match option(params, "filter") {
        None => Ok(Vec::new()),
        Some(filter) => {
            parse_filter(filter).map_err(|e| bad_request("ErrorInvalidUrlQueryFilter", &e))
        }
    }
}

fn number(params: &Params, name: &str, default: usize) -> Result<usize, Response> {
    match option(params, name) {
        None => Ok(default),
        Some(value) => value.trim().parse().map_err(|_| {
            bad_request(
                "BadRequest",
                &format!("Invalid value '{value}' for query option ${name}."),
            )
        }),
    }
}

fn context(caller: &Caller, what: &str) -> String {
    format!("{GRAPH}/$metadata#users('{}')/{what}", caller.account.id)
}

fn entity(mut value: Value, caller: &Caller) -> Value {
    if let Value::Object(object) = &mut value {
        let mut out = Map::new();
        out.insert(
            "@odata.context".to_owned(),
            json!(context(caller, "messages/$entity")),
        );
        out.append(object);
        return Value::Object(out);
    }
    value
}

fn folder_id(mailbox: &Mailbox, folder: &str) -> Result<String, Response> {
    mailbox
        .folder(folder)
        .map(|f| f.id.clone())
        .ok_or_else(not_found)
}

/// A message of the caller (in `folder`, when given).
fn find(
    world: &mut World,
    caller: &Caller,
    folder: Option<&str>,
    id: &str,
) -> Result<Message, Response> {
    let mailbox = world.mailbox(&caller.email);
    let folder = folder.map(|f| folder_id(mailbox, f)).transpose()?;
    mailbox
        .get(id)
        .filter(|m| folder.as_ref().is_none_or(|f| *f == m.folder_id))
        .cloned()
        .ok_or_else(not_found)
}

// ---- mail folders ----

/// `GET /me/mailFolders/{id or well-known name}`.
pub(super) async fn get_folder(
    State(sandbox): State<Sandbox>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    Path(folder): Path<String>,
) -> Response {
    run(&sandbox, |world| {
        let caller = gate(
            world,
            "graph.mailFolders.get",
            uri.path(),
            &headers,
            Need::Read,
        )?;
        let mailbox = world.mailbox(&caller.email);
        let found = mailbox.folder(&folder).ok_or_else(not_found)?;
        let (id, well_known) = (found.id.clone(), found.well_known);
        let in_it = mailbox.messages.iter().filter(|m| m.folder_id == id);
        let total = in_it.clone().count();
        let unread = in_it.filter(|m| !m.is_read).count();
        let display_name = match well_known {
            "inbox" => "Inbox",
            "drafts" => "Drafts",
            "sentitems" => "Sent Items",
            "deleteditems" => "Deleted Items",
            "junkemail" => "Junk Email",
            other => other,
        };
        Ok(Json(json!({
            "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#users('me')/mailFolders/$entity",
            "id": id,
            "displayName": display_name,
            "parentFolderId": "AQMkADsandboxmsgfolderroot",
            "childFolderCount": 0,
            "unreadItemCount": unread,
            "totalItemCount": total,
            "isHidden": false,
        }))
        .into_response())
    })
}

// ---- GET one ----

pub(super) async fn get_message(
    State(sandbox): State<Sandbox>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    get_one(&sandbox, uri.path(), &headers, None, &id, query.as_deref())
}

pub(super) async fn get_folder_message(
    State(sandbox): State<Sandbox>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    Path((folder, id)): Path<(String, String)>,
    RawQuery(query): RawQuery,
) -> Response {
    get_one(
        &sandbox,
        uri.path(),
        &headers,
        Some(&folder),
        &id,
        query.as_deref(),
    )
}

fn get_one(
    sandbox: &Sandbox,
    path: &str,
    headers: &HeaderMap,
    folder: Option<&str>,
    id: &str,
    query: Option<&str>,
) -> Response {
    run(sandbox, |world| {
        let caller = gate(world, "graph.messages.get", path, headers, Need::Read)?;
        let params = Params::from_query(query);
        let (select, expand) = (select(&params), expand(&params)?);
        let message = find(world, &caller, folder, id)?;
        Ok(Json(entity(message.render(select.as_deref(), &expand), &caller)).into_response())
    })
}

/// `$value`: the MIME text, served as `message/rfc822`.
pub(super) async fn get_mime(
    State(sandbox): State<Sandbox>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    run(&sandbox, |world| {
        let caller = gate(
            world,
            "graph.messages.value",
            uri.path(),
            &headers,
            Need::Read,
        )?;
        let message = find(world, &caller, None, &id)?;
        Ok(([(header::CONTENT_TYPE, "message/rfc822")], message.mime()).into_response())
    })
}

// ---- list ----

pub(super) async fn list_messages(
    State(sandbox): State<Sandbox>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    list(&sandbox, uri.path(), &headers, None, query.as_deref())
}

pub(super) async fn list_folder_messages(
    State(sandbox): State<Sandbox>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    Path(folder): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    list(
        &sandbox,
        uri.path(),
        &headers,
        Some(&folder),
        query.as_deref(),
    )
}

fn list(
    sandbox: &Sandbox,
    path: &str,
    headers: &HeaderMap,
    folder: Option<&str>,
    query: Option<&str>,
) -> Response {
    run(sandbox, |world| {
        let caller = gate(world, "graph.messages.list", path, headers, Need::Read)?;
        let params = Params::from_query(query);
        let (select, expand, clauses) = (select(&params), expand(&params)?, filter(&params)?);
        let top = number(&params, "top", DEFAULT_TOP)?.min(MAX_TOP);
        let skip = number(&params, "skip", 0)?;
        let ascending = option(&params, "orderby")
            .is_some_and(|o| o.to_ascii_lowercase().split_whitespace().nth(1) == Some("asc"));
        let mailbox = world.mailbox(&caller.email);
        let folder = folder.map(|f| folder_id(mailbox, f)).transpose()?;
        let mut found: Vec<&Message> = mailbox
            .messages
            .iter()
            .filter(|m| folder.as_ref().is_none_or(|f| *f == m.folder_id))
            .filter(|m| clauses.iter().all(|c| c.matches(m)))
            .collect();
        found.sort_by_key(|m| (m.received, m.order));
        if !ascending {
            found.reverse();
        }
        let total = found.len();
        let value: Vec<Value> = found
            .into_iter()
            .skip(skip)
            .take(top)
            .map(|m| m.render(select.as_deref(), &expand))
            .collect();
        let mut answer = json!({"@odata.context": context(&caller, "messages"), "value": value});
        if top > 0 && skip.saturating_add(top) < total {
            let mut pairs: Vec<(String, String)> =
                form_urlencoded::parse(query.unwrap_or_default().as_bytes())
                    .into_owned()
                    .filter(|(k, _)| k != "$skip" && k != "skip")
                    .collect();
            pairs.push(("$skip".to_owned(), (skip + top).to_string()));
            answer["@odata.nextLink"] = json!(format!(
                "{}?{}",
                link_base(headers, path),
                encode_query(&pairs)
            ));
        }
        Ok(Json(answer).into_response())
    })
}

// ---- create, update, delete ----

pub(super) async fn create_message(
    State(sandbox): State<Sandbox>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    run(&sandbox, |world| {
        let caller = gate(
            world,
            "graph.messages.create",
            uri.path(),
            &headers,
            Need::Write,
        )?;
        let patch = Patch::parse(&json_body(&body, false)?).map_err(body_error)?;
        let drafts = world.mailbox(&caller.email).folder_id("drafts");
        let mut draft = Message::draft(&caller.account, &drafts);
        draft.apply(patch);
        let id = world.store(&caller.email, draft);
        created(world, &caller, &id)
    })
}

pub(super) fn body_error((code, message): mail::BodyError) -> Response {
    bad_request(code, &message)
}

/// 201 with the stored message.
fn created(world: &mut World, caller: &Caller, id: &str) -> Result<Response, Response> {
    let message = find(world, caller, None, id)?;
    Ok((
        StatusCode::CREATED,
        Json(entity(message.render(None, &Expand::AllExtended), caller)),
    )
        .into_response())
}

pub(super) async fn update_message(
    State(sandbox): State<Sandbox>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    run(&sandbox, |world| {
        let caller = gate(
            world,
            "graph.messages.update",
            uri.path(),
            &headers,
            Need::Write,
        )?;
        let patch = Patch::parse(&json_body(&body, false)?).map_err(body_error)?;
        let message = find(world, &caller, None, &id)?;
        if !message.is_draft && !patch.only_flags() {
            return Err(bad_request(
                "ErrorInvalidPropertyUpdateSentMessage",
                "Update operation is not supported for some property of a sent message.",
            ));
        }
        let seq = world.next_seq();
        if let Some(message) = world.mailbox(&caller.email).get_mut(&id) {
            message.apply(patch);
            message.change_seq = seq;
        }
        let message = find(world, &caller, None, &id)?;
        Ok(Json(entity(message.render(None, &Expand::AllExtended), &caller)).into_response())
    })
}

/// Moves to Deleted Items (a new id), or deletes for good from there.
pub(super) async fn delete_message(
    State(sandbox): State<Sandbox>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    run(&sandbox, |world| {
        let caller = gate(
            world,
            "graph.messages.delete",
            uri.path(),
            &headers,
            Need::Write,
        )?;
        let message = find(world, &caller, None, &id)?;
        let seq = world.next_seq();
        let mailbox = world.mailbox(&caller.email);
        if mailbox.folder_name(&message.folder_id) == "deleteditems" {
            mailbox.take(&id, seq);
        } else {
            world.move_message(&caller.email, &id, "deleteditems");
        }
        Ok(StatusCode::NO_CONTENT.into_response())
    })
}

// ---- replies ----

pub(super) async fn create_reply(
    State(sandbox): State<Sandbox>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    reply(&sandbox, uri.path(), &headers, &id, &body, false)
}

pub(super) async fn create_reply_all(
    State(sandbox): State<Sandbox>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    reply(&sandbox, uri.path(), &headers, &id, &body, true)
}

fn reply_subject(subject: &str) -> String {
    let trimmed = subject.trim_start();
    if trimmed
        .get(..3)
        .is_some_and(|prefix| prefix.eq_ignore_ascii_case("re:"))
    {
        subject.to_owned()
    } else {
        format!("RE: {subject}")
    }
}

fn reply(
    sandbox: &Sandbox,
    path: &str,
    headers: &HeaderMap,
    id: &str,
    body: &Bytes,
    all: bool,
) -> Response {
    let name = if all {
        "graph.createReplyAll"
    } else {
        "graph.createReply"
    };
    run(sandbox, |world| {
        let caller = gate(world, name, path, headers, Need::Write)?;
        let body = json_body(body, true)?;
        let comment = match body.get("comment") {
            None | Some(Value::Null) => String::new(),
            Some(Value::String(comment)) => comment.clone(),
            Some(_) => {
                return Err(bad_request(
                    "BadRequest",
                    "Property 'comment' must be a string.",
                ));
            }
        };
        let mut patch = match body.get("message") {
            None | Some(Value::Null) => Patch::default(),
            Some(message) => Patch::parse(message).map_err(body_error)?,
        };
        let original = find(world, &caller, None, id)?;
        let drafts = world.mailbox(&caller.email).folder_id("drafts");
        let mut draft = Message::draft(&caller.account, &drafts);
        draft.conversation_id = original.conversation_id.clone();
        draft.subject = reply_subject(&original.subject);
        let me = |a: &EmailAddress| a.address.eq_ignore_ascii_case(&caller.email);
        draft.to = if original.reply_to.is_empty() {
            original.from.clone().into_iter().collect()
        } else {
            original.reply_to.clone()
        };
        if all {
            for address in &original.to {
                if !me(address)
                    && !draft
                        .to
                        .iter()
                        .any(|a| a.address.eq_ignore_ascii_case(&address.address))
                {
                    draft.to.push(address.clone());
                }
            }
            draft.cc = original.cc.iter().filter(|a| !me(a)).cloned().collect();
        }
        draft.in_reply_to = Some(original.internet_message_id.clone());
        let mut references = original.references.clone();
        references.push(original.internet_message_id.clone());
        let keep = references.len().saturating_sub(20);
        draft.references = references.split_off(keep);
        let (html, intro) = patch.body.take().unwrap_or((false, comment));
        draft.html = html;
        draft.content = quote(&original, html, &intro);
        draft.apply(patch);
        let id = world.store(&caller.email, draft);
        created(world, &caller, &id)
    })
}

/// `intro` then the original, quoted as Outlook does (a header block).
fn quote(original: &Message, html: bool, intro: &str) -> String {
    let from = original
        .from
        .as_ref()
        .map(|a| format!("{} <{}>", a.name, a.address))
        .unwrap_or_default();
    let to = original
        .to
        .iter()
        .map(|a| a.address.clone())
        .collect::<Vec<_>>()
        .join("; ");
    let sent = original
        .sent
        .unwrap_or(original.received)
        .format("%A, %B %-d, %Y %-I:%M %p")
        .to_string();
    let text = original.text();
    if html {
        let escape = crate::html::escape;
        format!(
            "<html><body><div>{intro}</div><hr><div><b>From:</b> {}<br><b>Sent:</b> {}<br><b>To:</b> {}<br><b>Subject:</b> {}</div><blockquote>{}</blockquote></body></html>",
            escape(&from),
            escape(&sent),
            escape(&to),
            escape(&original.subject),
            escape(&text).replace('\n', "<br>")
        )
    } else {
        let quoted = text
            .lines()
            .map(|line| format!("> {line}"))
            .collect::<Vec<_>>()
            .join("\r\n");
        format!(
            "{intro}\r\n\r\n________________________________\r\nFrom: {from}\r\nSent: {sent}\r\nTo: {to}\r\nSubject: {}\r\n\r\n{quoted}\r\n",
            original.subject
        )
    }
}

// ---- sending ----

pub(super) async fn send_draft(
    State(sandbox): State<Sandbox>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    run(&sandbox, |world| {
        let caller = gate(world, "graph.send", uri.path(), &headers, Need::Send)?;
        let message = find(world, &caller, None, &id)?;
        if !message.is_draft {
            return Err(bad_request(
                "ErrorInvalidOperation",
                "Only draft messages can be sent.",
            ));
        }
        no_recipients(&message)?;
        let seq = world.next_seq();
        let Some(draft) = world.mailbox(&caller.email).take(&id, seq) else {
            return Err(not_found());
        };
        dispatch(world, &caller, draft, true);
        Ok(StatusCode::ACCEPTED.into_response())
    })
}

fn no_recipients(message: &Message) -> Result<(), Response> {
    if message.to.is_empty() && message.cc.is_empty() && message.bcc.is_empty() {
        return Err(bad_request(
            "ErrorInvalidRecipients",
            "At least one recipient isn't valid., A message can't be sent because it contains no recipients.",
        ));
    }
    Ok(())
}

pub(super) async fn send_mail(
    State(sandbox): State<Sandbox>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    run(&sandbox, |world| {
        let caller = gate(world, "graph.sendMail", uri.path(), &headers, Need::Send)?;
        let body = json_body(&body, false)?;
        let Some(message) = body.get("message").filter(|m| m.is_object()) else {
            return Err(bad_request(
                "ErrorInvalidParameter",
                "Required property 'message' is missing.",
            ));
        };
        let save = match body.get("saveToSentItems") {
            None | Some(Value::Null) => true,
            Some(Value::Bool(save)) => *save,
            Some(Value::String(save)) => !save.eq_ignore_ascii_case("false"),
            Some(_) => {
                return Err(bad_request(
                    "BadRequest",
                    "Property 'saveToSentItems' must be a boolean.",
                ));
            }
        };
        let patch = Patch::parse(message).map_err(body_error)?;
        let mut draft = Message::draft(&caller.account, "");
        draft.apply(patch);
        no_recipients(&draft)?;
        dispatch(world, &caller, draft, save);
        Ok(StatusCode::ACCEPTED.into_response())
    })
}

/// Sends: a copy in the sender's Sent Items (when `save`), one in the
/// inbox of every sandbox account among To/Cc/Bcc (no Bcc, no extended
/// properties, unread).
fn dispatch(world: &mut World, caller: &Caller, mut message: Message, save: bool) {
    let now = Utc::now();
    message.is_draft = false;
    message.is_read = true;
    message.sent = Some(now);
    message.received = now;
    message.modified = now;
    let me = EmailAddress {
        name: caller.account.display_name.clone(),
        address: caller.account.email.clone(),
    };
    message.from = Some(me.clone());
    message.sender = Some(me);
    if save {
        let mut sent = message.clone();
        sent.id = mail::message_id();
        sent.folder_id = world.mailbox(&caller.email).folder_id("sentitems");
        world.store(&caller.email, sent);
    }
    let mut seen = BTreeSet::new();
    let recipients: Vec<String> = message
        .to
        .iter()
        .chain(&message.cc)
        .chain(&message.bcc)
        .map(|a| a.address.to_ascii_lowercase())
        .filter(|a| seen.insert(a.clone()))
        .collect();
    let mut copy = message;
    copy.bcc.clear();
    copy.extended.clear();
    for address in recipients {
        if world.account(&address).is_some() {
            world.deliver(&address, copy.clone());
        }
    }
}

// ---- delta ----

/// Where a delta round starts from.
#[derive(Clone, Debug)]
pub(crate) struct DeltaState {
    email: String,
    folder_id: String,
    /// Changes after this sequence number are new.
    seq: u64,
    cutoff: Option<(Comparison, DateTime<Utc>)>,
    select: Option<Vec<String>>,
    pub(crate) issued_at: DateTime<Utc>,
    pub(crate) expired: bool,
}

impl DeltaState {
    pub(crate) fn email(&self) -> &str {
        &self.email
    }
}

#[derive(Clone, Debug)]
enum Entry {
    Message(String),
    Removed(String),
}

/// A page of a round after the first.
#[derive(Clone, Debug)]
pub(crate) struct DeltaPage {
    pub(crate) state: DeltaState,
    entries: Arc<Vec<Entry>>,
    offset: usize,
    page_size: usize,
}

fn sync_state_not_found() -> Response {
    graph_error(
        StatusCode::GONE,
        "SyncStateNotFound",
        "The sync state generation is not found. The delta token is expired and data must be synchronized again.",
    )
}

fn max_page_size(headers: &HeaderMap) -> Option<usize> {
    let prefer = headers.get("prefer")?.to_str().ok()?;
    prefer.split(',').find_map(|preference| {
        let (name, value) = preference.split_once('=')?;
        name.trim()
            .eq_ignore_ascii_case("odata.maxpagesize")
            .then(|| value.trim().trim_matches('"').parse().ok())
            .flatten()
    })
}

fn within_cutoff(state: &DeltaState, message: &Message) -> bool {
    state.cutoff.is_none_or(|(op, at)| match op {
        Comparison::Gt => message.received > at,
        _ => message.received >= at,
    })
}

fn changes(mailbox: &Mailbox, state: &DeltaState) -> Vec<Entry> {
    let mut entries: Vec<(u64, Entry)> = mailbox
        .messages
        .iter()
        .filter(|m| m.folder_id == state.folder_id && m.change_seq > state.seq)
        .filter(|m| within_cutoff(state, m))
        .map(|m| (m.change_seq, Entry::Message(m.id.clone())))
        .collect();
    let mut removed = BTreeSet::new();
    for removal in &mailbox.removed {
        let still_here = mailbox
            .messages
            .iter()
            .any(|m| m.id == removal.id && m.folder_id == state.folder_id);
        if removal.folder_id == state.folder_id
            && removal.seq > state.seq
            && !still_here
            && removed.insert(removal.id.clone())
        {
            entries.push((removal.seq, Entry::Removed(removal.id.clone())));
        }
    }
    entries.sort_by_key(|(seq, _)| *seq);
    entries.into_iter().map(|(_, entry)| entry).collect()
}

/// Keeps at most [`MAX_DELTA_STATES`] entries, dropping the oldest.
fn make_room<T>(map: &mut HashMap<String, T>, issued: impl Fn(&T) -> DateTime<Utc>) {
    while map.len() >= MAX_DELTA_STATES {
        let Some(oldest) = map
            .iter()
            .min_by_key(|(_, value)| issued(value))
            .map(|(key, _)| key.clone())
        else {
            return;
        };
        map.remove(&oldest);
    }
}

pub(super) async fn delta(
    State(sandbox): State<Sandbox>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    Path(folder): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    run(&sandbox, |world| {
        let caller = gate(world, "graph.delta", uri.path(), &headers, Need::Read)?;
        let params = Params::from_query(query.as_deref());
        let requested_size = max_page_size(&headers).map(|n| n.clamp(1, MAX_TOP));
        let (state, entries, offset, page_size) = if let Some(token) = option(&params, "deltatoken")
        {
            let state = world
                .delta_tokens
                .get(token)
                .filter(|s| !s.expired && s.email == caller.email)
                .cloned()
                .ok_or_else(sync_state_not_found)?;
            let mailbox = world.mailbox(&caller.email);
            if state.seq < mailbox.removed_floor {
                return Err(sync_state_not_found());
            }
            let entries = changes(mailbox, &state);
            let next = DeltaState {
                seq: world.seq,
                issued_at: Utc::now(),
                ..state
            };
            (
                next,
                Arc::new(entries),
                0,
                requested_size.unwrap_or(DEFAULT_TOP),
            )
        } else if let Some(token) = option(&params, "skiptoken") {
            let page = world
                .delta_pages
                .get(token)
                .filter(|p| !p.state.expired && p.state.email == caller.email)
                .cloned()
                .ok_or_else(sync_state_not_found)?;
            (
                page.state,
                page.entries,
                page.offset,
                requested_size.unwrap_or(page.page_size),
            )
        } else {
            let mailbox = world.mailbox(&caller.email);
            let folder_id = folder_id(mailbox, &folder)?;
            let mut cutoff = None;
            for clause in filter(&params)? {
                match clause {
                    Clause::Received(op @ (Comparison::Ge | Comparison::Gt), at) => {
                        cutoff = Some((op, at));
                    }
                    _ => {
                        return Err(bad_request(
                            "ErrorInvalidUrlQueryFilter",
                            "Delta of messages supports only $filter=receivedDateTime ge|gt {time}.",
                        ));
                    }
                }
            }
            let state = DeltaState {
                email: caller.email.clone(),
                folder_id,
                seq: 0,
                cutoff,
                select: select(&params),
                issued_at: Utc::now(),
                expired: false,
            };
            let mut current: Vec<&Message> = mailbox
                .messages
                .iter()
                .filter(|m| m.folder_id == state.folder_id && within_cutoff(&state, m))
                .collect();
            current.sort_by_key(|m| (m.received, m.order));
            let entries: Vec<Entry> = current
                .into_iter()
                .map(|m| Entry::Message(m.id.clone()))
                .collect();
            let state = DeltaState {
                seq: world.seq,
                ..state
            };
            (
                state,
                Arc::new(entries),
                0,
                requested_size.unwrap_or(DEFAULT_TOP),
            )
        };
        let mailbox = world.mailbox(&caller.email);
        let end = offset.saturating_add(page_size).min(entries.len());
        let value: Vec<Value> = entries
            .get(offset..end)
            .unwrap_or_default()
            .iter()
            .map(|entry| match entry {
                Entry::Message(id) => {
                    match mailbox.get(id).filter(|m| m.folder_id == state.folder_id) {
                        Some(message) => message.render(state.select.as_deref(), &Expand::None),
                        None => removed(id),
                    }
                }
                Entry::Removed(id) => removed(id),
            })
            .collect();
        let base = link_base(&headers, uri.path());
        let mut answer = json!({
            "@odata.context": format!("{GRAPH}/$metadata#Collection(message)"),
            "value": value,
        });
        let token = random_token(64);
        if end < entries.len() {
            make_room(&mut world.delta_pages, |p| p.state.issued_at);
            world.delta_pages.insert(
                token.clone(),
                DeltaPage {
                    state,
                    entries,
                    offset: end,
                    page_size,
                },
            );
            answer["@odata.nextLink"] = json!(format!("{base}?$skiptoken={token}"));
        } else {
            make_room(&mut world.delta_tokens, |s| s.issued_at);
            world.delta_tokens.insert(token.clone(), state);
            answer["@odata.deltaLink"] = json!(format!("{base}?$deltatoken={token}"));
        }
        let mut response = Json(answer).into_response();
        if let Ok(applied) = HeaderValue::from_str(&format!("odata.maxpagesize={page_size}")) {
            response.headers_mut().insert("preference-applied", applied);
        }
        Ok(response)
    })
}

fn removed(id: &str) -> Value {
    json!({"@odata.type": "#microsoft.graph.message", "id": id, "@removed": {"reason": "deleted"}})
}

/// `2026-01-01T00:00:00Z`.
pub(super) fn iso(time: &DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Secs, true)
}
