//! The built-in UI: its router and templates, and the sign-in pages
//! (first-run owner setup, sign-in, sign-out); each other area has its own
//! module. Server-rendered (minijinja, auto-escaped), no scripts.
//!
//! Forms shown before sign-in carry a CSRF token that must equal the
//! `mw_csrf` cookie (double submit); forms shown after carry the session's.

use std::sync::OnceLock;
use std::time::Duration;

use axum::Form;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use domain::EmailAddress;
use minijinja::{Environment, context};
use serde::Deserialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::app::AppState;
use crate::auth::accounts::AccountError;
use crate::auth::cookies::{self, FORM_CSRF, SESSION, SESSION_DAYS};
use crate::auth::passwords::{self, BUSY_RETRY_AFTER, MIN_PASSWORD_CHARS, PasswordError};
use crate::auth::throttle::{ClientAddress, Refused, RefusedBecause, retry_after_seconds};
use crate::auth::{MaybeAuthUser, secrets};
use crate::http::{ApiError, ErrorCode, Problem};
use session::{Posted, SessionForm};

mod autodraft;
mod charts;
pub mod connect_confirm;
mod demo;
mod flash;
mod home;
mod integrations;
pub mod runbook;
mod session;
mod settings;
mod webhooks;
mod workflow_form;
mod workflows;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(home::home))
        .routes(routes!(signin_page, signin))
        .routes(routes!(setup_page, setup))
        .routes(routes!(signout))
        .routes(routes!(integrations::integrations_page))
        .routes(routes!(integrations::connect))
        .routes(routes!(integrations::connect_imap))
        .routes(routes!(connect_confirm::confirm))
        .routes(routes!(integrations::disconnect))
        .routes(routes!(autodraft::autodraft_page))
        .routes(routes!(autodraft::switch))
        .routes(routes!(autodraft::test))
        .routes(routes!(autodraft::preferences))
        .routes(routes!(autodraft::cleanup_switch))
        .routes(routes!(autodraft::style))
        .routes(routes!(demo::demo_signin))
        .routes(routes!(demo::sandbox_inbox, demo::deliver))
        .routes(routes!(workflows::workflows_page, workflows::create))
        .routes(routes!(workflows::workflow, workflows::replace))
        .routes(routes!(workflows::delete))
        .routes(routes!(workflows::run))
        .routes(routes!(workflows::run_page))
        .routes(routes!(workflows::rerun))
        .routes(routes!(settings::settings_page))
        .routes(routes!(settings::create_api_key))
        .routes(routes!(settings::revoke_api_key))
        .routes(routes!(webhooks::create))
        .routes(routes!(webhooks::endpoint_page))
        .routes(routes!(webhooks::redeliver))
        .routes(routes!(webhooks::rotate_secret))
        .routes(routes!(webhooks::switch))
        .routes(routes!(webhooks::delete))
        .routes(routes!(runbook::runbook_page))
}

fn templates() -> &'static Environment<'static> {
    static TEMPLATES: OnceLock<Environment<'static>> = OnceLock::new();
    TEMPLATES.get_or_init(|| {
        let mut environment = Environment::new();
        for (name, source) in [
            ("layout.html", include_str!("templates/layout.html")),
            ("signin.html", include_str!("templates/signin.html")),
            ("setup.html", include_str!("templates/setup.html")),
            ("home.html", include_str!("templates/home.html")),
            (
                "integrations.html",
                include_str!("templates/integrations.html"),
            ),
            ("autodraft.html", include_str!("templates/autodraft.html")),
            (
                "sandbox_inbox.html",
                include_str!("templates/sandbox_inbox.html"),
            ),
            (
                "workflow_form.html",
                include_str!("templates/workflow_form.html"),
            ),
            ("workflows.html", include_str!("templates/workflows.html")),
            ("workflow.html", include_str!("templates/workflow.html")),
            ("run.html", include_str!("templates/run.html")),
            ("settings.html", include_str!("templates/settings.html")),
            ("runbook.html", include_str!("templates/runbook.html")),
            ("error.html", include_str!("templates/error.html")),
            ("webhook.html", include_str!("templates/webhook.html")),
            (
                "connect_confirm.html",
                include_str!("templates/connect_confirm.html"),
            ),
        ] {
            environment
                .add_template(name, source)
                .expect("templates are valid");
        }
        environment.add_filter("when", when);
        environment
    })
}

