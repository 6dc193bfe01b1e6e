//! Workflows: CRUD (validated at the edge, every problem named by field),
//! execute (with Idempotency-Key and optional waiting), run history, and the
//! webhook trigger.

use domain::runs::{RunError, RunStatus, RunSteps};
use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use domain::workflows::{Definition, Step, Trigger};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::json::{ApiJson, parse};
use super::problem::{ApiError, FieldError};
use crate::app::AppState;
use crate::auth::AuthUser;
use engine::workflows::{RUN_HISTORY, Run, Workflow, parse_id};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(get_one, replace, delete))
        .routes(routes!(execute))
        .routes(routes!(runs))
        .routes(routes!(get_run))
        .routes(routes!(rerun))
        .routes(routes!(webhook))
}

/// How long `execute?wait=true` waits for the run to end.
pub(crate) const WAIT_LIMIT: Duration = Duration::from_secs(30);

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "name": "Shipping notice",
    "trigger": {"type": "manual"},
    "steps": [{"action": "email.send_system", "to": ["ops@example.com"],
               "subject": "Order {{ input.order }} shipped", "body": "Hello {{ input.name }}"}]
}))]
pub struct WorkflowInput {
    /// 1 to 100 characters, not only spaces.
    #[schema(min_length = 1, max_length = 100, pattern = "\\S")]
    name: String,
    #[serde(default = "enabled_by_default")]
    enabled: bool,
    /// `{"type": "manual"}`, `{"type": "webhook"}`, `{"type": "schedule", "cron": "..."}` or
    /// `{"type": "new_mail", "integration_id": "...", "filter": {"from"?, "to"?, "subject_contains"?, "has_attachment"?, "label"?}}`.
    #[schema(value_type = Object)]
    trigger: Trigger,
    /// Each `{"action", "integration_id"?, "to"?, "cc"?, "bcc"?, "subject"?, "body"?, "url"?,
    /// "thread_id"?, "label"?, "message_id"?, "condition"?}` (which fields an action takes: README).
    #[schema(value_type = Vec<Object>)]
    steps: Vec<Step>,
    /// Email the workspace's owner when a run fails for good (default false).
    #[serde(default)]
    notify_on_failure: bool,
}

fn enabled_by_default() -> bool {
    true
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WorkflowView {
    id: String,
    name: String,
    enabled: bool,
    #[schema(value_type = Object)]
    trigger: Value,
    #[schema(value_type = Vec<Object>)]
    steps: Value,
    /// For webhook triggers: POST the input here (the token is the credential).
    #[serde(skip_serializing_if = "Option::is_none")]
    webhook_url: Option<String>,
    /// For schedule triggers: when it runs next (UTC).
    #[serde(skip_serializing_if = "Option::is_none")]
    next_run_at: Option<DateTime<Utc>>,
    /// Email the workspace's owner when a run fails for good.
    notify_on_failure: bool,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl WorkflowInput {
    pub(crate) fn into_definition(self) -> Definition {
        Definition {
            name: self.name,
            enabled: self.enabled,
            trigger: self.trigger,
            steps: self.steps,
            notify_on_failure: self.notify_on_failure,
        }
    }
}

/// Where a webhook-triggered workflow takes its input (the token included).
pub(crate) fn webhook_url(state: &AppState, workflow: &Workflow) -> Option<String> {
    let path = state.workflows.webhook_path(workflow)?;
    Some(state.config.public_url_for(&path))
}

fn view(state: &AppState, workflow: Workflow) -> WorkflowView {
    let webhook_url = webhook_url(state, &workflow);
    WorkflowView {
        id: workflow.id.to_string(),
        name: workflow.name,
        enabled: workflow.enabled,
        trigger: workflow.trigger,
        steps: workflow.steps,
        webhook_url,
        next_run_at: workflow.next_run_at,
        notify_on_failure: workflow.notify_on_failure,
        created_at: workflow.created_at,
        updated_at: workflow.updated_at,
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WorkflowList {
    workflows: Vec<WorkflowView>,
}

#[utoipa::path(get, path = "/api/workflows", operation_id = "list_workflows", tag = "workflows", security(("bearer" = []), ("session" = [])),
    responses((status = 200, body = WorkflowList)))]
async fn list(
    State(state): State<AppState>,
    caller: AuthUser,
) -> Result<Json<WorkflowList>, ApiError> {
    let workflows = state.workflows.list(caller.workspace).await?;
    Ok(Json(WorkflowList {
        workflows: workflows
            .into_iter()
            .map(|workflow| view(&state, workflow))
            .collect(),
    }))
}

#[utoipa::path(post, path = "/api/workflows", operation_id = "create_workflow", tag = "workflows", security(("bearer" = []), ("session" = [])),
    request_body = WorkflowInput,
    responses((status = 201, body = WorkflowView), (status = 422, content_type = "application/problem+json")))]
