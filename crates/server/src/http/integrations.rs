//! Connecting Google accounts and reading their state: the connect URL, the
//! OAuth callback, the integration list and status, reconnect, disconnect.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use domain::IntegrationId;
use domain::return_to::ReturnTo;
use domain::scopes::{IntegrationStatus, IntegrationType, TokenSource};
use engine::connections::{CallbackFailure, CallbackParams, Completed, ConnectError, Reconnect};
use engine::connections::{Integration, StartedBy};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::json::ApiJson;
use super::problem::{ApiError, FieldError};
use crate::app::AppState;
use crate::auth::{AuthMethod, AuthUser, MaybeAuthUser};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(connect))
        .routes(routes!(callback))
        .routes(routes!(connect_microsoft))
        .routes(routes!(microsoft_callback))
        .routes(routes!(list))
        .routes(routes!(status))
        .routes(routes!(get_one, disconnect))
        .routes(routes!(reconnect))
        .routes(routes!(connect_with_clerk))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LastErrorView {
    pub code: String,
    pub message: String,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct IntegrationView {
    id: String,
    provider: String,
    #[serde(rename = "type")]
    #[schema(value_type = String, example = "gmail")]
    integration_type: IntegrationType,
    #[schema(value_type = String, example = "connected")]
    status: IntegrationStatus,
    email: String,
    display_name: Option<String>,
    /// As Google writes them: full URLs, and `openid`.
    granted_scopes: Vec<String>,
    /// What the integration needs and lacks (empty unless `missing_scopes`).
    missing_scopes: Vec<String>,
    connected_at: DateTime<Utc>,
    last_used_at: Option<DateTime<Utc>>,
    last_error: Option<LastErrorView>,
    /// A path that takes a signed-in person straight to Google's consent
    /// screen asking for what is missing (for a connection Clerk holds: asks
    /// Clerk again, or sends the person to re-authorise in Clerk); null
    /// when nothing is.
    reconnect_url: Option<String>,
    /// Who holds the grant: `google` or `microsoft` (Mailwright's own OAuth
    /// client there), `clerk` (Clerk, where the person signed in with
    /// Google); `password` for a mailbox connected by password (IMAP).
    #[schema(example = "google")]
    token_source: &'static str,
}

pub fn reconnect_path(id: IntegrationId) -> String {
    format!("/api/integrations/{id}/reconnect")
}

/// The reconnect path that comes back to `page` (a path of this service).
pub fn reconnect_path_back_to(id: IntegrationId, page: &str) -> String {
    let query = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("return_to", page)
        .finish();
    format!("{}?{query}", reconnect_path(id))
}

impl From<Integration> for IntegrationView {
    fn from(integration: Integration) -> Self {
        let missing_scopes = match integration.status {
            IntegrationStatus::MissingScopes => integration
                .granted_scopes
                .missing_for(integration.integration_type),
            _ => Vec::new(),
        };
        let reconnect_url = (integration.status != IntegrationStatus::Connected)
            .then(|| reconnect_path(integration.id));
        let token_source = match (&integration.token_source, integration.integration_type) {
            (TokenSource::Clerk { .. }, _) => "clerk",
            (TokenSource::Mailwright, IntegrationType::Imap) => "password",
            (TokenSource::Mailwright, IntegrationType::Outlook) => "microsoft",
            (TokenSource::Mailwright, IntegrationType::Gmail | IntegrationType::Calendar) => {
                "google"
            }
        };
        IntegrationView {
            id: integration.id.to_string(),
            provider: integration.provider,
            integration_type: integration.integration_type,
            status: integration.status,
            email: integration.email,
            display_name: integration.display_name,
            granted_scopes: integration
                .granted_scopes
                .iter()
                .map(str::to_owned)
                .collect(),
            missing_scopes,
            connected_at: integration.connected_at,
            last_used_at: integration.last_used_at,
            last_error: integration.last_error.map(|error| LastErrorView {
                code: error.code,
                message: error.message,
                at: error.at,
            }),
            reconnect_url,
            token_source,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"type": "gmail", "return_to": "/integrations"}))]
pub struct ConnectRequest {
    /// `gmail` or `calendar`.
    #[serde(rename = "type")]
    #[schema(pattern = "^(gmail|calendar)$")]
    integration_type: String,
    /// Where to come back to: a path on this service (default `/integrations`).
    #[serde(default)]
    #[schema(
        max_length = 128,
        pattern = "^/([^/\\\\\\s\\u0000-\\u001f\\u007f-\\u009f][^\\\\\\s\\u0000-\\u001f\\u007f-\\u009f]*)?$"
    )]
    return_to: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ConnectAnswer {
    /// Open this in the person's browser: Google's consent screen.
    authorization_url: String,
}