/// An RFC 3339 time as people read it, with the day and the zone
/// ("Sun 6 Dec 2026, 01:45 UTC"); the page's script then shows it in the
/// viewer's own zone. Anything else is shown as given.
fn when(value: String) -> String {
    chrono::DateTime::parse_from_rfc3339(&value)
        .map(|at| {
            at.with_timezone(&chrono::Utc)
                .format("%a %-d %b %Y, %H:%M UTC")
                .to_string()
        })
        .unwrap_or(value)
}

fn render(status: StatusCode, name: &str, values: minijinja::Value) -> Result<Response, ApiError> {
    let page = templates()
        .get_template(name)
        .and_then(|template| template.render(values))
        .map_err(|error| ApiError::Internal(anyhow::anyhow!("rendering {name}: {error}")))?;
    Ok((status, Html(page)).into_response())
}

/// The page a browser gets for an error answer (see
/// `http::browser_errors`): a heading for its status, the problem's own
/// sentence, the request id of a server error, and a way back.
pub fn error_page(
    status: StatusCode,
    title: &str,
    detail: &str,
    code: &str,
    request_id: Option<&str>,
) -> String {
    let heading = match status.as_u16() {
        404 => "Page not found",
        405 => "This address is for a form",
        401 => "Please sign in",
        403 => "Not allowed",
        413 => "Too large",
        429 => "Too many attempts",
        500..=599 => "Something went wrong",
        _ => title,
    };
    let detail = match status.as_u16() {
        405 => "This address only takes a form's submission; open the page the form is on.",
        _ => detail,
    };
    templates()
        .get_template("error.html")
        .and_then(|template| {
            template.render(context! {
                heading,
                detail,
                code,
                request_id,
                status => status.as_u16(),
            })
        })
        .unwrap_or_else(|_| format!("{} {heading}", status.as_u16()))
}

fn see_other(location: &str) -> Response {
    Redirect::to(location).into_response()
}

/// A page with a pre-sign-in form: a fresh CSRF token in a cookie and the form.
fn with_form_csrf(
    state: &AppState,
    build: impl FnOnce(&str) -> Result<Response, ApiError>,
) -> Result<Response, ApiError> {
    let token = secrets::random_token(24);
    let mut response = build(&token)?;
    let cookie = cookies::set(
        FORM_CSRF,
        &token,
        60 * 60,
        "Strict",
        state.config.is_https(),
    );
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    Ok(response)
}

fn form_csrf_matches(headers: &HeaderMap, sent: &str) -> bool {
    cookies::get(headers, FORM_CSRF)
        .is_some_and(|cookie| secrets::constant_time_eq(cookie.as_bytes(), sent.as_bytes()))
}

const STALE_FORM: &str = "This form expired. It has been reloaded: please submit it again.";
const BUSY: &str = "The server is busy checking other passwords. Try again in a few seconds.";
const ALREADY_SET_UP: &str =
    "This Mailwright is already set up. Sign in, or ask its owner to create an account for you.";

/// Whether the caller asked for JSON (an API client) rather than a page.
fn wants_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|accept| accept.contains("json") && !accept.contains("text/html"))
}

/// "Slow down": 429 when a limit refused the attempt, 503 when every
/// password thread stayed busy. A page for browsers, a `rate_limited`
/// problem for JSON clients, and `Retry-After` either way.
fn slow_down(
    headers: &HeaderMap,
    status: StatusCode,
    retry_after: Duration,
    detail: &str,
    page: impl FnOnce(&str) -> Result<Response, ApiError>,
) -> Result<Response, ApiError> {
    let seconds = retry_after_seconds(retry_after);
    let mut response = if wants_json(headers) {
        let title = if status == StatusCode::TOO_MANY_REQUESTS {
            "Too many attempts"
        } else {
            "Busy"
        };
        Problem::new(status, ErrorCode::RateLimited, title, detail)
            .with("retry_after", serde_json::json!(seconds))
            .into_response()
    } else {
        page(detail)?
    };
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    Ok(response)
}