async fn create(
    State(state): State<AppState>,
    caller: AuthUser,
    ApiJson(input): ApiJson<WorkflowInput>,
) -> Result<(StatusCode, Json<WorkflowView>), ApiError> {
    let workflow = state
        .workflows
        .create(caller.workspace, input.into_definition())
        .await?;
    Ok((StatusCode::CREATED, Json(view(&state, workflow))))
}

#[utoipa::path(get, path = "/api/workflows/{id}", operation_id = "get_workflow", tag = "workflows", security(("bearer" = []), ("session" = [])),
    params(("id" = String, Path)), responses((status = 200, body = WorkflowView), (status = 404)))]
async fn get_one(
    State(state): State<AppState>,
    caller: AuthUser,
    Path(id): Path<String>,
) -> Result<Json<WorkflowView>, ApiError> {
    let workflow = state
        .workflows
        .get(caller.workspace, parse_id(&id)?)
        .await?;
    Ok(Json(view(&state, workflow)))
}

/// Replace a workflow's definition (the webhook token is kept).
#[utoipa::path(put, path = "/api/workflows/{id}", operation_id = "replace_workflow", tag = "workflows", security(("bearer" = []), ("session" = [])),
    params(("id" = String, Path)), request_body = WorkflowInput,
    responses((status = 200, body = WorkflowView), (status = 404), (status = 422)))]
async fn replace(
    State(state): State<AppState>,
    caller: AuthUser,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<WorkflowView>, ApiError> {
    // Found first: another workspace's id answers 404 whatever the body.
    let previous = state
        .workflows
        .get(caller.workspace, parse_id(&id)?)
        .await?;
    let input: WorkflowInput = parse(&body)?;
    let workflow = state
        .workflows
        .replace(&previous, input.into_definition())
        .await?;
    Ok(Json(view(&state, workflow)))
}

#[utoipa::path(delete, path = "/api/workflows/{id}", operation_id = "delete_workflow", tag = "workflows", security(("bearer" = []), ("session" = [])),
    params(("id" = String, Path)), responses((status = 204), (status = 404)))]
async fn delete(
    State(state): State<AppState>,
    caller: AuthUser,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    state
        .workflows
        .delete(caller.workspace, parse_id(&id)?)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RunView {
    id: String,
    workflow_id: String,
    /// `queued`, `running`, `retrying`, `succeeded` or `failed`.
    #[schema(value_type = String)]
    status: RunStatus,
    trigger: String,
    /// The input the run was started with (any JSON value).
    #[schema(value_type = Value)]
    input: Value,
    /// `[{"index","action","status","output","error","definition"}]`: each
    /// step's status (`pending`, `running`, `succeeded`, `failed`), its
    /// output, its last error, and the step as the run executes it.
    #[schema(value_type = Vec<Object>)]
    steps: RunSteps,
    #[schema(value_type = Option<Object>)]
    error: Option<RunError>,
    /// While `retrying`: when the next attempt is due (the failing step's
    /// `error` says what went wrong).
    #[serde(skip_serializing_if = "Option::is_none")]
    next_attempt_at: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
    finished_at: Option<DateTime<Utc>>,
    /// A re-run: the id of the failed run it re-runs.
    #[serde(skip_serializing_if = "Option::is_none")]
    rerun_of: Option<String>,
}

pub(crate) fn run_view(run: Run) -> RunView {
    RunView {
        id: run.id.to_string(),
        workflow_id: run.workflow_id.to_string(),
        status: run.status,
        trigger: run.trigger,
        input: run.input,
        steps: run.steps,
        error: run.error,
        next_attempt_at: run.next_attempt_at,
        created_at: run.created_at,
        finished_at: run.finished_at,
        rerun_of: run.rerun_of.map(|id| id.to_string()),
    }
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ExecuteQuery {
    /// Wait up to 30 s for the run to end (default true).
    wait: Option<bool>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"input": {"order": "A-17", "name": "Ada"}}))]
