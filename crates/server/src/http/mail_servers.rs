//! Connecting a mailbox by password: `POST /api/integrations/imap`. Both
//! servers are tried before anything is stored; a refusal answers 422 with
//! a code that says how (`auth_failed`, `tls_failed`, `unreachable`,
//! `no_drafts_folder`) and the field to fix.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use domain::UserId;
use domain::email::EmailAddress;
use domain::mail_server::{ServerEndpoint, check_credential};
use engine::mail_servers::{MailServerConnect, MailServerConnectError};
use providers::imap::ConnectFailure;
use secrecy::SecretString;
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::integrations::IntegrationView;
use super::json::ApiJson;
use super::problem::{ApiError, ErrorCode, FieldError};
use crate::app::AppState;
use crate::auth::AuthUser;

/// The longest user name and password accepted (characters).
const MAX_USERNAME: usize = 256;
const MAX_PASSWORD: usize = 1024;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(connect_imap))
}

/// Where a server listens, and how the connection is secured.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ServerSettings {
    #[schema(max_length = 253, example = "imap.fastmail.com")]
    host: String,
    #[schema(minimum = 1, maximum = 65535, example = 993)]
    port: i64,
    /// `tls` (TLS from the first byte: IMAP 993, SMTP 465) or `starttls`
    /// (IMAP 143, SMTP 587). There is no unencrypted choice.
    #[schema(pattern = "^(tls|starttls)$", example = "tls")]
    security: String,
}

/// A mailbox's servers and login. No `Debug`: it holds the password.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "email": "ada@example.com",
    "imap": {"host": "imap.example.com", "port": 993, "security": "tls"},
    "smtp": {"host": "smtp.example.com", "port": 465, "security": "tls"},
    "username": "ada@example.com",
    "password": "app-password"
}))]
pub struct ImapConnectRequest {
    /// The mailbox's address (the From of what Mailwright sends).
    #[schema(max_length = 254)]
    email: String,
    imap: ServerSettings,
    smtp: ServerSettings,
    /// The login, for both servers (often the address).
    #[schema(min_length = 1, max_length = 256)]
    username: String,
    /// The password or, where the provider has them, an app password.
    /// Stored encrypted; never shown again.
    #[schema(min_length = 1, max_length = 1024, format = Password)]
    password: String,
}

/// A connect request's fields, from the API's JSON or the page's form.
pub(crate) struct ConnectFields<'a> {
    pub email: &'a str,
    pub imap: (&'a str, i64, &'a str),
    pub smtp: (&'a str, i64, &'a str),
    pub username: &'a str,
    pub password: &'a str,
}

/// The fields parsed, or every field that is wrong.
pub(crate) fn parse(
    user: UserId,
    fields: ConnectFields<'_>,
) -> Result<MailServerConnect, Vec<FieldError>> {
    let mut errors = Vec::new();
    let email = EmailAddress::parse(fields.email)
        .map_err(|problem| errors.push(FieldError::new("email", problem.to_string())))
        .ok();
    let imap = endpoint("imap", fields.imap, &mut errors);
    let smtp = endpoint("smtp", fields.smtp, &mut errors);
    let username = fields.username.trim().to_owned();
    if let Err(problem) = check_credential(&username, MAX_USERNAME) {
        errors.push(FieldError::new("username", problem.0));
    }
    if let Err(problem) = check_credential(fields.password, MAX_PASSWORD) {
        errors.push(FieldError::new("password", problem.0));
    }
    match (email, imap, smtp, errors.is_empty()) {
        (Some(email), Some(imap), Some(smtp), true) => Ok(MailServerConnect {
            user,
            email,
            imap,
            smtp,
            username,
            password: SecretString::from(fields.password.to_owned()),
        }),
        _ => Err(errors),
    }
}

fn endpoint(
    name: &str,
    (host, port, security): (&str, i64, &str),
    errors: &mut Vec<FieldError>,
) -> Option<ServerEndpoint> {
    match ServerEndpoint::parse(host, port, security) {
        Ok(endpoint) => Some(endpoint),
        Err(problem) => {
            // The problem names the sub-field first ("port must be ...").
            let sub = problem.0.split_whitespace().next().unwrap_or("host");
            errors.push(FieldError::new(format!("{name}.{sub}"), problem.0));
            None
        }
    }
}

/// Why connecting failed, as the API answers it.
pub(crate) fn connect_failed(error: MailServerConnectError) -> ApiError {
    match error {
        MailServerConnectError::Servers(refusal) => ApiError::MailServer {
            code: match refusal.failure {
                ConnectFailure::AuthFailed => ErrorCode::AuthFailed,
                ConnectFailure::TlsFailed => ErrorCode::TlsFailed,
                ConnectFailure::Unreachable => ErrorCode::Unreachable,
                ConnectFailure::NoDraftsFolder => ErrorCode::NoDraftsFolder,
            },
            field: refusal.field(),
            detail: capitalised(&refusal.message),
        },
        MailServerConnectError::Store(error) => error.into(),
        MailServerConnectError::TooOften => ApiError::RateLimited(format!(
            "This workspace tried to connect mailboxes {} times in the last {} minutes; wait a few minutes and try again.",
            engine::mail_servers::CONNECTS_PER_WINDOW,
            engine::mail_servers::CONNECT_WINDOW.as_secs() / 60
        )),
        MailServerConnectError::Busy => ApiError::RateLimited(
            "Too many mailboxes are being connected on this server right now; try again in a minute."
                .into(),
        ),
    }
}

/// Connect a mailbox by IMAP and SMTP with a password (Fastmail, iCloud,
/// a hosting provider, a company's server). Both servers are tried first:
/// IMAP login, the inbox and a Drafts folder; SMTP greeting, TLS and login.
/// Connecting the same login on the same server again updates its
/// connection (how a changed password is given).
#[utoipa::path(
    post,
    path = "/api/integrations/imap",
    operation_id = "connect_imap",
    tag = "integrations",
    security(("bearer" = []), ("session" = [])),
    request_body = ImapConnectRequest,
    responses(
        (status = 201, description = "Connected (or updated)", body = IntegrationView),
        (status = 422, description = "Bad input (`validation_failed`), or a server refused: `auth_failed`, `tls_failed`, `unreachable`, `no_drafts_folder`", content_type = "application/problem+json"),
        (status = 429, description = "Too many connects at once on this server, or 20 from this workspace in 10 minutes (`rate_limited`)", content_type = "application/problem+json")
    )
)]
async fn connect_imap(
    State(state): State<AppState>,
    caller: AuthUser,
    ApiJson(request): ApiJson<ImapConnectRequest>,
) -> Result<(StatusCode, Json<IntegrationView>), ApiError> {
    let fields = ConnectFields {
        email: &request.email,
        imap: (
            &request.imap.host,
            request.imap.port,
            &request.imap.security,
        ),
        smtp: (
            &request.smtp.host,
            request.smtp.port,
            &request.smtp.security,
        ),
        username: &request.username,
        password: &request.password,
    };
    let connect = parse(caller.user, fields).map_err(ApiError::Validation)?;
    let integration = state
        .vault
        .connect_mail_server(caller.workspace, connect)
        .await
        .map_err(connect_failed)?;
    Ok((StatusCode::CREATED, Json(integration.into())))
}

/// A sentence starts with a capital and ends with a full stop.
fn capitalised(message: &str) -> String {
    let mut characters = message.chars();
    let mut sentence: String = match characters.next() {
        Some(first) => first.to_uppercase().chain(characters).collect(),
        None => String::new(),
    };
    if !sentence.ends_with('.') {
        sentence.push('.');
    }
    sentence
}
