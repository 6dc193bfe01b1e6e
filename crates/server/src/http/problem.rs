//! The one error type of the HTTP API, answered as RFC 9457
//! `application/problem+json` with the `code` values of the public contract.
//!
//! 5xx answers are logged once, here, with the whole cause chain and the
//! request id; the client sees a generic message and the same request id.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use domain::scopes::IntegrationStatus;
use engine::error::ServiceError;
use serde::Serialize;
use serde_json::{Map, Value, json};

use super::request_context;

pub const PROBLEM_JSON: &str = "application/problem+json";

/// The machine-readable `code` of a problem.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    Unauthorized,
    Forbidden,
    NotFound,
    ValidationFailed,
    Conflict,
    MissingScopes,
    NeedsReauth,
    RateLimited,
    ProviderUnavailable,
    ProviderError,
    Internal,
    /// Connecting a mailbox by password: a server refused the login.
    AuthFailed,
    /// ... no secure connection could be made.
    TlsFailed,
    /// ... a server could not be reached.
    Unreachable,
    /// ... the mailbox has no Drafts folder.
    NoDraftsFolder,
}

impl ErrorCode {
    pub const ALL: [ErrorCode; 15] = [
        ErrorCode::Unauthorized,
        ErrorCode::Forbidden,
        ErrorCode::NotFound,
        ErrorCode::ValidationFailed,
        ErrorCode::Conflict,
        ErrorCode::MissingScopes,
        ErrorCode::NeedsReauth,
        ErrorCode::RateLimited,
        ErrorCode::ProviderUnavailable,
        ErrorCode::ProviderError,
        ErrorCode::Internal,
        ErrorCode::AuthFailed,
        ErrorCode::TlsFailed,
        ErrorCode::Unreachable,
        ErrorCode::NoDraftsFolder,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::NotFound => "not_found",
            ErrorCode::ValidationFailed => "validation_failed",
            ErrorCode::Conflict => "conflict",
            ErrorCode::MissingScopes => "missing_scopes",
            ErrorCode::NeedsReauth => "needs_reauth",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::ProviderUnavailable => "provider_unavailable",
            ErrorCode::ProviderError => "provider_error",
            ErrorCode::Internal => "internal",
            ErrorCode::AuthFailed => "auth_failed",
            ErrorCode::TlsFailed => "tls_failed",
            ErrorCode::Unreachable => "unreachable",
            ErrorCode::NoDraftsFolder => "no_drafts_folder",
        }
    }
}

