//! The settings page: the workspace's API keys (create, shown once; revoke)
//! through the same functions as `/api/api-keys`, and, while system email is
//! only logged, its outbox.

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use minijinja::context;
use secrecy::ExposeSecret;
use serde::Deserialize;

use super::autodraft::ago;
use super::flash::Flash;
use super::session::{Posted, SessionForm, SignedIn, attention};
use super::{render, see_other};
use crate::app::AppState;
use crate::auth::{SessionUser, cookies};
use crate::config::MailConfig;
use crate::http::ApiError;
use engine::error::ServiceError;

/// System emails shown in the outbox.
const OUTBOX_SIZE: i64 = 20;

/// What the page shows besides the lists.
#[derive(Default)]
struct Extra {
    notice: Option<&'static str>,
    /// A refused webhook form: its values and errors.
    webhook_form: Option<minijinja::Value>,
    /// The key just created: `(name, secret)`, shown this once.
    new_key: Option<(String, String)>,
    /// A refused name and why.
    refused: Option<(String, String)>,
}

async fn page(
    state: &AppState,
    session: &SessionUser,
    status: StatusCode,
    extra: Extra,
) -> Result<Response, ApiError> {
    let now = chrono::Utc::now();
    let api_keys: Vec<minijinja::Value> = state
        .accounts
        .api_keys(session.workspace)
        .await?
        .into_iter()
        .map(|key| {
            context! {
                id => key.id.to_string(),
                name => key.name,
                prefix => key.prefix,
                created => ago(key.created_at, now),
                last_used => key.last_used_at.map_or_else(|| "never".to_owned(), |at| ago(at, now)),
            }
        })
        .collect();
    // Only the log-only mailer keeps mail here instead of delivering it.
    let log_mailer = matches!(state.config.mail, MailConfig::Log);
    let outbox: Vec<minijinja::Value> = if log_mailer {
        state
            .notifier
            .outbox(session.workspace, OUTBOX_SIZE)
            .await?
            .into_iter()
            .map(|email| {
                context! {
                    kind => email.kind.replace('_', " "),
                    to => email.to_address.unwrap_or_else(|| "no address".into()),
                    subject => email.subject,
                    status => email.status,
                    ago => ago(email.created_at, now),
                }
            })
            .collect()
    } else {
        Vec::new()
    };
    let webhooks: Vec<minijinja::Value> = state
        .webhooks
        .list(session.workspace)
        .await?
        .into_iter()
        .map(|endpoint| {
            context! {
                id => endpoint.id.to_string(),
                url => endpoint.url,
                description => endpoint.description,
                events => endpoint.events.len(),
                enabled => endpoint.enabled,
                disabled_reason => endpoint.disabled_reason,
                failing => endpoint.failing_since.is_some(),
            }
        })
        .collect();
    let webhook_form = extra.webhook_form.unwrap_or_else(|| {
        context! { url => "", description => "", events => super::webhooks::event_choices(None), errors => context! {} }
    });
    let (key_name, key_error) = extra.refused.unzip();
    let attention = attention(state, session.workspace).await?;
    render(
        status,
        "settings.html",
        context! {
            signed_in => true,
            attention,
            csrf => session.csrf_token.clone(),
            notice => extra.notice,
            api_keys,
            new_key => extra.new_key.map(|(name, key)| context! { name, key }),
            key_name,
            key_error,
            log_mailer,
            outbox,
            webhooks,
            webhook_form,
            allows_private => state.webhooks.allows_private_networks(),
        },
    )
}

#[derive(Deserialize)]
pub(super) struct SettingsQuery {
    notice: Option<String>,
}

/// API keys and, with the log-only mailer, the system email outbox.
#[utoipa::path(get, path = "/settings", tag = "ui",
    responses((status = 200, content_type = "text/html"), (status = 303)))]
pub(super) async fn settings_page(
    State(state): State<AppState>,
    SignedIn(session): SignedIn,
    Query(query): Query<SettingsQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let notice = match query.notice.as_deref() {
        Some("revoked") => Some("The key is revoked: it no longer works."),
        Some("webhook_deleted") => Some("The webhook endpoint is deleted: it gets no more events."),
        _ => None,
    };
    let flash = new_key_flash(&session);
    let new_key = flash
        .open(&state, &headers)
        .and_then(|plain| String::from_utf8(plain).ok())
        .and_then(|plain| {
            plain
                .split_once('\n')
                .map(|(name, secret)| (name.to_owned(), secret.to_owned()))
        });
    let shows_key = new_key.is_some();
    let extra = Extra {
        notice,
        new_key,
        ..Extra::default()
    };
    let mut response = page(&state, &session, StatusCode::OK, extra).await?;
    if shows_key {
        flash.consumed(&state, &mut response);
    }
    Ok(response)
}

/// The settings page with a refused webhook endpoint form.
pub(super) async fn page_with_webhook_form(
    state: &AppState,
    session: &SessionUser,
    status: StatusCode,
    form: minijinja::Value,
) -> Result<Response, ApiError> {
    let extra = Extra {
        webhook_form: Some(form),
        ..Extra::default()
    };
    page(state, session, status, extra).await
}

/// The key just made travels only to this user's own page.
fn new_key_flash(session: &SessionUser) -> Flash<'_> {
    Flash {
        cookie: cookies::NEW_API_KEY,
        session,
        purpose: "new_api_key",
    }
}

#[derive(Deserialize)]
pub(super) struct NewKeyForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
}

impl SessionForm for NewKeyForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

/// Create an API key acting as the signed-in user, and go back to the
/// settings page, which shows it once.
#[utoipa::path(post, path = "/settings/api-keys", tag = "ui",
    responses((status = 303, description = "To the settings page, which shows the new key once"), (status = 422, content_type = "text/html")))]
pub(super) async fn create_api_key(
    State(state): State<AppState>,
    Posted(session, form): Posted<NewKeyForm>,
) -> Result<Response, ApiError> {
    match state
        .accounts
        .create_key(session.workspace, session.user, &form.name)
        .await
    {
        Ok((key, secret)) => {
            // Redirect-after-post, so a reload makes no second key: the new
            // key travels to the page in a short-lived cookie, encrypted for
            // this user, read once.
            let mut response = see_other("/settings?created=1");
            new_key_flash(&session).attach(
                &state,
                &mut response,
                format!("{}\n{}", key.name, secret.expose_secret()).as_bytes(),
            );
            Ok(response)
        }
        Err(ServiceError::Invalid(problems)) => {
            let why = problems
                .into_iter()
                .map(|problem| problem.message)
                .collect::<Vec<_>>()
                .join("; ");
            let extra = Extra {
                refused: Some((form.name, why)),
                ..Extra::default()
            };
            page(&state, &session, StatusCode::UNPROCESSABLE_ENTITY, extra).await
        }
        Err(other) => Err(other.into()),
    }
}

#[derive(Deserialize)]
pub(super) struct RevokeForm {
    #[serde(default)]
    csrf: String,
}

impl SessionForm for RevokeForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

/// Revoke an API key of the workspace; it stops working at once.
#[utoipa::path(post, path = "/settings/api-keys/{id}/revoke", tag = "ui", params(("id" = String, Path)),
    responses((status = 303, description = "Back to the settings"), (status = 404)))]
pub(super) async fn revoke_api_key(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Posted(session, _): Posted<RevokeForm>,
) -> Result<Response, ApiError> {
    state
        .accounts
        .revoke_api_key(session.workspace, &id)
        .await?;
    Ok(see_other("/settings?notice=revoked"))
}
