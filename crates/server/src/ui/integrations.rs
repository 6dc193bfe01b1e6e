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
        "access_denied" => {
            "You cancelled on Google's or Microsoft's screen, so nothing was connected."
        }
        "state_expired" => {
            "You took longer than 10 minutes on the sign-in screen. Start again with Connect."
        }
        "state_invalid" => {
            "That sign-in link was already used or is not valid. Start again with Connect."
        }
        "exchange_failed" => {
            "The provider did not confirm the connection (it may be briefly unavailable). Try again in a moment."
        }
        "missing_refresh_token" => {
            "The provider did not grant offline access. Connect again and approve every request."
        }
        "userinfo_failed" => {
            "The provider did not say which account this is (the email or profile permission was not granted). Connect again and allow it."
        }
        "not_configured" => "That provider is not configured on this server; ask the operator.",
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
    /// A mailbox connected by password to reconnect: its form filled in.
    reconnect: Option<String>,
}

/// The workspace's connections: status in words, what is missing and why,
/// reconnect and disconnect. Where the OAuth callback comes back to.
#[utoipa::path(get, path = "/integrations", tag = "ui", responses((status = 200, content_type = "text/html"), (status = 303)))]
pub(super) async fn integrations_page(
    State(state): State<AppState>,
    SignedIn(session): SignedIn,
    Query(query): Query<IntegrationsQuery>,
) -> Result<Response, ApiError> {
    let notice = match (&query.connected, &query.disconnected) {
        (Some(kind), _) => Some(format!(
            "{} connected.",
            match kind.as_str() {
                "calendar" => "Google Calendar",
                "imap" => "The mailbox",
                _ => "Gmail",
            }
        )),
        (None, Some(_)) => Some("Disconnected. Mailwright no longer uses that account.".to_owned()),
        _ => None,
    };
    // "Reconnect" of a mailbox connected by password: its form, filled in.
    let imap_form = match &query.reconnect {
        Some(id) => match domain::IntegrationId::parse(id) {
            Ok(id) => match state.store.mail_servers(session.workspace, id).await {
                Ok(servers) => {
                    let integration = state.store.integration(session.workspace, id).await?;
                    ImapFormValues::from_servers(&integration.email, &servers)
                }
                Err(store::StoreError::NotFound) => ImapFormValues::default(),
                Err(error) => return Err(error.into()),
            },
            Err(_) => ImapFormValues::default(),
        },
        None => ImapFormValues::default(),
    };
    let problem = query.error.as_deref().map(explain_connect_error);
    page(&state, &session, notice, problem, imap_form, Vec::new()).await
}

/// The IMAP form's values as typed (never the password).
#[derive(Deserialize, Default, serde::Serialize)]
pub(super) struct ImapFormValues {
    #[serde(default)]
    email: String,
    #[serde(default)]
    imap_host: String,
    #[serde(default)]
    imap_port: String,
    #[serde(default)]
    imap_security: String,
    #[serde(default)]
    smtp_host: String,
    #[serde(default)]
    smtp_port: String,
    #[serde(default)]
    smtp_security: String,
    #[serde(default)]
    username: String,
    /// Reconnecting: the form is open and says why.
    #[serde(skip_deserializing)]
    reconnecting: bool,
}

impl ImapFormValues {
    fn from_servers(email: &str, servers: &store::integrations::MailServers) -> ImapFormValues {
        ImapFormValues {
            email: email.to_owned(),
            imap_host: servers.imap.host().to_owned(),
            imap_port: servers.imap.port.to_string(),
            imap_security: servers.imap.security.as_str().to_owned(),
            smtp_host: servers.smtp.host().to_owned(),
            smtp_port: servers.smtp.port.to_string(),
            smtp_security: servers.smtp.security.as_str().to_owned(),
            username: servers.username.clone(),
            reconnecting: true,
        }
    }
}

