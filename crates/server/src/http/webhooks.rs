//! Outbound webhook endpoints: create (the secret shown once), list, read,
//! replace, delete, rotate the secret, and each endpoint's delivery log with
//! "send again".

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use engine::webhooks::{EndpointInput, WebhookDelivery, WebhookEndpoint};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::json::{ApiJson, parse};
use super::problem::ApiError;
use crate::app::AppState;
use crate::auth::AuthUser;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(get_one, replace, delete))
        .routes(routes!(rotate_secret))
        .routes(routes!(deliveries))
        .routes(routes!(redeliver))
}

fn endpoint_id(text: &str) -> Result<Uuid, ApiError> {
    Ok(engine::workflows::parse_id(text)?)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"url": "https://example.com/hooks/mailwright", "events": ["workflow.run_failed"], "description": "Ops alerts"}))]
pub struct EndpointBody {
    /// An `http://` or `https://` URL; private, loopback and link-local
    /// addresses are refused unless the operator allows them.
    #[schema(max_length = 2048)]
    url: String,
    /// Event types: `integration.status_changed`, `autodraft.draft_created`,
    /// `autodraft.message_failed`, `workflow.run_succeeded`,
    /// `workflow.run_failed`, `system_email.delivery_failed`.
    #[schema(min_items = 1)]
    events: Vec<String>,
    #[schema(max_length = 200)]
    description: Option<String>,
    /// Default true; switching it on again after Mailwright switched it off
    /// clears the reason.
    enabled: Option<bool>,
}

impl EndpointBody {
    fn into_input(self) -> EndpointInput {
        EndpointInput {
            url: self.url,
            events: self.events,
            description: self.description,
            enabled: self.enabled,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EndpointView {
    id: String,
    url: String,
    events: Vec<String>,
    description: String,
    enabled: bool,
    /// Why Mailwright switched it off (a day of failed deliveries).
    disabled_reason: Option<String>,
    /// Since when every delivery has failed.
    failing_since: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl From<WebhookEndpoint> for EndpointView {
    fn from(endpoint: WebhookEndpoint) -> Self {
        EndpointView {
            id: endpoint.id.to_string(),
            url: endpoint.url,
            events: endpoint.events,
            description: endpoint.description,
            enabled: endpoint.enabled,
            disabled_reason: endpoint.disabled_reason,
            failing_since: endpoint.failing_since,
            created_at: endpoint.created_at,
            updated_at: endpoint.updated_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedEndpoint {
    #[serde(flatten)]
    endpoint: EndpointView,
    /// The signing secret (`whsec_...`), shown this once.
    secret: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EndpointList {
    endpoints: Vec<EndpointView>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RotatedSecret {
    /// The new signing secret, shown this once; the old one no longer signs.
    secret: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryView {
    id: String,
    /// The `webhook-id` header: the event's id, the same on every attempt.
    event_id: String,
    event_type: String,
    /// `pending` (retried at `next_attempt_at`), `delivered` or `failed`.
    status: String,
    attempts: i32,
    /// The last answer's HTTP status.
    response_status: Option<i32>,
    /// Why the last attempt failed, or the start of the answer's body.
    last_error: Option<String>,
    next_attempt_at: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
    finished_at: Option<DateTime<Utc>>,
}

impl From<WebhookDelivery> for DeliveryView {
    fn from(delivery: WebhookDelivery) -> Self {
        DeliveryView {
            id: delivery.id.to_string(),
            event_id: delivery.event_id,
            event_type: delivery.event_type,
            status: delivery.status,
            attempts: delivery.attempts,
            response_status: delivery.response_status,
            last_error: delivery.last_error,
            next_attempt_at: delivery.next_attempt_at,
            created_at: delivery.created_at,
            finished_at: delivery.finished_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryList {
    deliveries: Vec<DeliveryView>,
}

#[utoipa::path(get, path = "/api/webhook-endpoints", operation_id = "list_webhook_endpoints", tag = "webhooks",
    security(("bearer" = []), ("session" = [])), responses((status = 200, body = EndpointList)))]
async fn list(
    State(state): State<AppState>,
    caller: AuthUser,
) -> Result<Json<EndpointList>, ApiError> {
    let endpoints = state.webhooks.list(caller.workspace).await?;
    Ok(Json(EndpointList {
        endpoints: endpoints.into_iter().map(EndpointView::from).collect(),
    }))
}

/// Create an endpoint; the answer carries its signing secret, once.
#[utoipa::path(post, path = "/api/webhook-endpoints", operation_id = "create_webhook_endpoint", tag = "webhooks",
    security(("bearer" = []), ("session" = [])), request_body = EndpointBody,
    responses((status = 201, body = CreatedEndpoint), (status = 409, content_type = "application/problem+json"),
        (status = 422, content_type = "application/problem+json")))]
async fn create(
    State(state): State<AppState>,
    caller: AuthUser,
    ApiJson(body): ApiJson<EndpointBody>,
) -> Result<(StatusCode, Json<CreatedEndpoint>), ApiError> {
    let (endpoint, secret) = state
        .webhooks
        .create(caller.workspace, &body.into_input())
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedEndpoint {
            endpoint: endpoint.into(),
            secret,
        }),
    ))
}

#[utoipa::path(get, path = "/api/webhook-endpoints/{id}", operation_id = "get_webhook_endpoint", tag = "webhooks",
    security(("bearer" = []), ("session" = [])), params(("id" = String, Path)),
    responses((status = 200, body = EndpointView), (status = 404, content_type = "application/problem+json")))]
async fn get_one(
    State(state): State<AppState>,
    caller: AuthUser,
    Path(id): Path<String>,
) -> Result<Json<EndpointView>, ApiError> {
    let endpoint = state
        .webhooks
        .get(caller.workspace, endpoint_id(&id)?)
        .await?;
    Ok(Json(endpoint.into()))
}

/// Replace the URL, events, description and (when given) the switch.
#[utoipa::path(put, path = "/api/webhook-endpoints/{id}", operation_id = "replace_webhook_endpoint", tag = "webhooks",
    security(("bearer" = []), ("session" = [])), params(("id" = String, Path)), request_body = EndpointBody,
    responses((status = 200, body = EndpointView), (status = 404, content_type = "application/problem+json"),
        (status = 422, content_type = "application/problem+json")))]
async fn replace(
    State(state): State<AppState>,
    caller: AuthUser,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<EndpointView>, ApiError> {
    // Found first: another workspace's id answers 404 whatever the body.
    let id = endpoint_id(&id)?;
    state.webhooks.get(caller.workspace, id).await?;
    let body: EndpointBody = parse(&body)?;
    let endpoint = state
        .webhooks
        .update(caller.workspace, id, &body.into_input())
        .await?;
    Ok(Json(endpoint.into()))
}

#[utoipa::path(delete, path = "/api/webhook-endpoints/{id}", operation_id = "delete_webhook_endpoint", tag = "webhooks",
    security(("bearer" = []), ("session" = [])), params(("id" = String, Path)),
    responses((status = 204), (status = 404, content_type = "application/problem+json")))]
async fn delete(
    State(state): State<AppState>,
    caller: AuthUser,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    state
        .webhooks
        .delete(caller.workspace, endpoint_id(&id)?)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A new signing secret, shown once; the old one stops signing at once.
#[utoipa::path(post, path = "/api/webhook-endpoints/{id}/rotate-secret", operation_id = "rotate_webhook_secret", tag = "webhooks",
    security(("bearer" = []), ("session" = [])), params(("id" = String, Path)),
    responses((status = 200, body = RotatedSecret), (status = 404, content_type = "application/problem+json")))]