/// A type connected through Google (`gmail`, `calendar`).
fn google_type(text: &str) -> Option<IntegrationType> {
    IntegrationType::parse(text).filter(|kind| kind.provider() == "google")
}

pub(super) fn not_configured(provider: &str) -> ApiError {
    ApiError::ProviderUnavailable(match provider {
        "microsoft" => "Microsoft is not configured on this server: the operator must set MAILWRIGHT_MICROSOFT_CLIENT_ID and MAILWRIGHT_MICROSOFT_CLIENT_SECRET.".into(),
        _ => "Google is not configured on this server: the operator must set MAILWRIGHT_GOOGLE_CLIENT_ID and MAILWRIGHT_GOOGLE_CLIENT_SECRET.".into(),
    })
}

impl From<ConnectError> for ApiError {
    fn from(error: ConnectError) -> Self {
        match error {
            ConnectError::NotConfigured { provider } => not_configured(provider),
            ConnectError::ByPassword => ApiError::Conflict(
                "This mailbox is connected by password, not through Google: to reconnect it, connect it again with its current password (POST /api/integrations/imap).".into(),
            ),
            ConnectError::Store(error) => error.into(),
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"type": "outlook", "return_to": "/integrations"}))]
pub struct MicrosoftConnectRequest {
    /// `outlook`.
    #[serde(rename = "type")]
    #[schema(pattern = "^outlook$")]
    integration_type: String,
    /// Where to come back to: a path on this service (default `/integrations`).
    #[serde(default)]
    #[schema(
        max_length = 128,
        pattern = "^/([^/\\\\\\s\\u0000-\\u001f\\u007f-\\u009f][^\\\\\\s\\u0000-\\u001f\\u007f-\\u009f]*)?$"
    )]
    return_to: Option<String>,
}

/// Start connecting a Microsoft 365 or Outlook.com mailbox: the URL of
/// Microsoft's sign-in and consent screen.
#[utoipa::path(
    post,
    path = "/api/integrations/microsoft/connect",
    operation_id = "connect_microsoft",
    tag = "integrations",
    security(("bearer" = []), ("session" = [])),
    request_body = MicrosoftConnectRequest,
    responses(
        (status = 200, body = ConnectAnswer),
        (status = 422, description = "Bad type or return_to", content_type = "application/problem+json"),
        (status = 503, description = "Microsoft is not configured on this server", content_type = "application/problem+json"),
    )
)]
async fn connect_microsoft(
    State(state): State<AppState>,
    caller: AuthUser,
    ApiJson(request): ApiJson<MicrosoftConnectRequest>,
) -> Result<Json<ConnectAnswer>, ApiError> {
    let (integration_type, return_to) = parse_connect_request(
        &request.integration_type,
        request.return_to.as_deref(),
        |kind| kind == IntegrationType::Outlook,
        "must be outlook",
    )?;
    start_connection(&state, &caller, integration_type, return_to).await
}

/// The consent URL of a new connection started by `caller`.
async fn start_connection(
    state: &AppState,
    caller: &AuthUser,
    integration_type: IntegrationType,
    return_to: ReturnTo,
) -> Result<Json<ConnectAnswer>, ApiError> {
    let url = state
        .connections
        .authorization_url(
            caller.workspace,
            caller.user,
            integration_type,
            return_to,
            None,
            started_by(caller),
        )
        .await?;
    Ok(Json(ConnectAnswer {
        authorization_url: url.into(),
    }))
}

/// A connect request's type (one `allowed`) and `return_to`, or a problem
/// naming each bad field.
fn parse_connect_request(
    integration_type: &str,
    return_to: Option<&str>,
    allowed: impl Fn(IntegrationType) -> bool,
    type_problem: &'static str,
) -> Result<(IntegrationType, ReturnTo), ApiError> {
    let mut errors = Vec::new();
    let integration_type = IntegrationType::parse(integration_type).filter(|kind| allowed(*kind));
    if integration_type.is_none() {
        errors.push(FieldError::new("type", type_problem));
    }
    let return_to = match return_to {
        None => Ok(ReturnTo::default()),
        Some(text) => ReturnTo::parse(text),
    };
    if let Err(problem) = &return_to {
        errors.push(FieldError::new("return_to", *problem));
    }
    match (integration_type, return_to, errors.is_empty()) {
        (Some(integration_type), Ok(return_to), true) => Ok((integration_type, return_to)),
        _ => Err(ApiError::Validation(errors)),
    }
}

