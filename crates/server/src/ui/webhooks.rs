//! Webhook endpoints in Settings: create (the secret shown once, after a
//! redirect), and each endpoint's page with its delivery log, "send again",
//! switch, secret rotation and delete. The same service as
//! `/api/webhook-endpoints`.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use domain::webhooks::EventType;
use engine::error::ServiceError;
use engine::webhooks::EndpointInput;
use minijinja::context;
use serde::Deserialize;
use uuid::Uuid;

use super::autodraft::ago;
use super::flash::Flash;
use super::session::{Posted, SessionForm, SignedIn, SwitchForm, attention};
use super::{SignOutForm, render, see_other};
use crate::app::AppState;
use crate::auth::{SessionUser, cookies};
use crate::http::ApiError;

/// The event types with their meaning, for the form's checkboxes.
/// `None`: all checked (a new form).
pub(super) fn event_choices(checked: Option<&[String]>) -> Vec<minijinja::Value> {
    EventType::ALL
        .into_iter()
        .map(|event| {
            context! {
                name => event.as_str(),
                words => event.describe(),
                checked => checked.is_none_or(|checked| checked.iter().any(|name| name == event.as_str())),
            }
        })
        .collect()
}

/// The new secret travels only to this user's page of this endpoint.
fn secret_flash<'a>(session: &'a SessionUser, purpose: &'a str) -> Flash<'a> {
    Flash {
        cookie: cookies::WEBHOOK_SECRET,
        session,
        purpose,
    }
}

fn secret_purpose(id: Uuid) -> String {
    format!("webhook_secret:{id}")
}

fn endpoint_id(text: &str) -> Result<Uuid, ApiError> {
    Ok(engine::workflows::parse_id(text)?)
}

#[derive(Deserialize)]
pub(super) struct EndpointForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    url: String,
    #[serde(default)]
    description: String,
    /// One checkbox per event type, named `event.<type>`.
    #[serde(flatten)]
    checkboxes: std::collections::HashMap<String, String>,
}

impl EndpointForm {
    fn events(&self) -> Vec<String> {
        let mut events: Vec<String> = self
            .checkboxes
            .keys()
            .filter_map(|name| name.strip_prefix("event."))
            .map(str::to_owned)
            .collect();
        events.sort();
        events
    }
}

impl SessionForm for EndpointForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

/// Create an endpoint from the settings page; its page shows the secret once.
#[utoipa::path(post, path = "/settings/webhooks", tag = "ui",
    responses((status = 303, description = "To the endpoint's page, which shows its secret once"), (status = 422, content_type = "text/html")))]
pub(super) async fn create(
    State(state): State<AppState>,
    Posted(session, form): Posted<EndpointForm>,
) -> Result<Response, ApiError> {
    let events = form.events();
    let input = EndpointInput {
        url: form.url.clone(),
        events: events.clone(),
        description: Some(form.description.clone()),
        enabled: None,
    };
    match state.webhooks.create(session.workspace, &input).await {
        Ok((endpoint, secret)) => {
            let mut response = see_other(&format!("/settings/webhooks/{}", endpoint.id));
            let purpose = secret_purpose(endpoint.id);
            secret_flash(&session, &purpose).attach(&state, &mut response, secret.as_bytes());
            Ok(response)
        }
        Err(ServiceError::Invalid(problems)) => {
            let errors: std::collections::BTreeMap<String, String> = problems
                .into_iter()
                .map(|problem| {
                    let field = if problem.field.starts_with("events") { "events".to_owned() } else { problem.field };
                    (field, problem.message)
                })
                .collect();
            super::settings::page_with_webhook_form(
                &state,
                &session,
                StatusCode::UNPROCESSABLE_ENTITY,
                context! { url => form.url, description => form.description, events => event_choices(Some(&events)), errors },
            )
            .await
        }
        Err(ServiceError::Conflict(message)) => {
            super::settings::page_with_webhook_form(
                &state,
                &session,
                StatusCode::CONFLICT,
                context! { url => form.url, description => form.description, events => event_choices(Some(&events)),
                    errors => context! { form => message } },
            )
            .await
        }
        Err(other) => Err(other.into()),
    }
}

/// One endpoint: its settings, the secret right after it was made, and its
/// delivery log.
#[utoipa::path(get, path = "/settings/webhooks/{id}", tag = "ui", params(("id" = String, Path)),
    responses((status = 200, content_type = "text/html"), (status = 404)))]
