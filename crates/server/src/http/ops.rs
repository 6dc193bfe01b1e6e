//! Operations endpoints: liveness on both paths probes use, readiness,
//! metrics, the OpenAPI document.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use store::Readiness;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::problem::ApiError;
use crate::app::AppState;
use crate::telemetry;

/// How long readiness waits for the database before calling it unreachable:
/// a healthy database answers in milliseconds, and probes (Kubernetes: 1 s by
/// default) give up soon anyway.
const READINESS_TIMEOUT: Duration = Duration::from_secs(1);

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(health))
        .routes(routes!(api_health))
        .routes(routes!(ready))
        .routes(routes!(prometheus_metrics))
        .routes(routes!(openapi_json))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// Always `ok` when the process answers.
    #[schema(example = "ok")]
    status: &'static str,
    version: &'static str,
}

fn alive() -> Json<Health> {
    Json(Health {
        status: "ok",
        version: env!("CARGO_PKG_VERSION"),
    })
}

/// Liveness: the process answers. Touches no database.
#[utoipa::path(get, path = "/health", tag = "operations", responses((status = 200, body = Health)))]
async fn health() -> Json<Health> {
    alive()
}

/// Liveness, at the path under `/api/` (probes are configured with either).
#[utoipa::path(get, path = "/api/health", tag = "operations", responses((status = 200, body = Health)))]
async fn api_health() -> Json<Health> {
    alive()
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Ready {
    #[schema(example = "ready")]
    status: &'static str,
}

/// Readiness: the database answers and every migration is applied.
#[utoipa::path(
    get,
    path = "/api/ready",
    tag = "operations",
    responses(
        (status = 200, body = Ready),
        (status = 503, description = "Database unreachable or migrations pending", content_type = "application/problem+json")
    )
)]
async fn ready(State(state): State<AppState>) -> Result<Json<Ready>, ApiError> {
    let failing = state.supervisor.failing();
    if !failing.is_empty() {
        return Err(ApiError::Unavailable {
            detail: format!(
                "Background work keeps failing here ({} restarted repeatedly in the last minute); the server log says why.",
                failing.join(", ")
            ),
            cause: None,
        });
    }
    match tokio::time::timeout(READINESS_TIMEOUT, state.store.readiness()).await {
        Ok(Ok(Readiness::Ready)) => Ok(Json(Ready { status: "ready" })),
        Ok(Ok(Readiness::MigrationsPending(versions))) => Err(ApiError::Unavailable {
            detail: format!(
                "Database migrations are pending (versions {}). Run `mailwright migrate`, or restart `mailwright serve`, which applies them.",
                versions
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            cause: None,
        }),
        Ok(Ok(Readiness::Damaged(problem))) => Err(ApiError::Unavailable {
            detail: format!(
                "The SQLite database file is damaged ({problem}); stop Mailwright and restore it from a backup."
            ),
            cause: None,
        }),
        Ok(Err(error)) => Err(ApiError::Unavailable {
            detail: "The database is unreachable.".into(),
            cause: Some(error.into()),
        }),
        Err(_) => Err(ApiError::Unavailable {
            detail: "The database did not answer in time.".into(),
            cause: None,
        }),
    }
}

/// Prometheus metrics, text exposition format.
#[utoipa::path(get, path = "/metrics", tag = "operations", responses((status = 200, content_type = "text/plain", body = String)))]
async fn prometheus_metrics(State(state): State<AppState>) -> Response {
    // Counted at scrape time from the database, so every replica reports
    // the same, current numbers.
    match state.connections.counts_by_status().await {
        Ok(counts) => {
            for (status, count) in counts {
                metrics::gauge!(telemetry::INTEGRATIONS, "status" => status.as_str())
                    .set(count as f64);
            }
        }
        Err(error) => tracing::warn!(
            error = format!("{error:#}"),
            "cannot count integrations for /metrics"
        ),
    }
    let mut response = telemetry::metrics().render().into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    response
}

/// This API's OpenAPI 3.1 document.
#[utoipa::path(get, path = "/api/openapi.json", tag = "operations", responses((status = 200, content_type = "application/json", body = Object)))]
async fn openapi_json(State(state): State<AppState>) -> Response {
    let mut response = state.openapi_json.as_str().to_owned().into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}
