//! `GET /api/me` and the API-key endpoints.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::json::ApiJson;
use super::problem::ApiError;
use crate::app::AppState;
use crate::auth::AuthUser;
use crate::auth::accounts::ApiKey;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(me))
        .routes(routes!(list_api_keys, create_api_key))
        .routes(routes!(revoke_api_key))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Me {
    user_id: String,
    workspace_id: String,
    /// Null when the identity provider gave none.
    email: Option<String>,
}

/// Who the credentials belong to, and the workspace requests are scoped to.
#[utoipa::path(
    get,
    path = "/api/me",
    tag = "identity",
    security(("bearer" = []), ("session" = [])),
    responses((status = 200, body = Me), (status = 401, description = "No or bad credentials", content_type = "application/problem+json"))
)]
async fn me(State(state): State<AppState>, caller: AuthUser) -> Result<Json<Me>, ApiError> {
    let (user, _) = state.accounts.member(caller.workspace, caller.user).await?;
    Ok(Json(Me {
        user_id: caller.user.to_string(),
        workspace_id: caller.workspace.to_string(),
        email: user.email,
    }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ApiKeyView {
    id: String,
    name: String,
    /// The key's first characters, to recognise it.
    prefix: String,
    created_at: DateTime<Utc>,
    last_used_at: Option<DateTime<Utc>>,
}

impl From<ApiKey> for ApiKeyView {
    fn from(key: ApiKey) -> Self {
        ApiKeyView {
            id: key.id.to_string(),
            name: key.name,
            prefix: key.prefix,
            created_at: key.created_at,
            last_used_at: key.last_used_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ApiKeyList {
    api_keys: Vec<ApiKeyView>,
}

/// The workspace's active API keys (never their secrets).
#[utoipa::path(
    get,
    path = "/api/api-keys",
    tag = "identity",
    security(("bearer" = []), ("session" = [])),
    responses((status = 200, body = ApiKeyList))
)]
async fn list_api_keys(
    State(state): State<AppState>,
    caller: AuthUser,
) -> Result<Json<ApiKeyList>, ApiError> {
    let keys = state.accounts.api_keys(caller.workspace).await?;
    Ok(Json(ApiKeyList {
        api_keys: keys.into_iter().map(ApiKeyView::from).collect(),
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "deploy script"}))]
pub struct NewApiKey {
    /// What the key is for, 1 to 100 characters (not only spaces, no control characters).
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]*[^\\s\\u0000-\\u001f\\u007f-\\u009f][^\\u0000-\\u001f\\u007f-\\u009f]*$"
    )]
    name: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedApiKey {
    #[serde(flatten)]
    details: ApiKeyView,
    /// The key itself (`mw_...`), shown this once: store it now.
    key: String,
}

/// Create an API key acting as the caller. The secret is in this answer only.
#[utoipa::path(
    post,
    path = "/api/api-keys",
    tag = "identity",
    security(("bearer" = []), ("session" = [])),
    request_body = NewApiKey,
    responses((status = 201, body = CreatedApiKey), (status = 422, description = "Invalid name", content_type = "application/problem+json"))
)]
async fn create_api_key(
    State(state): State<AppState>,
    caller: AuthUser,
    ApiJson(input): ApiJson<NewApiKey>,
) -> Result<(StatusCode, Json<CreatedApiKey>), ApiError> {
    let (key, secret) = state
        .accounts
        .create_key(caller.workspace, caller.user, &input.name)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedApiKey {
            details: key.into(),
            key: secret.expose_secret().to_owned(),
        }),
    ))
}

/// Revoke an API key; it stops working at once.
#[utoipa::path(
    delete,
    path = "/api/api-keys/{id}",
    tag = "identity",
    security(("bearer" = []), ("session" = [])),
    params(("id" = String, Path, description = "API key id")),
    responses((status = 204), (status = 404, description = "No such key in this workspace", content_type = "application/problem+json"))
)]
async fn revoke_api_key(
    State(state): State<AppState>,
    caller: AuthUser,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.accounts.revoke_api_key(caller.workspace, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