/// One input field that was wrong, and why, in words for a person.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> FieldError {
        FieldError {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// A problem document.
#[derive(Debug, Clone)]
pub struct Problem {
    pub status: StatusCode,
    pub code: ErrorCode,
    pub title: String,
    pub detail: String,
    /// Extra members (`errors`, `missing_scopes`, `request_id`, ...).
    pub extra: Map<String, Value>,
}

impl Problem {
    pub fn new(
        status: StatusCode,
        code: ErrorCode,
        title: impl Into<String>,
        detail: impl Into<String>,
    ) -> Problem {
        Problem {
            status,
            code,
            title: title.into(),
            detail: detail.into(),
            extra: Map::new(),
        }
    }

    pub fn with(mut self, key: &str, value: Value) -> Problem {
        self.extra.insert(key.to_owned(), value);
        self
    }

    /// The problem for a status that reached the client without a body of
    /// ours (unknown route, wrong method, body too large, ...).
    pub fn for_status(status: StatusCode, hint: Option<String>) -> Problem {
        let reason = status.canonical_reason().unwrap_or("Error");
        match status {
            StatusCode::NOT_FOUND => Problem::new(
                status,
                ErrorCode::NotFound,
                "Not found",
                "There is nothing at this address.",
            ),
            StatusCode::METHOD_NOT_ALLOWED => Problem::new(
                status,
                ErrorCode::NotFound,
                "Method not allowed",
                "This address exists but does not accept this HTTP method; the Allow header lists those it does.",
            ),
            StatusCode::PAYLOAD_TOO_LARGE => Problem::new(
                status,
                ErrorCode::ValidationFailed,
                "Request body too large",
                format!(
                    "The request body is larger than the {} KiB this service accepts.",
                    super::BODY_LIMIT_BYTES / 1024
                ),
            )
            .with("errors", json!([FieldError::new("body", "too large")])),
            StatusCode::UNAUTHORIZED => Problem::new(
                status,
                ErrorCode::Unauthorized,
                reason,
                "Sign in or send valid credentials.",
            ),
            StatusCode::FORBIDDEN => Problem::new(
                status,
                ErrorCode::Forbidden,
                reason,
                "You are not allowed to do this.",
            ),
            StatusCode::CONFLICT => Problem::new(
                status,
                ErrorCode::Conflict,
                reason,
                "The request conflicts with the current state.",
            ),
            StatusCode::TOO_MANY_REQUESTS => Problem::new(
                status,
                ErrorCode::RateLimited,
                reason,
                "Too many requests; slow down and retry.",
            ),
            status if status.is_client_error() => {
                // Framework rejections (bad JSON, wrong content type) describe
                // the client's own input, so their text is safe to show.
                let detail = hint.unwrap_or_else(|| "The request could not be understood.".into());
                let field = if status == StatusCode::UNSUPPORTED_MEDIA_TYPE {
                    "Content-Type"
                } else {
                    "body"
                };
                Problem::new(status, ErrorCode::ValidationFailed, reason, detail.clone())
                    .with("errors", json!([FieldError::new(field, detail)]))
            }
            _ => Problem::new(
                status,
                ErrorCode::Internal,
                reason,
                "Something went wrong on our side. Try again; if it keeps failing, give the operator the request id.",
            ),
        }
    }
}

impl IntoResponse for Problem {
    fn into_response(mut self) -> Response {
        if self.status.is_server_error()
            && let Some(request_id) = request_context::current_request_id()
        {
            self.extra
                .insert("request_id".into(), Value::String(request_id));
        }
        let mut body = Map::new();
        body.insert(
            "type".into(),
            // A relative reference (RFC 9457 §3.1.1): the runbook entry on
            // the server that answered, which is there offline.
            Value::String(domain::explain::runbook_path(self.code.as_str())),
        );
        body.insert("title".into(), Value::String(self.title));
        body.insert("status".into(), Value::from(self.status.as_u16()));
        body.insert("detail".into(), Value::String(self.detail));
        body.insert("code".into(), Value::String(self.code.as_str().into()));
        for (key, value) in self.extra {
            body.entry(key).or_insert(value);
        }
        let mut response = (self.status, axum::Json(Value::Object(body))).into_response();
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        response
    }
}

/// What a handler can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Missing, or in another workspace: the two are indistinguishable.
    #[error("not found")]
    NotFound,
    #[error("validation failed")]
    Validation(Vec<FieldError>),
    /// The body is not even JSON.
    #[error("malformed body")]
    MalformedBody(String),
    /// The body is over the size limit (also when it came without a length).
    #[error("body too large")]
    BodyTooLarge,
    /// No usable credentials. `reason` is machine-readable (`expired`,
    /// `bad_signature`, `unknown_key`, ...); `detail` says it in words.
    #[error("unauthorized ({reason})")]
    Unauthorized {
        reason: &'static str,
        detail: String,
    },
    #[error("forbidden: {0}")]
    Forbidden(String),
    #[error("conflict: {0}")]
    Conflict(String),
    /// The connection lacks permissions the request needs (409).
    #[error("missing scopes")]
    MissingScopes {
        detail: String,
        missing_scopes: Vec<String>,
        reconnect_url: String,
    },
    /// Google no longer accepts the connection (409).
    #[error("needs reauth")]
    NeedsReauth {
        detail: String,
        reconnect_url: String,
    },
    /// An outside service refused the request for good (502).
    #[error("provider error: {0}")]
    ProviderError(String),
    /// The service cannot answer right now (database down, not migrated).
    #[error("unavailable: {detail}")]
    Unavailable {
        detail: String,
        #[source]
        cause: Option<anyhow::Error>,
    },
    /// An outside service we depend on (identity provider, Google, ...) is
    /// not answering; worth retrying later.
    #[error("provider unavailable: {0}")]
    ProviderUnavailable(String),
    /// The request ran past the server's time limit.
    #[error("request timed out")]
    Timeout,
    /// Too many requests of this kind right now (429); try again shortly.
    #[error("rate limited: {0}")]
    RateLimited(String),
    /// A mail server refused a mailbox being connected by password (422):
    /// `code` says how, `field` what to fix.
    #[error("mail server refused: {detail}")]
    MailServer {
        code: ErrorCode,
        field: &'static str,
        detail: String,
    },
    /// A bug or an unexpected failure: logged, answered generically.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl ApiError {
    fn problem(&self) -> Problem {
        match self {
            ApiError::NotFound => Problem::new(
                StatusCode::NOT_FOUND,
                ErrorCode::NotFound,
                "Not found",
                "The requested resource does not exist.",
            ),
            ApiError::BodyTooLarge => Problem::for_status(StatusCode::PAYLOAD_TOO_LARGE, None),
            ApiError::Validation(errors) => Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                ErrorCode::ValidationFailed,
                "Invalid input",
                match errors.as_slice() {
                    [one] => format!("{}: {}", one.field, one.message),
                    _ => format!("{} fields are invalid; see errors.", errors.len()),
                },
            )
            .with("errors", json!(errors)),
            ApiError::MalformedBody(detail) => Problem::new(
                StatusCode::BAD_REQUEST,
                ErrorCode::ValidationFailed,
                "Malformed body",
                detail.clone(),
            )
            .with(
                "errors",
                json!([FieldError::new("body", "is not valid JSON")]),
            ),
            ApiError::Unauthorized { reason, detail } => Problem::new(
                StatusCode::UNAUTHORIZED,
                ErrorCode::Unauthorized,
                "Unauthorized",
                detail.clone(),
            )
            .with("reason", Value::String((*reason).to_owned())),
            ApiError::ProviderUnavailable(detail) => Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                ErrorCode::ProviderUnavailable,
                "Provider unavailable",
                detail.clone(),
            ),
            ApiError::MissingScopes {
                detail,
                missing_scopes,
                reconnect_url,
            } => Problem::new(
                StatusCode::CONFLICT,
                ErrorCode::MissingScopes,
                "Missing permissions",
                detail.clone(),
            )
            .with("missing_scopes", json!(missing_scopes))
            .with("reconnect_url", json!(reconnect_url)),
            ApiError::NeedsReauth {
                detail,
                reconnect_url,
            } => Problem::new(
                StatusCode::CONFLICT,
                ErrorCode::NeedsReauth,
                "Reconnect needed",
                detail.clone(),
            )
            .with("reconnect_url", json!(reconnect_url)),
            ApiError::ProviderError(detail) => Problem::new(
                StatusCode::BAD_GATEWAY,
                ErrorCode::ProviderError,
                "Provider error",
                detail.clone(),
            ),
            ApiError::Forbidden(detail) => Problem::new(
                StatusCode::FORBIDDEN,
                ErrorCode::Forbidden,
                "Forbidden",
                detail.clone(),
            ),
            ApiError::Conflict(detail) => Problem::new(
                StatusCode::CONFLICT,
                ErrorCode::Conflict,
                "Conflict",
                detail.clone(),
            ),
            ApiError::Unavailable { detail, .. } => Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                ErrorCode::Internal,
                "Service unavailable",
                detail.clone(),
            ),
            ApiError::Timeout => Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                ErrorCode::Internal,
                "Request timed out",
                "The request took too long and was stopped. Try again; if it keeps happening, give the operator the request id.",
            ),
            ApiError::RateLimited(detail) => Problem::new(
                StatusCode::TOO_MANY_REQUESTS,
                ErrorCode::RateLimited,
                "Too many requests",
                detail.clone(),
            ),
            ApiError::MailServer {
                code,
                field,
                detail,
            } => Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                *code,
                "The mailbox could not be connected",
                detail.clone(),
            )
            .with("errors", json!([FieldError::new(*field, detail.clone())])),
            ApiError::Internal(_) => Problem::for_status(StatusCode::INTERNAL_SERVER_ERROR, None),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match &self {
            ApiError::Internal(cause) => {
                tracing::error!(error = format!("{cause:#}"), "request failed")
            }
            ApiError::Unavailable { detail, cause } => tracing::warn!(
                error = cause.as_ref().map(|cause| format!("{cause:#}")),
                "{detail}"
            ),
            ApiError::Timeout => tracing::warn!("request timed out"),
            _ => {}
        }
        let mut response = self.problem().into_response();
        if matches!(self, ApiError::Unauthorized { .. }) {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"mailwright\""),
            );
        }
        response
    }
}