pub struct ExecuteBody {
    /// What the steps' templates see as `input` (default `{}`).
    #[serde(default = "empty_object")]
    #[schema(value_type = Value)]
    input: Value,
}

fn empty_object() -> Value {
    json!({})
}

/// Keys Mailwright gives its own runs (re-runs, new mail) start with this:
/// a client's key cannot take one's place.
const RESERVED_KEY_PREFIX: &str = "mailwright:";

fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let refused =
        |message: &str| ApiError::Validation(vec![FieldError::new("Idempotency-Key", message)]);
    match headers.get("idempotency-key") {
        None => Ok(None),
        Some(value) => {
            let key = value
                .to_str()
                .ok()
                .map(str::trim)
                .filter(|key| !key.is_empty() && key.len() <= 255)
                .ok_or_else(|| refused("must be 1 to 255 visible characters"))?;
            if key.starts_with(RESERVED_KEY_PREFIX) {
                return Err(refused(
                    "must not start with `mailwright:`, which Mailwright's own runs use",
                ));
            }
            Ok(Some(key.to_owned()))
        }
    }
}

/// Run a workflow with `input`. The same Idempotency-Key returns the same run.
#[utoipa::path(post, path = "/api/workflows/{id}/execute", operation_id = "execute_workflow", tag = "workflows", security(("bearer" = []), ("session" = [])),
    params(("id" = String, Path), ExecuteQuery,
        ("Idempotency-Key" = Option<String>, Header, description = "The same key on this workflow returns the same run (1 to 255 visible characters)", max_length = 255, pattern = "^[\\x20-\\x7e]*[\\x21-\\x7e][\\x20-\\x7e]*$")),
    request_body(content = Option<ExecuteBody>, description = "Optional; an empty body means `{\"input\": {}}`"),
    responses(
        (status = 200, description = "The run ended (succeeded or failed)", body = super::openapi::ExecuteResult),
        (status = 202, description = "The run is queued or still running (`wait=false`, or after 30 s)", body = super::openapi::ExecuteAccepted),
        (status = 404), (status = 409, description = "The workflow is disabled (code `conflict`)")))]
async fn execute(
    State(state): State<AppState>,
    caller: AuthUser,
    Path(id): Path<String>,
    Query(query): Query<ExecuteQuery>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let workflow_id = parse_id(&id)?;
    let input = if body.is_empty() {
        json!({})
    } else {
        parse::<ExecuteBody>(&body)?.input
    };
    let key = idempotency_key(&headers)?;
    let run = state
        .workflows
        .start(caller.workspace, workflow_id, input, key.as_deref())
        .await?;
    if !query.wait.unwrap_or(true) {
        return Ok((StatusCode::ACCEPTED, Json(json!({ "run": run_view(run) }))).into_response());
    }
    let run = state.workflows.wait_for_end(run, WAIT_LIMIT).await?;
    Ok(match run.status {
        RunStatus::Succeeded => {
            Json(json!({ "success": true, "run": run_view(run) })).into_response()
        }
        RunStatus::Failed => {
            let error = run.error.clone();
            Json(json!({ "success": false, "run": run_view(run), "error": error })).into_response()
        }
        _ => (StatusCode::ACCEPTED, Json(json!({ "run": run_view(run) }))).into_response(),
    })
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RunList {
    runs: Vec<RunView>,
}

#[utoipa::path(get, path = "/api/workflows/{id}/runs", operation_id = "list_runs", tag = "workflows", security(("bearer" = []), ("session" = [])),
    params(("id" = String, Path)), responses((status = 200, body = RunList), (status = 404)))]