fn refused(
    headers: &HeaderMap,
    refused: Refused,
    page: impl FnOnce(&str) -> Result<Response, ApiError>,
) -> Result<Response, ApiError> {
    let reason = match refused.reason {
        RefusedBecause::Account => "account",
        RefusedBecause::Address => "address",
    };
    metrics::counter!("mailwright_signin_refused_total", "reason" => reason).increment(1);
    slow_down(
        headers,
        StatusCode::TOO_MANY_REQUESTS,
        refused.retry_after,
        &refused.message(),
        page,
    )
}

fn busy(
    headers: &HeaderMap,
    page: impl FnOnce(&str) -> Result<Response, ApiError>,
) -> Result<Response, ApiError> {
    metrics::counter!("mailwright_signin_refused_total", "reason" => "busy").increment(1);
    slow_down(
        headers,
        StatusCode::SERVICE_UNAVAILABLE,
        BUSY_RETRY_AFTER,
        BUSY,
        page,
    )
}

/// A setup posted once someone exists: nothing is created or joined.
fn already_set_up(state: &AppState, headers: &HeaderMap) -> Result<Response, ApiError> {
    if wants_json(headers) {
        return Err(ApiError::Conflict(ALREADY_SET_UP.into()));
    }
    with_form_csrf(state, |csrf| {
        render(
            StatusCode::CONFLICT,
            "signin.html",
            context! { csrf, email => "", error => ALREADY_SET_UP },
        )
    })
}

/// Start a session for `user` in `workspace` and go home.
pub(super) async fn signed_in(
    state: &AppState,
    user: domain::UserId,
    workspace: domain::WorkspaceId,
) -> Result<Response, ApiError> {
    let token = state
        .accounts
        .start_session(user, workspace, SESSION_DAYS)
        .await?;
    let mut response = see_other("/");
    let secure = state.config.is_https();
    let headers = response.headers_mut();
    for cookie in [
        cookies::set(SESSION, &token, SESSION_DAYS * 24 * 60 * 60, "Lax", secure),
        cookies::clear(FORM_CSRF, secure),
    ] {
        if let Ok(value) = HeaderValue::from_str(&cookie) {
            headers.append(header::SET_COOKIE, value);
        }
    }
    Ok(response)
}

#[utoipa::path(get, path = "/signin", tag = "ui", responses((status = 200, content_type = "text/html"), (status = 303)))]
async fn signin_page(
    State(state): State<AppState>,
    MaybeAuthUser(session): MaybeAuthUser,
) -> Result<Response, ApiError> {
    if session.is_some() {
        return Ok(see_other("/"));
    }
    if !state.accounts.has_users().await? {
        return Ok(see_other("/setup"));
    }
    with_form_csrf(&state, |csrf| {
        render(
            StatusCode::OK,
            "signin.html",
            context! { csrf, email => "" },
        )
    })
}

#[derive(Deserialize)]
struct SignInForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    csrf: String,
}

/// Sign in with email and password. Wrong passwords are limited per account
/// and per client address (429 with `Retry-After`), and password checks
/// per process (503 with `Retry-After` when too many wait).
#[utoipa::path(post, path = "/signin", tag = "ui", responses((status = 303, description = "Signed in"), (status = 401, content_type = "text/html"),
    (status = 429, description = "Too many attempts for this account or from this address; see Retry-After", content_type = "text/html"),
    (status = 503, description = "Too many password checks at once; see Retry-After", content_type = "text/html")))]