/// Start connecting a Google account: the URL of Google's consent screen.
#[utoipa::path(
    post,
    path = "/api/integrations/google/connect",
    operation_id = "connect_google",
    tag = "integrations",
    security(("bearer" = []), ("session" = [])),
    request_body = ConnectRequest,
    responses((status = 200, body = ConnectAnswer), (status = 422, description = "Bad type or return_to", content_type = "application/problem+json"))
)]
async fn connect(
    State(state): State<AppState>,
    caller: AuthUser,
    ApiJson(request): ApiJson<ConnectRequest>,
) -> Result<Json<ConnectAnswer>, ApiError> {
    let (integration_type, return_to) = parse_connect_request(
        &request.integration_type,
        request.return_to.as_deref(),
        |kind| kind.provider() == "google",
        "must be gmail or calendar",
    )?;
    start_connection(&state, &caller, integration_type, return_to).await
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

fn redirect(location: &str) -> Response {
    let mut response = StatusCode::FOUND.into_response();
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
}

/// Google sends the browser here after the consent screen. A 302 to the
/// `return_to` path, with `connected=<type>&integration_id=<id>` or
/// `error=<code>`; or, for a connection an API client started that comes
/// back to a browser not signed in as its starter, the page on which the
/// person confirms first. The `state` authenticates the request.
#[utoipa::path(
    get,
    path = "/api/auth/oauth/google/callback",
    operation_id = "google_oauth_callback",
    tag = "integrations",
    params(CallbackQuery),
    responses(
        (status = 302, description = "Back to the return_to path with the outcome"),
        (status = 200, content_type = "text/html", body = String, description = "A connection started by an API client, finished in a browser not signed in as its starter: the page on which the person confirms (decision 0013)")
    )
)]
async fn callback(
    State(state): State<AppState>,
    session: MaybeAuthUser,
    Query(query): Query<CallbackQuery>,
) -> Response {
    finish_connection(&state, "google", session, query).await
}

/// Microsoft sends the browser here after sign-in and consent; answered as
/// Google's callback is.
#[utoipa::path(
    get,
    path = "/api/auth/oauth/microsoft/callback",
    operation_id = "microsoft_oauth_callback",
    tag = "integrations",
    params(CallbackQuery),
    responses(
        (status = 302, description = "Back to the return_to path with the outcome"),
        (status = 200, content_type = "text/html", body = String, description = "A connection started by an API client, finished in a browser not signed in as its starter: the page on which the person confirms (decision 0013)")
    )
)]
async fn microsoft_callback(
    State(state): State<AppState>,
    session: MaybeAuthUser,
    Query(query): Query<CallbackQuery>,
) -> Response {
    finish_connection(&state, "microsoft", session, query).await
}

async fn finish_connection(
    state: &AppState,
    provider: &str,
    MaybeAuthUser(session): MaybeAuthUser,
    query: CallbackQuery,
) -> Response {
    let params = CallbackParams {
        code: query.code,
        state: query.state,
        error: query.error,
    };
    let signed_in = session.map(|session| (session.user, session.workspace));
    match state
        .connections
        .complete(provider, params, signed_in)
        .await
    {
        Ok(Completed::Connected {
            integration,
            return_to,
        }) => connected_redirect(&integration, &return_to),
        Ok(Completed::NeedsConfirmation(pending)) => {
            crate::ui::connect_confirm::confirmation_page(&pending)
                .unwrap_or_else(IntoResponse::into_response)
        }
        Err(failure) => callback_failure_redirect(&failure),
    }
}

/// A session starts a connection that only that session may finish; an API
/// client one that a person confirms (decision 0013).
fn started_by(caller: &AuthUser) -> StartedBy {
    match caller.method {
        AuthMethod::Session => StartedBy::Session,
        AuthMethod::Jwt { .. } | AuthMethod::ApiKey => StartedBy::Api,
    }
}

/// Back to where the connection was started, saying it is connected.
pub(crate) fn connected_redirect(integration: &Integration, return_to: &ReturnTo) -> Response {
    redirect(&return_to.with_query(&[
        ("connected", integration.integration_type.as_str()),
        ("integration_id", &integration.id.to_string()),
    ]))
}