pub(super) async fn endpoint_page(
    State(state): State<AppState>,
    SignedIn(session): SignedIn,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let id = endpoint_id(&id)?;
    let endpoint = state.webhooks.get(session.workspace, id).await?;
    let purpose = secret_purpose(id);
    let flash = secret_flash(&session, &purpose);
    let secret = flash
        .open(&state, &headers)
        .and_then(|plain| String::from_utf8(plain).ok());
    let now = chrono::Utc::now();
    let deliveries: Vec<minijinja::Value> = state
        .webhooks
        .deliveries(session.workspace, id)
        .await?
        .into_iter()
        .map(|delivery| {
            context! {
                id => delivery.id.to_string(),
                event_id => delivery.event_id,
                event_type => delivery.event_type,
                status => delivery.status,
                attempts => delivery.attempts,
                response_status => delivery.response_status,
                last_error => delivery.last_error,
                next_attempt_at => delivery.next_attempt_at.map(|at| at.to_rfc3339()),
                ago => ago(delivery.created_at, now),
                at => delivery.created_at.to_rfc3339(),
            }
        })
        .collect();
    let attention = attention(&state, session.workspace).await?;
    let shows_secret = secret.is_some();
    let mut response = render(
        StatusCode::OK,
        "webhook.html",
        context! {
            signed_in => true,
            attention,
            csrf => session.csrf_token.clone(),
            endpoint => context! {
                id => endpoint.id.to_string(),
                url => endpoint.url,
                description => endpoint.description,
                events => endpoint.events,
                enabled => endpoint.enabled,
                disabled_reason => endpoint.disabled_reason,
                failing_since => endpoint.failing_since.map(|at| at.to_rfc3339()),
            },
            secret,
            deliveries,
        },
    )?;
    if shows_secret {
        flash.consumed(&state, &mut response);
    }
    Ok(response)
}

/// Send one delivery again.
#[utoipa::path(post, path = "/settings/webhooks/{id}/deliveries/{delivery_id}/redeliver", tag = "ui",
    params(("id" = String, Path), ("delivery_id" = String, Path)),
    responses((status = 303, description = "Back to the endpoint's page"), (status = 404)))]
pub(super) async fn redeliver(
    State(state): State<AppState>,
    Path((id, delivery)): Path<(String, String)>,
    Posted(session, _): Posted<SignOutForm>,
) -> Result<Response, ApiError> {
    let id = endpoint_id(&id)?;
    state
        .webhooks
        .redeliver(session.workspace, id, endpoint_id(&delivery)?)
        .await?;
    Ok(see_other(&format!("/settings/webhooks/{id}")))
}

/// A new secret, shown once on the endpoint's page.
#[utoipa::path(post, path = "/settings/webhooks/{id}/rotate-secret", tag = "ui", params(("id" = String, Path)),
    responses((status = 303, description = "To the endpoint's page, which shows the new secret once"), (status = 404)))]
pub(super) async fn rotate_secret(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Posted(session, _): Posted<SignOutForm>,
) -> Result<Response, ApiError> {
    let id = endpoint_id(&id)?;
    let secret = state.webhooks.rotate_secret(session.workspace, id).await?;
    let mut response = see_other(&format!("/settings/webhooks/{id}"));
    let purpose = secret_purpose(id);
    secret_flash(&session, &purpose).attach(&state, &mut response, secret.as_bytes());
    Ok(response)
}

/// Switch the endpoint on (clearing why it was switched off) or off.
#[utoipa::path(post, path = "/settings/webhooks/{id}/switch", tag = "ui", params(("id" = String, Path)),
    responses((status = 303, description = "Back to the endpoint's page"), (status = 404)))]
pub(super) async fn switch(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Posted(session, form): Posted<SwitchForm>,
) -> Result<Response, ApiError> {
    let id = endpoint_id(&id)?;
    let endpoint = state.webhooks.get(session.workspace, id).await?;
    let input = EndpointInput {
        url: endpoint.url,
        events: endpoint.events,
        description: Some(endpoint.description),
        enabled: Some(form.is_on()),
    };
    state.webhooks.update(session.workspace, id, &input).await?;
    Ok(see_other(&format!("/settings/webhooks/{id}")))
}

#[utoipa::path(post, path = "/settings/webhooks/{id}/delete", tag = "ui", params(("id" = String, Path)),
    responses((status = 303, description = "Back to the settings"), (status = 404)))]
pub(super) async fn delete(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Posted(session, _): Posted<SignOutForm>,
) -> Result<Response, ApiError> {
    state
        .webhooks
        .delete(session.workspace, endpoint_id(&id)?)
        .await?;
    Ok(see_other("/settings?notice=webhook_deleted"))
}
