//! Pages that exist only in `mailwright demo`: the sign-in link and
//! the sandbox inbox, where a visitor drops an email into the connected
//! mailbox and watches the draft appear. Elsewhere they answer 404.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use domain::EmailAddress;
use minijinja::context;
use serde::Deserialize;
use std::sync::Arc;

use super::session::{Posted, SessionForm, SignedIn};
use super::{render, signed_in};
use crate::app::AppState;
use crate::demo::{Demo, MAILBOX};
use crate::http::ApiError;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;

fn demo(state: &AppState) -> Result<Arc<Demo>, ApiError> {
    state.demo.clone().ok_or(ApiError::NotFound)
}

/// The sandbox pages exist in demo mode only: elsewhere they are not found,
/// signed in or not. Taken before the session, so it answers first.
pub(super) struct DemoMode(Arc<Demo>);

impl FromRequestParts<AppState> for DemoMode {
    type Rejection = ApiError;

    async fn from_request_parts(_: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        demo(state).map(DemoMode)
    }
}

#[derive(Deserialize)]
pub(super) struct SigninQuery {
    #[serde(default)]
    token: String,
}

/// The link `mailwright demo` prints: signs the demo user in, once.
#[utoipa::path(get, path = "/demo/signin", tag = "demo", params(("token" = String, Query)),
    responses((status = 303, description = "Signed in"), (status = 403), (status = 404, description = "Not in demo mode")))]
pub(super) async fn demo_signin(
    State(state): State<AppState>,
    Query(query): Query<SigninQuery>,
) -> Result<Response, ApiError> {
    let demo = demo(&state)?;
    if !demo.signin_matches(&query.token) {
        return Err(ApiError::Forbidden(
            "This is not the demo's sign-in link: open the one `mailwright demo` printed when it started."
                .into(),
        ));
    }
    signed_in(&state, demo.user, demo.workspace).await
}

#[derive(Deserialize)]
pub(super) struct InboxQuery {
    delivered: Option<String>,
}

async fn inbox_page(
    state: &AppState,
    csrf: &str,
    status: StatusCode,
    notice: Option<&str>,
    errors: minijinja::Value,
    form: minijinja::Value,
) -> Result<Response, ApiError> {
    let demo = demo(state)?;
    let messages = demo.sandbox.messages(MAILBOX).unwrap_or_default();
    let drafts = demo.sandbox.drafts(MAILBOX).unwrap_or_default();
    let mut messages: Vec<minijinja::Value> = messages
        .iter()
        .filter(|m| !m.label_ids.iter().any(|l| l == "DRAFT"))
        .map(|m| {
            let reply = drafts.iter().find(|d| d.message.thread_id == m.thread_id);
            context! {
                from => m.from.clone().unwrap_or_default(),
                subject => m.subject.clone(),
                text => m.text.clone(),
                at => m.internal_date.to_rfc3339(),
                thread_id => m.thread_id.clone(),
                draft => reply.map(|d| context! { subject => d.message.subject.clone(), text => d.message.text.clone() }),
            }
        })
        .collect();
    messages.reverse();
    let autodraft_url = state
        .connections
        .list(demo.workspace)
        .await?
        .into_iter()
        .find(|i| i.email.eq_ignore_ascii_case(MAILBOX))
        .map(|i| format!("/autodraft/{}", i.id));
    render(
        status,
        "sandbox_inbox.html",
        context! {
            signed_in => true,
            csrf,
            mailbox => MAILBOX,
            messages,
            notice,
            errors,
            form,
            autodraft_url,
            imap_mailbox => demo.local_mailbox.is_ok().then_some(crate::demo_mailbox::ADDRESS),
            outlook_mailbox => crate::demo::OUTLOOK_MAILBOX,
        },
    )
}

/// The sandbox mailbox: drop an email into it, see the drafts it got.
#[utoipa::path(get, path = "/sandbox/inbox", tag = "demo",
    responses((status = 200, content_type = "text/html"), (status = 303), (status = 404, description = "Not in demo mode")))]
pub(super) async fn sandbox_inbox(
    State(state): State<AppState>,
    _: DemoMode,
    SignedIn(session): SignedIn,
    Query(query): Query<InboxQuery>,
) -> Result<Response, ApiError> {
    let notice = query.delivered.as_deref().map(|to| match to {
        "imap" => "Delivered to the local IMAP mailbox. With auto-draft on, its reply draft appears in the mailbox's Drafts folder within a moment: see its auto-draft page.",
        "outlook" => "Delivered to the emulated Outlook mailbox. With auto-draft on, its reply draft appears in the mailbox's Drafts within a moment: see its auto-draft page.",
        _ => "Delivered. With auto-draft on, the reply draft appears below within a moment (reload).",
    });
    inbox_page(
        &state,
        &session.csrf_token,
        StatusCode::OK,
        notice,
        context! {},
        context! { from => "Alex Sender <alex@example.com>" },
    )
    .await
}