/// Back to where the connection was started, with the error's code.
pub(crate) fn callback_failure_redirect(failure: &CallbackFailure) -> Response {
    tracing::info!(
        error = failure.error.code(),
        "an OAuth callback did not connect"
    );
    redirect(
        &failure
            .return_to
            .with_query(&[("error", failure.error.code())]),
    )
}

#[derive(Debug, Serialize, ToSchema)]
pub struct IntegrationList {
    integrations: Vec<IntegrationView>,
}

/// The workspace's connected accounts.
#[utoipa::path(
    get,
    path = "/api/integrations",
    operation_id = "list_integrations",
    tag = "integrations",
    security(("bearer" = []), ("session" = [])),
    responses((status = 200, body = IntegrationList))
)]
async fn list(
    State(state): State<AppState>,
    caller: AuthUser,
) -> Result<Json<IntegrationList>, ApiError> {
    let integrations = state.connections.list(caller.workspace).await?;
    Ok(Json(IntegrationList {
        integrations: integrations
            .into_iter()
            .map(IntegrationView::from)
            .collect(),
    }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TypeStatus {
    /// True only when the status is `connected`.
    connected: bool,
    status: String,
    email: Option<String>,
    integration_id: Option<String>,
    missing_scopes: Vec<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct StatusAnswer {
    gmail: TypeStatus,
    calendar: TypeStatus,
}

/// For each type, the caller's most recent integration: is it usable?
#[utoipa::path(
    get,
    path = "/api/integrations/status",
    operation_id = "integration_status",
    tag = "integrations",
    security(("bearer" = []), ("session" = [])),
    responses((status = 200, body = StatusAnswer))
)]
async fn status(
    State(state): State<AppState>,
    caller: AuthUser,
) -> Result<Json<StatusAnswer>, ApiError> {
    let mut statuses = Vec::new();
    for integration_type in [IntegrationType::Gmail, IntegrationType::Calendar] {
        let latest = state
            .connections
            .latest(caller.workspace, caller.user, integration_type)
            .await?;
        statuses.push(match latest {
            Some(integration) => {
                let view = IntegrationView::from(integration);
                TypeStatus {
                    connected: view.status == IntegrationStatus::Connected,
                    status: view.status.as_str().to_owned(),
                    email: Some(view.email),
                    integration_id: Some(view.id),
                    missing_scopes: view.missing_scopes,
                }
            }
            None => TypeStatus {
                connected: false,
                status: IntegrationStatus::Disconnected.as_str().to_owned(),
                email: None,
                integration_id: None,
                missing_scopes: Vec::new(),
            },
        });
    }
    let calendar = statuses.pop().expect("two types");
    let gmail = statuses.pop().expect("two types");
    Ok(Json(StatusAnswer { gmail, calendar }))
}

/// An integration id from a path: malformed ids are just ids that are not there.
fn integration_id(text: &str) -> Result<IntegrationId, ApiError> {
    IntegrationId::parse(text).map_err(|_| ApiError::NotFound)
}

#[utoipa::path(
    get,
    path = "/api/integrations/{id}",
    operation_id = "get_integration",
    tag = "integrations",
    security(("bearer" = []), ("session" = [])),
    params(("id" = String, Path, description = "Integration id")),
    responses((status = 200, body = IntegrationView), (status = 404, content_type = "application/problem+json"))
)]
async fn get_one(
    State(state): State<AppState>,
    caller: AuthUser,
    Path(id): Path<String>,
) -> Result<Json<IntegrationView>, ApiError> {
    let integration = state
        .connections
        .get(caller.workspace, integration_id(&id)?)
        .await?;
    Ok(Json(integration.into()))
}

/// Disconnect: revoke at Google (best effort), forget the tokens.
#[utoipa::path(
    delete,
    path = "/api/integrations/{id}",
    operation_id = "disconnect_integration",
    tag = "integrations",
    security(("bearer" = []), ("session" = [])),
    params(("id" = String, Path, description = "Integration id")),
    responses((status = 204), (status = 404, content_type = "application/problem+json"))
)]
async fn disconnect(
    State(state): State<AppState>,
    caller: AuthUser,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    state
        .connections
        .disconnect(caller.workspace, integration_id(&id)?)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize)]
struct ReconnectQuery {
    return_to: Option<String>,
}

