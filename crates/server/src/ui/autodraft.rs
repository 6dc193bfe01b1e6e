//! The auto-draft page of one Gmail connection: the switch (disabled, with
//! the reason and a reconnect button, when the connection cannot draft),
//! numbers, last success and failure, the test action, recent drafts. It
//! calls the same services as `/api/integrations/{id}/auto-draft`.

use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use chrono::{DateTime, Utc};
use domain::IntegrationId;
use domain::scopes::{Capability, IntegrationStatus, IntegrationType};
use minijinja::context;
use serde::Deserialize;

use super::{posted_by, render, see_other};
use crate::app::AppState;
use crate::auth::MaybeAuthUser;
use crate::http::ApiError;
use crate::http::autodraft::{autodraft_error, view};
use crate::http::integrations::reconnect_path;

/// "just now", "3 minutes ago", "2 hours ago", "5 days ago".
pub(super) fn ago(at: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let seconds = (now - at).num_seconds().max(0);
    let (amount, unit) = match seconds {
        0..=44 => return "just now".into(),
        45..=5_399 => ((seconds + 30) / 60, "minute"),
        5_400..=129_599 => ((seconds + 1_800) / 3_600, "hour"),
        _ => ((seconds + 43_200) / 86_400, "day"),
    };
    let amount = amount.max(1);
    format!("{amount} {unit}{} ago", if amount == 1 { "" } else { "s" })
}

#[derive(Deserialize)]
pub(super) struct PageQuery {
    notice: Option<String>,
}

fn integration_id(text: &str) -> Result<IntegrationId, ApiError> {
    IntegrationId::parse(text).map_err(|_| ApiError::NotFound)
}

/// Why the switch cannot be turned on, if it cannot.
fn blocked_reason(integration: &store::integrations::Integration) -> Option<String> {
    let missing: Vec<&str> = [Capability::ReadMail, Capability::Draft]
        .into_iter()
        .filter(|capability| !integration.granted_scopes.allows(*capability))
        .map(Capability::describe)
        .collect();
    if !missing.is_empty() {
        return Some(format!(
            "Auto-draft needs permission to {}. Reconnect and allow it.",
            missing.join(" and ")
        ));
    }
    match integration.status {
        IntegrationStatus::Connected => None,
        IntegrationStatus::MissingScopes => {
            Some("This connection lacks permissions; reconnect and allow them.".into())
        }
        IntegrationStatus::NeedsReauth => {
            Some("Google no longer accepts this connection; reconnect it.".into())
        }
        IntegrationStatus::Disconnected => {
            Some("This connection is disconnected; reconnect it.".into())
        }
    }
}

async fn page(
    state: &AppState,
    session: &crate::auth::SessionUser,
    id: IntegrationId,
    notice: Option<String>,
    problem: Option<String>,
    test: Option<minijinja::Value>,
) -> Result<Response, ApiError> {
    let integration = state.store.integration(session.workspace, id).await?;
    if integration.integration_type != IntegrationType::Gmail {
        return Err(ApiError::NotFound);
    }
    let autodraft = view(state, session.workspace, id).await?;
    let now = store::now();
    let drafts = state
        .store
        .autodraft_drafts(session.workspace, id, 20)
        .await?;
    let drafts: Vec<minijinja::Value> = drafts
        .into_iter()
        .map(|draft| {
            context! {
                draft_type => draft.draft_type,
                label => draft.draft_type_label,
                thread_id => draft.thread_id,
                generator => draft.generator,
                ago => ago(draft.created_at, now),
                at => draft.created_at.to_rfc3339(),
            }
        })
        .collect();
    let json = serde_json::to_value(&autodraft)
        .map_err(|error| ApiError::Internal(anyhow::anyhow!("auto-draft view: {error}")))?;
    let last_success = json["stats"]["last_success_at"]
        .as_str()
        .and_then(|at| DateTime::parse_from_rfc3339(at).ok())
        .map(|at| ago(at.with_timezone(&Utc), now));
    let last_failure_ago = json["stats"]["last_failure"]["at"]
        .as_str()
        .and_then(|at| DateTime::parse_from_rfc3339(at).ok())
        .map(|at| ago(at.with_timezone(&Utc), now));
    let next_retry_in = json["stats"]["next_retry"]["at"]
        .as_str()
        .and_then(|at| DateTime::parse_from_rfc3339(at).ok())
        .map(|at| {
            let seconds = (at.with_timezone(&Utc) - now).num_seconds().max(0);
            if seconds < 120 {
                format!("in {seconds} s")
            } else {
                format!("in {} min", seconds / 60)
            }
        });
    render(
        StatusCode::OK,
        "autodraft.html",
        context! {
            signed_in => true,
            csrf => session.csrf_token.clone(),
            id => id.to_string(),
            email => integration.email.clone(),
            blocked => blocked_reason(&integration),
            reconnect_url => reconnect_path(id),
            autodraft => minijinja::Value::from_serialize(&json),
            last_success,
            last_failure_ago,
            next_retry_in,
            drafts,
            notice,
            problem,
            test,
        },
    )
}