#[derive(Deserialize)]
pub(super) struct DeliverForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    from: String,
    #[serde(default)]
    subject: String,
    #[serde(default)]
    text: String,
    /// `gmail` (the sandbox mailbox, the default), `outlook` (the emulated
    /// Outlook mailbox) or `imap` (the local one).
    #[serde(default)]
    to: String,
}

impl SessionForm for DeliverForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

/// Deliver the visitor's email to a sandbox mailbox; the sandbox announces
/// it to `/api/push/gmail` (signed, as Gmail and Pub/Sub would) or to
/// `/api/push/microsoft` (as Graph would).
#[utoipa::path(post, path = "/sandbox/inbox", tag = "demo",
    responses((status = 303, description = "Delivered"), (status = 422, content_type = "text/html"), (status = 404, description = "Not in demo mode")))]
pub(super) async fn deliver(
    State(state): State<AppState>,
    DemoMode(demo): DemoMode,
    Posted(session, form): Posted<DeliverForm>,
) -> Result<Response, ApiError> {
    let address = form
        .from
        .rsplit_once('<')
        .map(|(_, rest)| rest.trim_end_matches('>').trim())
        .unwrap_or(form.from.trim());
    let mut errors = Vec::new();
    if EmailAddress::parse(address).is_err() || form.from.contains(['\r', '\n']) {
        errors.push(("from", "must be an address such as Alex <alex@example.com>"));
    }
    if form.subject.trim().is_empty() {
        errors.push(("subject", "is required"));
    } else if form.subject.contains(['\r', '\n']) {
        errors.push(("subject", "must be one line"));
    }
    if form.text.trim().is_empty() {
        errors.push(("text", "is required"));
    }
    if !errors.is_empty() {
        let errors: std::collections::BTreeMap<&str, &str> = errors.into_iter().collect();
        return inbox_page(
            &state,
            &session.csrf_token,
            StatusCode::UNPROCESSABLE_ENTITY,
            None,
            minijinja::Value::from_serialize(&errors),
            context! { from => form.from, subject => form.subject, text => form.text, to => form.to },
        )
        .await;
    }
    if form.to == "imap" {
        let mailbox = demo.local_mailbox.as_ref().map_err(|reason| {
            ApiError::Conflict(format!("The demo has no local IMAP mailbox: {reason}"))
        })?;
        let raw = format!(
            "From: {}\r\nTo: {}\r\nSubject: {}\r\nMessage-ID: <{}@sandbox.demo.mailwright.test>\r\nDate: {}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{}\r\n",
            form.from.trim(),
            crate::demo_mailbox::ADDRESS,
            form.subject.trim(),
            uuid::Uuid::new_v4().simple(),
            chrono::Utc::now().to_rfc2822(),
            form.text.replace("\r\n", "\n").replace('\n', "\r\n"),
        );
        mailbox
            .deliver(address, raw.as_bytes())
            .await
            .map_err(|error| ApiError::Internal(anyhow::anyhow!("local IMAP delivery: {error}")))?;
        return Ok(Redirect::to("/sandbox/inbox?delivered=imap").into_response());
    }
    if form.to == "outlook" {
        demo.sandbox
            .microsoft()
            .deliver(sandbox::MicrosoftInbound::new(
                form.from.trim(),
                crate::demo::OUTLOOK_MAILBOX,
                form.subject.trim(),
                &form.text.replace("\r\n", "\n"),
            ))
            .map_err(|error| ApiError::Internal(anyhow::anyhow!("sandbox delivery: {error}")))?;
        // The sandbox's Graph notification tells Mailwright, as Microsoft's
        // would.
        return Ok(Redirect::to("/sandbox/inbox?delivered=outlook").into_response());
    }
    demo.sandbox
        .deliver(&sandbox::InboundMessage::new(
            form.from.trim(),
            MAILBOX,
            form.subject.trim(),
            form.text.replace("\r\n", "\n"),
        ))
        .map_err(|error| ApiError::Internal(anyhow::anyhow!("sandbox delivery: {error:?}")))?;
    // The sandbox's Pub/Sub push tells Mailwright, as Gmail's would.
    Ok(Redirect::to("/sandbox/inbox?delivered=1").into_response())
}
