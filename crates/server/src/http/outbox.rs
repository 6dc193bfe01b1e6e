//! The outbox of Mailwright's own email for this workspace: what was sent
//! (or, without a mail provider, what would have been), and what failed.

use axum::Json;
use axum::extract::State;
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::problem::ApiError;
use crate::app::AppState;
use crate::auth::AuthUser;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SystemEmailView {
    id: String,
    /// e.g. `integration_needs_reauth`, `integration_missing_scopes`.
    kind: String,
    to: Option<String>,
    subject: String,
    text: String,
    /// `queued`, `retrying` (an attempt failed for a reason that may pass;
    /// `last_error` says which, and it is tried again until the retry
    /// horizon), `sent`, `logged` (no mail provider is configured: it was
    /// written to the log, not delivered), `failed` or `undeliverable`.
    status: String,
    /// `sidemail`, `smtp`, or `log` (no provider configured: recorded only).
    provider: Option<String>,
    last_error: Option<String>,
    created_at: DateTime<Utc>,
    sent_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Outbox {
    emails: Vec<SystemEmailView>,
}

/// How many emails the outbox lists.
const OUTBOX_LIMIT: i64 = 100;

/// The workspace's system email, newest first (up to 100).
#[utoipa::path(
    get,
    path = "/api/system-emails",
    operation_id = "list_system_emails",
    tag = "system email",
    security(("bearer" = []), ("session" = [])),
    responses((status = 200, body = Outbox))
)]
async fn list(State(state): State<AppState>, caller: AuthUser) -> Result<Json<Outbox>, ApiError> {
    let emails = state
        .notifier
        .outbox(caller.workspace, OUTBOX_LIMIT)
        .await?;
    Ok(Json(Outbox {
        emails: emails
            .into_iter()
            .map(|email| SystemEmailView {
                id: email.id.to_string(),
                kind: email.kind,
                to: email.to_address,
                subject: email.subject,
                text: email.text_body,
                status: email.status,
                provider: email.provider,
                last_error: email.last_error,
                created_at: email.created_at,
                sent_at: email.sent_at,
            })
            .collect(),
    }))
}