/// The connections page, with the IMAP form's values and errors.
async fn page(
    state: &AppState,
    session: &crate::auth::SessionUser,
    notice: Option<String>,
    problem: Option<&str>,
    imap_form: ImapFormValues,
    imap_errors: Vec<crate::http::FieldError>,
) -> Result<Response, ApiError> {
    let integrations = state.connections.list(session.workspace).await?;
    let views: Vec<minijinja::Value> = integrations
        .into_iter()
        .map(|integration| {
            let missing: Vec<String> = match integration.status {
                IntegrationStatus::MissingScopes => integration
                    .missing_scopes()
                    .iter()
                    .map(|scope| Capability::describe_scope(scope))
                    .collect(),
                _ => Vec::new(),
            };
            let allowed: Vec<String> = match integration.integration_type {
                IntegrationType::Imap => vec!["read, draft and send mail (by password)".to_owned()],
                _ => integration.granted_scopes.iter().map(Capability::describe_scope).collect(),
            };
            let reconnect_url = (integration.status != IntegrationStatus::Connected)
                .then(|| crate::http::integrations::reconnect_path(integration.id));
            context! {
                id => integration.id.to_string(),
                kind => match integration.integration_type { IntegrationType::Gmail => "Gmail", IntegrationType::Calendar => "Google Calendar", IntegrationType::Imap => "IMAP mailbox", IntegrationType::Outlook => "Outlook" },
                email => integration.email,
                status => integration.status.as_str(),
                status_words => status_words(&integration),
                missing,
                allowed,
                last_error => integration.last_error.map(|error| error.message),
                reconnect_url,
                autodraft_url => integration.integration_type.is_mailbox()
                    .then(|| format!("/autodraft/{}", integration.id)),
            }
        })
        .collect();
    let attention = attention(state, session.workspace).await?;
    let field_error = |prefix: &str| {
        imap_errors
            .iter()
            .filter(|error| error.field == prefix || error.field.starts_with(&format!("{prefix}.")))
            .map(|error| error.message.clone())
            .collect::<Vec<_>>()
            .join("; ")
    };
    let status = if imap_errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    render(
        status,
        "integrations.html",
        context! {
            signed_in => true,
            attention,
            csrf => session.csrf_token.clone(),
            integrations => views,
            notice,
            problem,
            google_configured => state.vault.google().is_some(),
            microsoft_configured => state.vault.microsoft().is_some(),
            // The demo's local mailbox: one click to connect it, or why
            // there is none.
            demo_imap => state.demo.as_ref().map(|demo| match &demo.local_mailbox {
                Ok(mailbox) => context! {
                    address => crate::demo_mailbox::ADDRESS,
                    password => crate::demo_mailbox::PASSWORD,
                    imap_port => mailbox.imap_port,
                    smtp_port => mailbox.smtp_port,
                },
                Err(reason) => context! { problem => reason },
            }),
            imap => context! {
                values => minijinja::Value::from_serialize(&imap_form),
                open => imap_form.reconnecting || !imap_errors.is_empty(),
                errors => context! {
                    email => field_error("email"),
                    imap => field_error("imap"),
                    smtp => field_error("smtp"),
                    username => field_error("username"),
                    password => field_error("password"),
                },
            },
        },
    )
}

#[derive(Deserialize)]
pub(super) struct ImapConnectForm {
    #[serde(default)]
    csrf: String,
    #[serde(flatten)]
    values: ImapFormValues,
    #[serde(default)]
    password: String,
}

impl SessionForm for ImapConnectForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

/// Connect (or reconnect) a mailbox by password from the page; a refusal
/// shows the page again with the error next to its field.
#[utoipa::path(post, path = "/integrations/imap", tag = "ui", responses((status = 303, description = "Connected: to the connections page"), (status = 422, content_type = "text/html")))]
pub(super) async fn connect_imap(
    State(state): State<AppState>,
    Posted(session, form): Posted<ImapConnectForm>,
) -> Result<Response, ApiError> {
    let port = |text: &str| text.trim().parse::<i64>().unwrap_or(0);
    let values = &form.values;
    let fields = crate::http::mail_servers::ConnectFields {
        email: &values.email,
        imap: (
            &values.imap_host,
            port(&values.imap_port),
            &values.imap_security,
        ),
        smtp: (
            &values.smtp_host,
            port(&values.smtp_port),
            &values.smtp_security,
        ),
        username: &values.username,
        password: &form.password,
    };
    let errors = match crate::http::mail_servers::parse(session.user, fields) {
        Ok(connect) => match state
            .vault
            .connect_mail_server(session.workspace, connect)
            .await
        {
            Ok(_) => return Ok(see_other("/integrations?connected=imap")),
            Err(error) => match crate::http::mail_servers::connect_failed(error) {
                ApiError::MailServer { field, detail, .. } => {
                    vec![crate::http::FieldError::new(field, detail)]
                }
                other => return Err(other),
            },
        },
        Err(errors) => errors,
    };
    page(&state, &session, None, None, form.values, errors).await
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

/// Start connecting from the page: straight to Google's or Microsoft's
/// consent screen.
#[utoipa::path(post, path = "/integrations/connect", tag = "ui", responses((status = 303, description = "To Google's or Microsoft's consent screen")))]
pub(super) async fn connect(
    State(state): State<AppState>,
    Posted(session, form): Posted<ConnectForm>,
) -> Result<Response, ApiError> {
    let integration_type = IntegrationType::parse(&form.integration_type)
        .filter(|kind| kind.provider() != "imap")
        .ok_or_else(|| {
            ApiError::Validation(vec![crate::http::FieldError::new(
                "type",
                "must be gmail, calendar or outlook",
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