async fn runs(
    State(state): State<AppState>,
    caller: AuthUser,
    Path(id): Path<String>,
) -> Result<Json<RunList>, ApiError> {
    let runs = state
        .workflows
        .runs(caller.workspace, parse_id(&id)?, RUN_HISTORY)
        .await?;
    Ok(Json(RunList {
        runs: runs.into_iter().map(run_view).collect(),
    }))
}

#[utoipa::path(get, path = "/api/runs/{id}", tag = "workflows", security(("bearer" = []), ("session" = [])),
    params(("id" = String, Path)), responses((status = 200, body = RunView), (status = 404)))]
async fn get_run(
    State(state): State<AppState>,
    caller: AuthUser,
    Path(id): Path<String>,
) -> Result<Json<RunView>, ApiError> {
    let run = state
        .workflows
        .run(caller.workspace, parse_id(&id)?)
        .await?;
    Ok(Json(run_view(run)))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RerunAnswer {
    run: RunView,
}

/// Re-run a failed run from its first failed step: a new run (`rerun_of`
/// names this one) with the same input, keeping the steps already done, so
/// nothing they sent is sent again. Asked again, it answers the same re-run.
#[utoipa::path(post, path = "/api/runs/{id}/rerun", operation_id = "rerun", tag = "workflows", security(("bearer" = []), ("session" = [])),
    params(("id" = String, Path)),
    responses((status = 202, body = RerunAnswer), (status = 404, content_type = "application/problem+json"),
        (status = 409, description = "Not failed, its workflow disabled or deleted, or a step it did has changed", content_type = "application/problem+json")))]
async fn rerun(
    State(state): State<AppState>,
    caller: AuthUser,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<RerunAnswer>), ApiError> {
    let run = state
        .workflows
        .rerun(caller.workspace, parse_id(&id)?)
        .await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(RerunAnswer { run: run_view(run) }),
    ))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct WebhookQuery {
    /// The workflow's webhook token (part of its `webhook_url`).
    token: Option<String>,
}

/// Start a run of a webhook-triggered workflow; the body is the input. An
/// unknown workflow and a wrong token answer alike (404).
#[utoipa::path(post, path = "/api/hooks/{workflow_id}", operation_id = "trigger_webhook", tag = "workflows",
    params(("workflow_id" = String, Path), WebhookQuery,
        ("Idempotency-Key" = Option<String>, Header, description = "The same key on this workflow returns the same run (1 to 255 visible characters)", max_length = 255, pattern = "^[\\x20-\\x7e]*[\\x21-\\x7e][\\x20-\\x7e]*$")),
    request_body(content = Option<Value>, description = "The run's input, any JSON value; an empty body means `{}`"),
    responses(
        (status = 202, description = "The run is queued", body = super::openapi::WebhookAccepted),
        (status = 404, description = "No such workflow, or a wrong token (answered alike; code `not_found`)"),
        (status = 409, description = "The workflow is disabled (code `conflict`)")))]
async fn webhook(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(query): Query<WebhookQuery>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let token = query.token.unwrap_or_default();
    let workflow = state.workflows.webhook_workflow(&id, &token).await?;
    let input: Value = if body.is_empty() {
        json!({})
    } else {
        parse(&body)?
    };
    let key = idempotency_key(&headers)?;
    let run = state
        .workflows
        .start_from_webhook(&workflow, input, key.as_deref())
        .await?;
    Ok((StatusCode::ACCEPTED, Json(json!({ "run_id": run.id }))).into_response())
}