async fn rotate_secret(
    State(state): State<AppState>,
    caller: AuthUser,
    Path(id): Path<String>,
) -> Result<Json<RotatedSecret>, ApiError> {
    let secret = state
        .webhooks
        .rotate_secret(caller.workspace, endpoint_id(&id)?)
        .await?;
    Ok(Json(RotatedSecret { secret }))
}

/// The endpoint's newest deliveries (at most 50), newest first.
#[utoipa::path(get, path = "/api/webhook-endpoints/{id}/deliveries", operation_id = "list_webhook_deliveries", tag = "webhooks",
    security(("bearer" = []), ("session" = [])), params(("id" = String, Path)),
    responses((status = 200, body = DeliveryList), (status = 404, content_type = "application/problem+json")))]
async fn deliveries(
    State(state): State<AppState>,
    caller: AuthUser,
    Path(id): Path<String>,
) -> Result<Json<DeliveryList>, ApiError> {
    let deliveries = state
        .webhooks
        .deliveries(caller.workspace, endpoint_id(&id)?)
        .await?;
    Ok(Json(DeliveryList {
        deliveries: deliveries.into_iter().map(DeliveryView::from).collect(),
    }))
}

/// Send a delivery again ("send again"), whatever became of it.
#[utoipa::path(post, path = "/api/webhook-endpoints/{id}/deliveries/{delivery_id}/redeliver", operation_id = "redeliver_webhook", tag = "webhooks",
    security(("bearer" = []), ("session" = [])), params(("id" = String, Path), ("delivery_id" = String, Path)),
    responses((status = 202), (status = 404, content_type = "application/problem+json")))]
async fn redeliver(
    State(state): State<AppState>,
    caller: AuthUser,
    Path((id, delivery_id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    state
        .webhooks
        .redeliver(
            caller.workspace,
            endpoint_id(&id)?,
            endpoint_id(&delivery_id)?,
        )
        .await?;
    Ok(StatusCode::ACCEPTED)
}