async fn signin(
    State(state): State<AppState>,
    ClientAddress(address): ClientAddress,
    headers: HeaderMap,
    Form(form): Form<SignInForm>,
) -> Result<Response, ApiError> {
    if !form_csrf_matches(&headers, &form.csrf) {
        return with_form_csrf(&state, |csrf| {
            render(
                StatusCode::FORBIDDEN,
                "signin.html",
                context! { csrf, email => form.email, error => STALE_FORM },
            )
        });
    }
    let page = |status: StatusCode, error: &str| {
        with_form_csrf(&state, |csrf| {
            render(
                status,
                "signin.html",
                context! { csrf, email => &form.email, error },
            )
        })
    };
    let email = EmailAddress::parse(&form.email).ok();
    // Counted per account as typed (normalised when it is an address), so
    // an email without an account is limited exactly like one with.
    let typed = email
        .as_ref()
        .map_or(form.email.as_str(), EmailAddress::as_str);
    let attempt = match state.signin_throttle.begin(address, Some(typed)) {
        Ok(attempt) => attempt,
        Err(refusal) => {
            return refused(&headers, refusal, |message| {
                page(StatusCode::TOO_MANY_REQUESTS, message)
            });
        }
    };
    let account = match &email {
        Some(email) => state.accounts.local_account(email.as_str()).await?,
        None => None,
    };
    let (user, hash) = match account {
        Some((user, hash)) => (Some(user), Some(hash)),
        None => (None, None),
    };
    let valid = match passwords::verify_password(form.password, hash).await {
        Ok(valid) => valid,
        Err(PasswordError::Busy) => {
            return busy(&headers, |message| {
                page(StatusCode::SERVICE_UNAVAILABLE, message)
            });
        }
        Err(other) => return Err(ApiError::Internal(other.into())),
    };
    match user {
        Some(user) if valid => {
            attempt.succeeded();
            let workspace = state.accounts.sign_in_workspace(&user).await?;
            signed_in(&state, user.id, workspace).await
        }
        _ => {
            attempt.failed();
            page(
                StatusCode::UNAUTHORIZED,
                "The email or the password is wrong.",
            )
        }
    }
}

#[utoipa::path(get, path = "/setup", tag = "ui", responses((status = 200, content_type = "text/html"), (status = 303)))]
async fn setup_page(State(state): State<AppState>) -> Result<Response, ApiError> {
    if state.accounts.has_users().await? {
        return Ok(see_other("/signin"));
    }
    with_form_csrf(&state, |csrf| {
        render(
            StatusCode::OK,
            "setup.html",
            context! { csrf, email => "", workspace => "", min_password => MIN_PASSWORD_CHARS, errors => context! {} },
        )
    })
}

#[derive(Deserialize)]
struct SetupForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    workspace: String,
    #[serde(default)]
    csrf: String,
}

/// First run only: create the owner account and sign it in. Exactly one
/// owner results however many setups are posted at once; a setup posted
/// once someone exists answers 409 and creates or joins nothing.
#[utoipa::path(post, path = "/setup", tag = "ui", responses((status = 303, description = "Owner created and signed in"), (status = 422, content_type = "text/html"),
    (status = 409, description = "Already set up: sign in instead", content_type = "text/html"),
    (status = 429, description = "Too many attempts from this address; see Retry-After", content_type = "text/html"),
    (status = 503, description = "Too many password checks at once; see Retry-After", content_type = "text/html")))]
async fn setup(
    State(state): State<AppState>,
    ClientAddress(address): ClientAddress,
    headers: HeaderMap,
    Form(form): Form<SetupForm>,
) -> Result<Response, ApiError> {
    if state.accounts.has_users().await? {
        return already_set_up(&state, &headers);
    }
    let page = |status: StatusCode, errors: minijinja::Value, error: Option<&str>| {
        let (email, workspace) = (form.email.clone(), form.workspace.clone());
        with_form_csrf(&state, move |csrf| {
            render(
                status,
                "setup.html",
                context! { csrf, email, workspace, errors, error, min_password => MIN_PASSWORD_CHARS },
            )
        })
    };
    if !form_csrf_matches(&headers, &form.csrf) {
        return page(StatusCode::FORBIDDEN, context! {}, Some(STALE_FORM));
    }
    let email = EmailAddress::parse(&form.email);
    let password_problem = passwords::password_problem(&form.password);
    let email = match (email, password_problem) {
        (Ok(email), None) => email,
        (email, password) => {
            let errors = context! { email => email.err().map(|error| error.to_string()), password };
            return page(StatusCode::UNPROCESSABLE_ENTITY, errors, None);
        }
    };
    let attempt = match state.signin_throttle.begin(address, None) {
        Ok(attempt) => attempt,
        Err(refusal) => {
            return refused(&headers, refusal, |message| {
                page(StatusCode::TOO_MANY_REQUESTS, context! {}, Some(message))
            });
        }
    };
    let workspace = Some(form.workspace.as_str()).filter(|name| !name.trim().is_empty());
    match state
        .accounts
        .create_first_owner(&email, &form.password, workspace)
        .await
    {
        Ok(Some((user, workspace))) => {
            attempt.succeeded();
            state.contacts.user_changed(user.id).await;
            signed_in(&state, user.id, workspace.id).await
        }
        Ok(None) => {
            attempt.succeeded();
            already_set_up(&state, &headers)
        }
        Err(AccountError::Password(PasswordError::Busy)) => busy(&headers, |message| {
            page(StatusCode::SERVICE_UNAVAILABLE, context! {}, Some(message))
        }),
        Err(other) => Err(ApiError::Internal(other.into())),
    }
}

