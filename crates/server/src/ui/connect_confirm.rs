//! The page on which a person confirms a connection that an API client
//! started, when their browser is not signed in as that client's user
//! (decision 0013): it names the workspace and the address, and nothing is
//! stored until they confirm.

use axum::Form;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use engine::connections::PendingConnection;
use minijinja::context;
use serde::Deserialize;

use super::render;
use crate::app::AppState;
use crate::http::ApiError;
use crate::http::integrations::{callback_failure_redirect, connected_redirect};

/// The confirmation page for `pending`.
pub(crate) fn confirmation_page(pending: &PendingConnection) -> Result<Response, ApiError> {
    render(
        StatusCode::OK,
        "connect_confirm.html",
        context! {
            signed_in => false,
            workspace => pending.workspace_name.clone(),
            email => pending.email.clone(),
            requested_by => pending.requested_by.clone(),
            kind => match pending.integration_type {
                domain::scopes::IntegrationType::Calendar => "calendar",
                _ => "mailbox",
            },
            confirmation => pending.confirmation.clone(),
        },
    )
}

#[derive(Debug, Deserialize)]
pub struct ConfirmForm {
    confirmation: String,
    decision: String,
}

/// The person's answer: connect (then on to where the connection was
/// started from, as a direct callback would) or cancel (`?error=access_denied`).
#[utoipa::path(post, path = "/connect/confirm", tag = "ui",
    responses((status = 302, description = "To the connection's return path with `connected=` or `error=`")))]
pub(super) async fn confirm(
    State(state): State<AppState>,
    Form(form): Form<ConfirmForm>,
) -> Response {
    let accept = form.decision == "confirm";
    match state.connections.confirm(&form.confirmation, accept).await {
        Ok((integration, return_to)) => connected_redirect(&integration, &return_to),
        Err(failure) => callback_failure_redirect(&failure),
    }
}

/// What a browser does after Google's consent screen: open the callback and,
/// if Mailwright asks for a confirmation, confirm. The final redirect's
/// `Location`. For tests, benchmarks and tools that connect accounts
/// without a browser; `http` must not follow redirects.
pub async fn finish_consent_as_browser(
    http: &reqwest::Client,
    callback_url: &str,
) -> anyhow::Result<String> {
    let answer = http.get(callback_url).send().await?;
    let location = |answer: &reqwest::Response| -> anyhow::Result<String> {
        Ok(answer
            .headers()
            .get(reqwest::header::LOCATION)
            .ok_or_else(|| anyhow::anyhow!("no redirect (HTTP {})", answer.status()))?
            .to_str()?
            .to_owned())
    };
    if answer.status().is_redirection() {
        return location(&answer);
    }
    let page = answer.text().await?;
    let confirmation = page
        .split(r#"name="confirmation" value=""#)
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .ok_or_else(|| anyhow::anyhow!("neither a redirect nor the confirmation page"))?;
    let base = url::Url::parse(callback_url)?;
    let form = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("confirmation", confirmation)
        .append_pair("decision", "confirm")
        .finish();
    let confirmed = http
        .post(base.join("/connect/confirm")?)
        .header(
            reqwest::header::CONTENT_TYPE,
            "application/x-www-form-urlencoded",
        )
        .body(form)
        .send()
        .await?;
    location(&confirmed)
}