/// Open in a browser: straight to Google's consent screen, asking for what
/// the integration lacks (or everything, to repair a broken connection),
/// then back to `return_to`.
#[utoipa::path(
    get,
    path = "/api/integrations/{id}/reconnect",
    operation_id = "reconnect_integration",
    tag = "integrations",
    security(("bearer" = []), ("session" = [])),
    params(
        ("id" = String, Path, description = "Integration id"),
        ("return_to" = Option<String>, Query, description = "A path on this service to come back to afterwards (default /integrations)"),
    ),
    responses(
        (status = 302, description = "To Google's consent screen"),
        (status = 404, content_type = "application/problem+json"),
        (status = 422, description = "Bad return_to", content_type = "application/problem+json"),
    )
)]
async fn reconnect(
    State(state): State<AppState>,
    caller: AuthUser,
    Path(id): Path<String>,
    Query(query): Query<ReconnectQuery>,
) -> Result<Response, ApiError> {
    let id = integration_id(&id)?;
    let return_to = match query.return_to.as_deref() {
        None => ReturnTo::default(),
        Some(text) => ReturnTo::parse(text)
            .map_err(|problem| ApiError::Validation(vec![FieldError::new("return_to", problem)]))?,
    };
    let repair = state
        .connections
        .reconnect_url(
            caller.workspace,
            caller.user,
            id,
            return_to.clone(),
            started_by(&caller),
        )
        .await?;
    match repair {
        Reconnect::Consent(url) => Ok(redirect(url.as_str())),
        Reconnect::Repaired(integration) => Ok(connected_redirect(&integration, &return_to)),
        Reconnect::WithPassword => Ok(redirect(&format!(
            "/integrations?reconnect={id}#connect-imap"
        ))),
        Reconnect::InClerk => match &state.config.clerk {
            Some(clerk) if clerk.reauthorize_url.is_some() => Ok(redirect(
                clerk.reauthorize_url.as_ref().map(url::Url::as_str).unwrap_or_default(),
            )),
            _ => Err(ApiError::Conflict(
                "Clerk holds no Google access with the permissions Mailwright needs: sign in again with Google through Clerk, allowing Gmail access, then open this link again."
                    .into(),
            )),
        },
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"type": "gmail"}))]
pub struct ClerkConnectRequest {
    /// `gmail` or `calendar`.
    #[serde(rename = "type")]
    #[schema(pattern = "^(gmail|calendar)$")]
    integration_type: String,
}

/// Connect the Google account whose token Clerk holds for the caller (a
/// person signed in through Clerk: the bearer JWT's `sub` is their Clerk
/// user). Connecting again updates the same connection (after the person
/// re-authorised in Clerk, say). Without every scope the connection is made
/// with status `missing_scopes`, as through Google.
#[utoipa::path(
    post,
    path = "/api/integrations/clerk",
    operation_id = "connect_integration_with_clerk",
    tag = "integrations",
    security(("bearer" = [])),
    request_body = ClerkConnectRequest,
    responses(
        (status = 201, description = "Connected (or updated)", body = IntegrationView),
        (status = 403, description = "The caller is not a person signed in through Clerk (a JWT)", content_type = "application/problem+json"),
        (status = 409, description = "Clerk holds no Google token for the caller, or Clerk is not configured", content_type = "application/problem+json"),
        (status = 422, description = "Unknown type", content_type = "application/problem+json"),
        (status = 502, description = "Clerk refused Mailwright's request", content_type = "application/problem+json"),
        (status = 503, description = "Clerk or Google did not answer", content_type = "application/problem+json")
    )
)]
async fn connect_with_clerk(
    State(state): State<AppState>,
    caller: AuthUser,
    ApiJson(request): ApiJson<ClerkConnectRequest>,
) -> Result<(StatusCode, Json<IntegrationView>), ApiError> {
    let AuthMethod::Jwt { subject } = &caller.method else {
        return Err(ApiError::Forbidden(
            "Only a person signed in through Clerk (a bearer JWT from Clerk) can connect the Google account Clerk holds."
                .into(),
        ));
    };
    let integration_type = google_type(&request.integration_type).ok_or_else(|| {
        ApiError::Validation(vec![FieldError::new("type", "must be gmail or calendar")])
    })?;
    let integration = state
        .connections
        .connect_with_clerk(caller.workspace, caller.user, subject, integration_type)
        .await?;
    Ok((StatusCode::CREATED, Json(integration.into())))
}