/// The auto-draft page of a Gmail connection.
#[utoipa::path(get, path = "/autodraft/{id}", tag = "ui", params(("id" = String, Path)),
    responses((status = 200, content_type = "text/html"), (status = 303), (status = 404)))]
pub(super) async fn autodraft_page(
    State(state): State<AppState>,
    MaybeAuthUser(session): MaybeAuthUser,
    Path(id): Path<String>,
    Query(query): Query<PageQuery>,
) -> Result<Response, ApiError> {
    let Some(session) = session else {
        return Ok(see_other("/signin"));
    };
    let id = integration_id(&id)?;
    let notice = match query.notice.as_deref() {
        Some("on") => Some("Auto-draft is on: new mail gets a reply draft.".to_owned()),
        Some("off") => Some("Auto-draft is off.".to_owned()),
        _ => None,
    };
    page(&state, &session, id, notice, None, None).await
}

#[derive(Deserialize)]
pub(super) struct SwitchForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    enabled: String,
}

/// Turn auto-draft on or off from the page.
#[utoipa::path(post, path = "/autodraft/{id}/switch", tag = "ui", params(("id" = String, Path)),
    responses((status = 303, description = "Back to the page"), (status = 200, content_type = "text/html", description = "The page with the reason it could not be switched on")))]
pub(super) async fn switch(
    State(state): State<AppState>,
    MaybeAuthUser(session): MaybeAuthUser,
    Path(id): Path<String>,
    Form(form): Form<SwitchForm>,
) -> Result<Response, ApiError> {
    let Some(session) = posted_by(session, &form.csrf)? else {
        return Ok(see_other("/signin"));
    };
    let id = integration_id(&id)?;
    let on = form.enabled == "on";
    let result = if on {
        state.autodraft.enable(session.workspace, id).await
    } else {
        state.autodraft.disable(session.workspace, id).await
    };
    match result.map_err(|error| autodraft_error(id, error)) {
        Ok(_) => Ok(Redirect::to(&format!(
            "/autodraft/{id}?notice={}",
            if on { "on" } else { "off" }
        ))
        .into_response()),
        Err(ApiError::NotFound) => Err(ApiError::NotFound),
        Err(ApiError::Internal(error)) => Err(ApiError::Internal(error)),
        Err(error) => {
            let problem = error_words(&error);
            page(&state, &session, id, None, Some(problem), None).await
        }
    }
}

/// What a refused action means, for the page.
fn error_words(error: &ApiError) -> String {
    match error {
        ApiError::MissingScopes { detail, .. }
        | ApiError::NeedsReauth { detail, .. }
        | ApiError::ProviderUnavailable(detail)
        | ApiError::ProviderError(detail)
        | ApiError::Conflict(detail) => detail.clone(),
        _ => "That did not work; try again.".into(),
    }
}

#[derive(Deserialize)]
pub(super) struct TestForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    create_draft: Option<String>,
}

/// Run the pipeline on the newest inbox message and show the result.
#[utoipa::path(post, path = "/autodraft/{id}/test", tag = "ui", params(("id" = String, Path)),
    responses((status = 200, content_type = "text/html")))]
pub(super) async fn test(
    State(state): State<AppState>,
    MaybeAuthUser(session): MaybeAuthUser,
    Path(id): Path<String>,
    Form(form): Form<TestForm>,
) -> Result<Response, ApiError> {
    let Some(session) = posted_by(session, &form.csrf)? else {
        return Ok(see_other("/signin"));
    };
    let id = integration_id(&id)?;
    let create = form.create_draft.as_deref() == Some("on");
    match state
        .autodraft
        .test(session.workspace, id, None, create)
        .await
        .map_err(|error| autodraft_error(id, error))
    {
        Ok(outcome) => {
            let test = context! {
                subject => outcome.subject,
                body => outcome.body,
                draft_type => outcome.draft_type,
                label => outcome.draft_type_label,
                skipped => outcome.skipped.map(|reason| reason.describe()),
                draft_id => outcome.draft_id,
            };
            page(&state, &session, id, None, None, Some(test)).await
        }
        Err(ApiError::NotFound) => Err(ApiError::NotFound),
        Err(ApiError::Internal(error)) => Err(ApiError::Internal(error)),
        Err(error) => {
            let problem = error_words(&error);
            page(&state, &session, id, None, Some(problem), None).await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::ago;
    use chrono::{Duration, Utc};

    #[test]
    fn times_read_like_people_say_them() {
        let now = Utc::now();
        assert_eq!(ago(now - Duration::seconds(10), now), "just now");
        assert_eq!(ago(now - Duration::minutes(1), now), "1 minute ago");
        assert_eq!(ago(now - Duration::minutes(3), now), "3 minutes ago");
        assert_eq!(ago(now - Duration::hours(2), now), "2 hours ago");
        assert_eq!(ago(now - Duration::days(5), now), "5 days ago");
        assert_eq!(ago(now + Duration::minutes(5), now), "just now");
    }
}