impl From<ServiceError> for ApiError {
    fn from(error: ServiceError) -> Self {
        match error {
            ServiceError::NotFound => ApiError::NotFound,
            ServiceError::Invalid(problems) => ApiError::Validation(
                problems
                    .into_iter()
                    .map(|problem| FieldError::new(problem.field, problem.message))
                    .collect(),
            ),
            ServiceError::Conflict(detail) => ApiError::Conflict(detail),
            ServiceError::Connection {
                integration,
                status: IntegrationStatus::MissingScopes,
                missing_scopes,
                message,
            } => ApiError::MissingScopes {
                detail: message,
                missing_scopes,
                reconnect_url: super::integrations::reconnect_path(integration),
            },
            ServiceError::Connection {
                integration,
                message,
                ..
            } => ApiError::NeedsReauth {
                detail: message,
                reconnect_url: super::integrations::reconnect_path(integration),
            },
            ServiceError::ProviderUnavailable(detail) => ApiError::ProviderUnavailable(detail),
            ServiceError::ProviderError(detail) => ApiError::ProviderError(detail),
            ServiceError::Unavailable { detail, cause } => ApiError::Unavailable {
                detail,
                cause: Some(cause),
            },
            ServiceError::Internal(cause) => ApiError::Internal(cause),
        }
    }
}
