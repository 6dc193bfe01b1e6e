//! Google's error bodies, one constructor per shape.
//!
//! Two families: the OAuth endpoints answer `{"error": "...",
//! "error_description": "..."}`; the Gmail API answers
//! `{"error": {"code", "message", "errors": [...], "status"}}`.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// OAuth endpoint error (`/token`, `/revoke`, `/v1/userinfo`).
pub fn oauth(status: StatusCode, error: &str, description: &str) -> Response {
    (
        status,
        Json(json!({ "error": error, "error_description": description })),
    )
        .into_response()
}

/// A Google API (Gmail) error body.
pub fn api(
    status: StatusCode,
    message: &str,
    domain: &str,
    reason: &str,
    api_status: &str,
) -> Response {
    let item = json!({ "message": message, "domain": domain, "reason": reason });
    let body = json!({
        "error": {
            "code": status.as_u16(),
            "message": message,
            "errors": [item],
            "status": api_status,
        }
    });
    (status, Json(body)).into_response()
}

fn with_www_authenticate(mut response: Response, value: &'static str) -> Response {
    response
        .headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(value));
    response
}

/// 401 for a missing Authorization header.
pub fn login_required() -> Response {
    let body = json!({
        "error": {
            "code": 401,
            "message": "Request is missing required authentication credential. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.",
            "errors": [{
                "message": "Login Required.",
                "domain": "global",
                "reason": "required",
                "location": "Authorization",
                "locationType": "header",
            }],
            "status": "UNAUTHENTICATED",
        }
    });
    with_www_authenticate(
        (StatusCode::UNAUTHORIZED, Json(body)).into_response(),
        "Bearer realm=\"https://accounts.google.com/\"",
    )
}

/// 401 for an unknown, expired or revoked access token.
pub fn invalid_credentials() -> Response {
    let body = json!({
        "error": {
            "code": 401,
            "message": "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.",
            "errors": [{
                "message": "Invalid Credentials",
                "domain": "global",
                "reason": "authError",
                "location": "Authorization",
                "locationType": "header",
            }],
            "status": "UNAUTHENTICATED",
        }
    });
    with_www_authenticate(
        (StatusCode::UNAUTHORIZED, Json(body)).into_response(),
        "Bearer realm=\"https://accounts.google.com/\", error=\"invalid_token\"",
    )
}

/// 403 when the token lacks every scope the method accepts.
pub fn insufficient_scopes() -> Response {
    let body = json!({
        "error": {
            "code": 403,
            "message": "Request had insufficient authentication scopes.",
            "errors": [{
                "message": "Insufficient Permission",
                "domain": "global",
                "reason": "insufficientPermissions",
            }],
            "status": "PERMISSION_DENIED",
        }
    });
    with_www_authenticate(
        (StatusCode::FORBIDDEN, Json(body)).into_response(),
        "Bearer realm=\"https://accounts.google.com/\", error=\"insufficient_scope\"",
    )
}

pub fn forbidden(message: &str) -> Response {
    api(
        StatusCode::FORBIDDEN,
        message,
        "global",
        "forbidden",
        "PERMISSION_DENIED",
    )
}

pub fn not_found() -> Response {
    api(
        StatusCode::NOT_FOUND,
        "Requested entity was not found.",
        "global",
        "notFound",
        "NOT_FOUND",
    )
}

/// 409 for a name already taken, e.g. `labels.create`'s "Label name
/// exists or conflicts" (the message and 409 from public reports of Gmail
/// answers; `reason` `duplicate` from memory of Google's 409 bodies).
pub fn already_exists(message: &str) -> Response {
    api(
        StatusCode::CONFLICT,
        message,
        "global",
        "duplicate",
        "ALREADY_EXISTS",
    )
}

pub fn invalid_argument(message: &str) -> Response {
    api(
        StatusCode::BAD_REQUEST,
        message,
        "global",
        "invalidArgument",
        "INVALID_ARGUMENT",
    )
}

pub fn bad_request(message: &str, reason: &str) -> Response {
    api(
        StatusCode::BAD_REQUEST,
        message,
        "global",
        reason,
        "INVALID_ARGUMENT",
    )
}

pub fn parse_error(detail: &str) -> Response {
    bad_request(
        &format!("Invalid JSON payload received. {detail}"),
        "parseError",
    )
}

/// Body of an injected 429 (Gmail "Resolve errors" guide).
pub fn rate_limited() -> Response {
    api(
        StatusCode::TOO_MANY_REQUESTS,
        "Rate Limit Exceeded",
        "usageLimits",
        "rateLimitExceeded",
        "RESOURCE_EXHAUSTED",
    )
}

/// Body of an injected 403 per-user rate limit (Gmail "Resolve errors" guide).
pub fn user_rate_limited() -> Response {
    api(
        StatusCode::FORBIDDEN,
        "User Rate Limit Exceeded",
        "usageLimits",
        "userRateLimitExceeded",
        "PERMISSION_DENIED",
    )
}

/// Body of an injected 500 (Gmail "Resolve errors" guide).
pub fn backend_error() -> Response {
    api(
        StatusCode::INTERNAL_SERVER_ERROR,
        "Backend Error",
        "global",
        "backendError",
        "INTERNAL",
    )
}

/// Body of a 503, as Google's front end answers while a backend is away
/// (from memory of Google API 503 responses).
pub fn unavailable() -> Response {
    api(
        StatusCode::SERVICE_UNAVAILABLE,
        "The service is currently unavailable.",
        "global",
        "backendError",
        "UNAVAILABLE",
    )
}

pub fn custom(status: StatusCode, body: &Value) -> Response {
    (status, Json(body.clone())).into_response()
}

/// A Gmail API failure, rendered with Google's body on the way out.
pub enum ApiError {
    LoginRequired,
    InvalidCredentials,
    InsufficientScopes,
    Forbidden(String),
    NotFound,
    AlreadyExists(String),
    InvalidArgument(String),
    BadRequest {
        message: String,
        reason: &'static str,
    },
    ParseError(String),
    /// An injected fault's ready-made response.
    Injected(Box<Response>),
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match self {
            Self::LoginRequired => login_required(),
            Self::InvalidCredentials => invalid_credentials(),
            Self::InsufficientScopes => insufficient_scopes(),
            Self::Forbidden(message) => forbidden(&message),
            Self::NotFound => not_found(),
            Self::AlreadyExists(message) => already_exists(&message),
            Self::InvalidArgument(message) => invalid_argument(&message),
            Self::BadRequest { message, reason } => bad_request(&message, reason),
            Self::ParseError(detail) => parse_error(&detail),
            Self::Injected(response) => *response,
        }
    }
}
