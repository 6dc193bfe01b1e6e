//! The connections page: each connection's status in words, what it lacks,
//! reconnect and disconnect; where Google's redirect comes back to.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use domain::explain::explain;
use domain::return_to::ReturnTo;
use domain::scopes::{Capability, IntegrationStatus, IntegrationType};
use engine::connections::{Integration, StartedBy};
use minijinja::context;
use serde::Deserialize;

use super::session::{Posted, SessionForm, SignedIn, attention};
use super::{SignOutForm, render, see_other};
use crate::app::AppState;
use crate::http::ApiError;

/// What a callback's `?error=` means, for people.
pub(super) fn explain_connect_error(code: &str) -> &'static str {
    match code {
        "access_denied" => "You cancelled on Google's screen, so nothing was connected.",
        "state_expired" => {
            "You took longer than 10 minutes on Google's screen. Start again with Connect."
        }
        "state_invalid" => {
            "That sign-in link was already used or is not valid. Start again with Connect."
        }
        "exchange_failed" => {
            "Google did not confirm the connection (it may be briefly unavailable). Try again in a moment."
        }
        "missing_refresh_token" => {
            "Google did not grant offline access. Connect again and approve every request."
        }
        "userinfo_failed" => {
            "Google did not say which account this is (the email permission was not granted). Connect again and allow it."
        }
        "not_configured" => "Google is not configured on this server; ask the operator.",
        _ => {
            "The connection did not complete. Try again; if it keeps failing, ask the operator to check the logs."
        }
    }
}

/// The connection's status as the list shows it: the label and, for a
/// broken one, what fixes it (the list shows what is missing below it).
fn status_words(integration: &Integration) -> String {
    let explanation = explain(integration.status, Some(&integration.email), &[]);
    if explanation.needs_reconnect() {
        format!("{}: {}", explanation.label, explanation.remedy)
    } else {
        explanation.label.to_owned()
    }
}

#[derive(Deserialize)]
pub(super) struct IntegrationsQuery {
    connected: Option<String>,
    error: Option<String>,
    disconnected: Option<String>,
}

/// The workspace's connections: status in words, what is missing and why,
/// reconnect and disconnect. Where the OAuth callback comes back to.
#[utoipa::path(get, path = "/integrations", tag = "ui", responses((status = 200, content_type = "text/html"), (status = 303)))]
pub(super) async fn integrations_page(
    State(state): State<AppState>,
    SignedIn(session): SignedIn,
    Query(query): Query<IntegrationsQuery>,
) -> Result<Response, ApiError> {
    let integrations = state.connections.list(session.workspace).await?;
    let views: Vec<minijinja::Value> = integrations
        .into_iter()
        .map(|integration| {
            let missing: Vec<String> = match integration.status {
                IntegrationStatus::MissingScopes => integration
                    .granted_scopes
                    .missing_for(integration.integration_type)
                    .iter()
                    .map(|scope| Capability::describe_scope(scope))
                    .collect(),
                _ => Vec::new(),
            };
            let allowed: Vec<String> = integration.granted_scopes.iter().map(Capability::describe_scope).collect();
            let reconnect_url = (integration.status != IntegrationStatus::Connected
                && integration.integration_type.provider() == "google")
                .then(|| crate::http::integrations::reconnect_path(integration.id));
            context! {
                id => integration.id.to_string(),
                kind => match integration.integration_type { IntegrationType::Gmail => "Gmail", IntegrationType::Calendar => "Google Calendar", IntegrationType::Imap => "IMAP mailbox" },
                email => integration.email,
                status => integration.status.as_str(),
                status_words => status_words(&integration),
                missing,
                allowed,
                last_error => integration.last_error.map(|error| error.message),
                reconnect_url,
                autodraft_url => (integration.integration_type == IntegrationType::Gmail)
                    .then(|| format!("/autodraft/{}", integration.id)),
            }
        })
        .collect();
    let notice = match (&query.connected, &query.disconnected) {
        (Some(kind), _) => Some(format!(
            "{} connected.",
            if kind == "calendar" {
                "Google Calendar"
            } else {
                "Gmail"
            }
        )),
        (None, Some(_)) => Some("Disconnected. Mailwright no longer uses that account.".to_owned()),
        _ => None,
    };
    let attention = attention(&state, session.workspace).await?;
    render(
        StatusCode::OK,
        "integrations.html",
        context! {
            signed_in => true,
            attention,
            csrf => session.csrf_token,
            integrations => views,
            notice,
            problem => query.error.as_deref().map(explain_connect_error),
            google_configured => state.vault.google().is_some(),
        },
    )
}

#[derive(Deserialize)]
pub(super) struct ConnectForm {
    #[serde(default, rename = "type")]
    integration_type: String,
    #[serde(default)]
    csrf: String,
    /// The page to come back to (a path of this service; default the
    /// connections page).
    #[serde(default)]
    return_to: Option<String>,
}

impl SessionForm for ConnectForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

/// Start connecting from the page: straight to Google's consent screen.
#[utoipa::path(post, path = "/integrations/connect", tag = "ui", responses((status = 303, description = "To Google's consent screen")))]
pub(super) async fn connect(
    State(state): State<AppState>,
    Posted(session, form): Posted<ConnectForm>,
) -> Result<Response, ApiError> {
    let integration_type = crate::http::integrations::google_type(&form.integration_type)
        .ok_or_else(|| {
            ApiError::Validation(vec![crate::http::FieldError::new(
                "type",
                "must be gmail or calendar",
            )])
        })?;
    let return_to = match form.return_to.as_deref() {
        None | Some("") => ReturnTo::default(),
        Some(text) => ReturnTo::parse(text).map_err(|problem| {
            ApiError::Validation(vec![crate::http::FieldError::new("return_to", problem)])
        })?,
    };
    let url = state
        .connections
        .authorization_url(
            session.workspace,
            session.user,
            integration_type,
            return_to,
            None,
            StartedBy::Session,
        )
        .await?;
    Ok(Redirect::to(url.as_str()).into_response())
}

#[utoipa::path(post, path = "/integrations/{id}/disconnect", tag = "ui", params(("id" = String, Path)),
    responses((status = 303, description = "Back to the connections page"), (status = 404)))]
pub(super) async fn disconnect(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Posted(session, _): Posted<SignOutForm>,
) -> Result<Response, ApiError> {
    let id = domain::IntegrationId::parse(&id).map_err(|_| ApiError::NotFound)?;
    state.connections.disconnect(session.workspace, id).await?;
    Ok(see_other("/integrations?disconnected=1"))
}