#[derive(Deserialize)]
pub(super) struct SignOutForm {
    #[serde(default)]
    csrf: String,
}

impl SessionForm for SignOutForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

#[utoipa::path(post, path = "/signout", tag = "ui", responses((status = 303, description = "Signed out")))]
async fn signout(
    State(state): State<AppState>,
    headers: HeaderMap,
    Posted(_signed_in, _): Posted<SignOutForm>,
) -> Result<Response, ApiError> {
    if let Some(token) = cookies::get(&headers, SESSION) {
        state.accounts.end_session(&token).await?;
    }
    let mut response = see_other("/signin");
    if let Ok(value) = HeaderValue::from_str(&cookies::clear(SESSION, state.config.is_https())) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_show_their_day_and_zone() {
        assert_eq!(
            super::when("2026-12-06T01:45:12.046+00:00".into()),
            "Sun 6 Dec 2026, 01:45 UTC"
        );
        assert_eq!(
            super::when("2026-12-06T03:45:00+02:00".into()),
            "Sun 6 Dec 2026, 01:45 UTC"
        );
        assert_eq!(super::when("soon".into()), "soon");
    }

    #[test]
    fn every_template_parses_and_renders() {
        for name in [
            "signin.html",
            "setup.html",
            "home.html",
            "integrations.html",
            "autodraft.html",
            "sandbox_inbox.html",
            "workflows.html",
            "workflow.html",
            "run.html",
            "settings.html",
            "webhook.html",
        ] {
            let page = templates()
                .get_template(name)
                .and_then(|template| {
                    template.render(context! { csrf => "t", email => "<x>", workspace => "w", errors => context! {}, min_password => 10,
                        integrations => vec![context! { id => "i", kind => "Gmail", email => "<x>", status => "missing_scopes",
                            status_words => "s", missing => vec!["<x>"], allowed => vec!["openid"], last_error => "<x>", reconnect_url => "/r" }],
                        signed_in => true, google_configured => true, microsoft_configured => true, id => "i", blocked => "<x>", reconnect_url => "/r",
                        imap => context! { values => context! { email => "<x>", imap_port => "993", reconnecting => true }, open => true,
                            errors => context! { email => "<x>", imap => "<x>", smtp => "<x>", username => "<x>", password => "<x>" } },
                        demo_imap => context! { address => "<x>", password => "<x>", imap_port => 1, smtp_port => 2 },
                        imap_mailbox => "<x>", outlook_mailbox => "<x>", mailbox_name => "Gmail",
                        autodraft => context! { enabled => false, stats => context! { drafts_created => 0, skipped => 0, failed => 0,
                            skipped_by_reason => context! { bulk => 1 }, failures_by_reason => context! {}, last_failure => context! { message => "<x>" },
                            outcomes => context! { pending => 1, sent_unchanged => 0, sent_edited => 0, deleted => 0, cleaned_up => 0 },
                            outcomes_by_type => vec![context! { draft_type => "<x>", generator => "<x>",
                                outcomes => context! { pending => 1, sent_unchanged => 0, sent_edited => 0, deleted => 0, cleaned_up => 0 } }] },
                            events => vec![context! { message => "<x>" }], instructions => "<x>",
                            rules => context! { always => vec!["<x>"], never => Vec::<String>::new() },
                            cleanup => context! { enabled => true, after_days => 14 },
                            llm_usage => context! { model_configured => true, today => 5, daily_limit => 10, over_budget => true },
                            style => context! { greeting => "<x>", sign_off => "<x>", typical_words => 40, formality => "casual", languages => vec!["en"], learned_from => 3 } },
                        drafts => vec![context! { draft_type => "other", label => "<x>", generator => "builtin", ago => "just now", at => "t",
                            outcome => "sent_edited", outcome_words => "<x>" }],
                        test => context! { subject => "<x>", body => "<x>", label => "<x>" },
                        mailbox => "<x>", messages => vec![context! { from => "<x>", subject => "<x>", text => "<x>", at => "t",
                            draft => context! { subject => "<x>", text => "<x>" } }],
                        form => context! { from => "<x>", name => "<x>", enabled => true, trigger => "schedule", cron => "<x>",
                            action => "gmail.send_email", integration_id => "<x>", to => "<x>", subject => "<x>", body => "<x>", json => "<x>" },
                        webhooks => vec![context! { id => "<x>", url => "<x>", description => "<x>", events => 2, enabled => false, disabled_reason => "<x>", failing => true }],
                        webhook_form => context! { url => "<x>", description => "<x>", errors => context! { url => "<x>", form => "<x>" },
                            events => vec![context! { name => "<x>", words => "<x>", checked => true }] },
                        endpoint => context! { id => "<x>", url => "<x>", description => "<x>", events => vec!["<x>"], enabled => false,
                            disabled_reason => "<x>", failing_since => "2026-12-06T01:45:00Z" },
                        secret => "<x>",
                        deliveries => vec![context! { id => "<x>", event_id => "<x>", event_type => "<x>", status => "pending", attempts => 2,
                            response_status => 500, last_error => "<x>", next_attempt_at => "2026-12-06T01:45:00Z", ago => "<x>", at => "<x>" }],
                        field_errors => context! { name => vec!["<x>"], to => vec!["<x>"], json => vec!["<x>"], form => vec!["<x>"] },
                        mailbox_integrations => vec![context! { id => "<x>", label => "<x>" }], simple => true, advanced_open => true,
                        form_action => "/workflows", save_label => "Save", notice => "<x>",
                        workflows => vec![context! { id => "<x>", name => "<x>", trigger => "<x>", enabled => true }],
                        workflow => context! { id => "<x>", name => "<x>", enabled => false, trigger => "<x>", steps => vec!["<x>"],
                            webhook_url => "<x>", next_run_at => "<x>" },
                        runs => vec![context! { id => "<x>", status => "failed", trigger => "<x>", ago => "<x>", at => "<x>", error => "<x>" }],
                        run_input => "<x>", run_error => "<x>", refresh => true, workflow_name => "<x>", workflow_url => "<x>",
                        run => context! { id => "<x>", status => "<x>", trigger => "<x>", ago => "<x>", at => "<x>", finished_ago => "<x>",
                            finished_at => "<x>", input => "<x>", error => context! { code => "<x>", words => "<x>", message => "<x>" },
                            steps => vec![context! { number => 1, action => "<x>", status => "<x>", output => "<x>",
                                error => context! { code => "<x>", words => "<x>", message => "<x>" } }] },
                        api_keys => vec![context! { id => "<x>", name => "<x>", prefix => "<x>", created => "<x>", last_used => "<x>" }],
                        new_key => context! { name => "<x>", key => "<x>" }, key_name => "<x>", key_error => "<x>", log_mailer => true,
                        outbox => vec![context! { kind => "<x>", to => "<x>", subject => "<x>", status => "<x>", ago => "<x>" }] })
                })
                .unwrap_or_else(|error| panic!("{name}: {error}"));
            assert!(page.contains("Mailwright"));
            assert!(!page.contains("<x>"), "values are escaped in {name}");
        }
    }
}
