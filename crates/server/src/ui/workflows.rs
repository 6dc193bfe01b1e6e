//! The workflow pages: the list with a form for a new one-step workflow, one
//! workflow (edit, delete, run, history) and one run. They call the same
//! service as `/api/workflows`, so a definition is checked by the same rules,
//! and its field errors (named by API path, `steps[0].to[1]`) are shown next
//! to the form field they concern.

use domain::runs::RunError;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use domain::workflows::{Action, Step, Trigger};
use engine::error::ServiceError;
use engine::workflows::{Workflow, parse_id};
use minijinja::context;
use serde::Deserialize;
use serde_json::{Value, json};

use super::autodraft::ago;
use super::charts;
use super::render;
use super::session::{Posted, SessionForm, SignedIn, attention};
use super::workflow_form::{
    FieldMessages, WorkflowForm, blank_form, definition_json, editor, form_definition,
    form_messages, keep_other_form, stored_form,
};
use crate::app::AppState;
use crate::auth::SessionUser;
use crate::http::ApiError;
use crate::http::workflows::{WAIT_LIMIT, webhook_url};

/// Runs shown on a workflow's page.
const RECENT_RUNS: i64 = 20;

fn trigger_words(trigger: &Value) -> String {
    match serde_json::from_value::<Trigger>(trigger.clone()) {
        Ok(Trigger::Manual) => "Manual".into(),
        Ok(Trigger::Webhook) => "Webhook".into(),
        Ok(Trigger::Schedule { cron }) => format!("Schedule: {cron} (UTC)"),
        Ok(Trigger::NewMail { filter, .. }) => format!("New mail: {}", filter.describe()),
        Err(_) => "Unknown".into(),
    }
}

fn step_words(step: &Step) -> String {
    let what = match step.action {
        Action::GmailSendEmail | Action::GmailCreateDraft | Action::EmailSendSystem => format!(
            "{} to {}: {}",
            step.action.describe(),
            step.to.join(", "),
            step.subject
        ),
        Action::GmailReply => match &step.thread_id {
            Some(thread) => format!("Reply in thread {thread}"),
            None => "Reply to the message that arrived".into(),
        },
        Action::GmailAddLabel | Action::GmailRemoveLabel => format!(
            "{} “{}”",
            step.action.describe(),
            step.label.as_deref().unwrap_or_default()
        ),
        Action::HttpPost => format!("POST JSON to {}", step.url.as_deref().unwrap_or_default()),
    };
    let condition = step
        .condition
        .as_deref()
        .map(|condition| format!(" (only when {condition})"))
        .unwrap_or_default();
    format!("{what}{condition}")
}

/// A starting input for the run form: every `input.*` name the workflow's
/// templates use, empty.
fn sample_input(workflow: &Workflow) -> String {
    let text = workflow.steps.to_string();
    let mut names = std::collections::BTreeSet::new();
    for (at, _) in text.match_indices("input.") {
        let name: String = text[at + "input.".len()..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        if !name.is_empty() {
            names.insert(name);
        }
    }
    let input: serde_json::Map<String, Value> = names
        .into_iter()
        .map(|name| (name, Value::String(String::new())))
        .collect();
    definition_json(&Value::Object(input))
}

fn notice_words(notice: Option<&str>) -> Option<&'static str> {
    match notice? {
        "created" => Some("Workflow created."),
        "saved" => Some("Saved."),
        "deleted" => Some("Workflow deleted."),
        _ => None,
    }
}

#[derive(Deserialize)]
pub(super) struct NoticeQuery {
    notice: Option<String>,
}

async fn list_page(
    state: &AppState,
    session: &SessionUser,
    status: StatusCode,
    notice: Option<&str>,
    refused: Option<(WorkflowForm, FieldMessages)>,
) -> Result<Response, ApiError> {
    let workflows: Vec<minijinja::Value> = state
        .workflows
        .list(session.workspace)
        .await?
        .into_iter()
        .map(|workflow| {
            context! {
                id => workflow.id.to_string(),
                name => workflow.name,
                trigger => trigger_words(&workflow.trigger),
                enabled => workflow.enabled,
            }
        })
        .collect();
    let blank = blank_form(state, session).await?;
    let (form, messages) = match refused {
        Some((form, messages)) => (keep_other_form(form, blank), messages),
        None => (blank, FieldMessages::new()),
    };
    let editor = editor(state, session, &form, messages, true, "/workflows".into()).await?;
    let attention = attention(state, session.workspace).await?;
    render(
        status,
        "workflows.html",
        context! {
            signed_in => true,
            attention,
            csrf => session.csrf_token.clone(),
            workflows,
            notice,
            save_label => "Create workflow",
            ..editor
        },
    )
}

/// The workflows of the workspace and the form for a new one.
#[utoipa::path(get, path = "/workflows", tag = "ui",
    responses((status = 200, content_type = "text/html"), (status = 303)))]
pub(super) async fn workflows_page(
    State(state): State<AppState>,
    SignedIn(session): SignedIn,
    Query(query): Query<NoticeQuery>,
) -> Result<Response, ApiError> {
    let notice = notice_words(query.notice.as_deref());
    list_page(&state, &session, StatusCode::OK, notice, None).await
}

/// Create a workflow from the form (or its Advanced JSON).
#[utoipa::path(post, path = "/workflows", tag = "ui",
    responses((status = 303, description = "To the new workflow"), (status = 422, content_type = "text/html")))]
pub(super) async fn create(
    State(state): State<AppState>,
    Posted(session, mut form): Posted<WorkflowForm>,
) -> Result<Response, ApiError> {
    // Add, remove or move a step: the form again, nothing saved.
    if form.apply_op() {
        let edited = Some((form, FieldMessages::new()));
        return list_page(&state, &session, StatusCode::OK, None, edited).await;
    }
    let created = match form_definition(&form) {
        Ok(definition) => state
            .workflows
            .create(session.workspace, definition)
            .await
            .map_err(ApiError::from),
        Err(error) => Err(error),
    };
    match created {
        Ok(workflow) => {
            Ok(Redirect::to(&format!("/workflows/{}?notice=created", workflow.id)).into_response())
        }
        Err(error) => {
            let messages = form_messages(&form, error)?;
            let refused = Some((form, messages));
            list_page(
                &state,
                &session,
                StatusCode::UNPROCESSABLE_ENTITY,
                None,
                refused,
            )
            .await
        }
    }
}

/// What a refused run form shows again: the input and why.
struct RefusedRun {
    input: String,
    error: String,
}

struct WorkflowPage<'a> {
    status: StatusCode,
    notice: Option<&'a str>,
    refused: Option<(WorkflowForm, FieldMessages)>,
    run: Option<RefusedRun>,
}

impl WorkflowPage<'_> {
    fn ok(notice: Option<&str>) -> WorkflowPage<'_> {
        WorkflowPage {
            status: StatusCode::OK,
            notice,
            refused: None,
            run: None,
        }
    }
}

async fn workflow_page(
    state: &AppState,
    session: &SessionUser,
    workflow: Workflow,
    page: WorkflowPage<'_>,
) -> Result<Response, ApiError> {
    let now = chrono::Utc::now();
    let runs: Vec<minijinja::Value> = state
        .workflows
        .runs(session.workspace, workflow.id, RECENT_RUNS)
        .await?
        .into_iter()
        .map(|run| {
            context! {
                id => run.id.to_string(),
                status => run.status,
                trigger => run.trigger,
                ago => ago(run.created_at, now),
                at => run.created_at.to_rfc3339(),
                error => run.error.map(|error| format!("{}: {}", error_words(&error.code), error.message)),
            }
        })
        .collect();
    let days = charts::last_days(now.date_naive(), charts::CHART_DAYS);
    let day_counts = state
        .workflows
        .run_days(session.workspace, workflow.id, charts::since(&days))
        .await?;
    let (runs_chart, duration_chart) = match charts::run_charts(&days, &day_counts) {
        Some((runs, durations)) => (
            Some(minijinja::Value::from_safe_string(runs)),
            Some(minijinja::Value::from_safe_string(durations)),
        ),
        None => (None, None),
    };
    let steps: Vec<String> = serde_json::from_value::<Vec<Step>>(workflow.steps.clone())
        .map(|steps| steps.iter().map(step_words).collect())
        .unwrap_or_default();
    let (stored, fits) = stored_form(&workflow);
    let (form, messages, simple) = match page.refused {
        Some((form, messages)) => {
            let simple = fits || !form.is_json();
            (keep_other_form(form, stored), messages, simple)
        }
        None => (stored, FieldMessages::new(), fits),
    };
    let action = format!("/workflows/{}", workflow.id);
    let editor = editor(state, session, &form, messages, simple, action).await?;
    let (run_input, run_error) = match page.run {
        Some(RefusedRun { input, error }) => (input, Some(error)),
        None => (sample_input(&workflow), None),
    };
    let back_here = format!("/workflows/{}", workflow.id);
    let connection_problems: Vec<minijinja::Value> = state
        .workflows
        .connection_problems(&workflow)
        .await?
        .into_iter()
        .map(|problem| {
            context! {
                part => problem.part,
                message => problem.message,
                reconnect => problem.reconnect.map(|id| {
                    crate::http::integrations::reconnect_path_back_to(id, &back_here)
                }),
            }
        })
        .collect();
    let attention = attention(state, session.workspace).await?;
    render(
        page.status,
        "workflow.html",
        context! {
            signed_in => true,
            attention,
            csrf => session.csrf_token.clone(),
            workflow => context! {
                id => workflow.id.to_string(),
                name => workflow.name.clone(),
                enabled => workflow.enabled,
                trigger => trigger_words(&workflow.trigger),
                steps,
                webhook_url => webhook_url(state, &workflow),
                next_run_at => workflow.next_run_at.map(|at| at.format("%Y-%m-%d %H:%M").to_string()),
            },
            runs,
            runs_chart,
            duration_chart,
            connection_problems,
            run_input,
            run_error,
            notice => page.notice,
            save_label => "Save",
            ..editor
        },
    )
}

/// The workflow of the session's workspace; any other id is not found.
async fn find(state: &AppState, session: &SessionUser, id: &str) -> Result<Workflow, ApiError> {
    Ok(state
        .workflows
        .get(session.workspace, parse_id(id)?)
        .await?)
}

/// One workflow: details, webhook URL, run, history, edit, delete.
#[utoipa::path(get, path = "/workflows/{id}", tag = "ui", params(("id" = String, Path)),
    responses((status = 200, content_type = "text/html"), (status = 303), (status = 404)))]
pub(super) async fn workflow(
    State(state): State<AppState>,
    SignedIn(session): SignedIn,
    Path(id): Path<String>,
    Query(query): Query<NoticeQuery>,
) -> Result<Response, ApiError> {
    let workflow = find(&state, &session, &id).await?;
    let notice = notice_words(query.notice.as_deref());
    workflow_page(&state, &session, workflow, WorkflowPage::ok(notice)).await
}

/// Replace the workflow's definition from the form (or its Advanced JSON).
#[utoipa::path(post, path = "/workflows/{id}", tag = "ui", params(("id" = String, Path)),
    responses((status = 303, description = "Saved"), (status = 404), (status = 422, content_type = "text/html")))]
pub(super) async fn replace(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Posted(session, mut form): Posted<WorkflowForm>,
) -> Result<Response, ApiError> {
    // Found first: another workspace's id answers 404 whatever the form.
    let previous = find(&state, &session, &id).await?;
    if form.apply_op() {
        let page = WorkflowPage {
            refused: Some((form, FieldMessages::new())),
            ..WorkflowPage::ok(None)
        };
        return workflow_page(&state, &session, previous, page).await;
    }
    let replaced = match form_definition(&form) {
        Ok(definition) => state
            .workflows
            .replace(&previous, definition)
            .await
            .map_err(ApiError::from),
        Err(error) => Err(error),
    };
    match replaced {
        Ok(workflow) => {
            Ok(Redirect::to(&format!("/workflows/{}?notice=saved", workflow.id)).into_response())
        }
        Err(error) => {
            let messages = form_messages(&form, error)?;
            let page = WorkflowPage {
                status: StatusCode::UNPROCESSABLE_ENTITY,
                refused: Some((form, messages)),
                ..WorkflowPage::ok(None)
            };
            workflow_page(&state, &session, previous, page).await
        }
    }
}

#[derive(Deserialize)]
pub(super) struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

impl SessionForm for CsrfForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

/// Delete the workflow (and its runs).
#[utoipa::path(post, path = "/workflows/{id}/delete", tag = "ui", params(("id" = String, Path)),
    responses((status = 303, description = "To the list"), (status = 404)))]
pub(super) async fn delete(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Posted(session, _): Posted<CsrfForm>,
) -> Result<Response, ApiError> {
    state
        .workflows
        .delete(session.workspace, parse_id(&id)?)
        .await?;
    Ok(Redirect::to("/workflows?notice=deleted").into_response())
}

#[derive(Deserialize)]
pub(super) struct RunForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    input: String,
    /// Present (checked): wait up to 30 s for the run to end, as the API's
    /// `execute?wait=true` does; absent: just queue it.
    #[serde(default)]
    wait: Option<String>,
}

impl SessionForm for RunForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

/// Run the workflow with the input, then show the run.
#[utoipa::path(post, path = "/workflows/{id}/run", tag = "ui", params(("id" = String, Path)),
    responses((status = 303, description = "To the run"), (status = 404), (status = 409, content_type = "text/html"), (status = 422, content_type = "text/html")))]
pub(super) async fn run(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Posted(session, form): Posted<RunForm>,
) -> Result<Response, ApiError> {
    let workflow = find(&state, &session, &id).await?;
    let refused = |status: StatusCode, error: String| WorkflowPage {
        status,
        run: Some(RefusedRun {
            input: form.input.clone(),
            error,
        }),
        ..WorkflowPage::ok(None)
    };
    let input = if form.input.trim().is_empty() {
        json!({})
    } else {
        match serde_json::from_str::<Value>(&form.input) {
            Ok(input) => input,
            Err(error) => {
                let page = refused(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    format!("The input is not JSON ({error})."),
                );
                return workflow_page(&state, &session, workflow, page).await;
            }
        }
    };
    if let Err(problem) = state.workflows.check_input(&workflow, &input).await {
        let page = refused(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("{problem}. Fill in the input and run it again."),
        );
        return workflow_page(&state, &session, workflow, page).await;
    }
    match state
        .workflows
        .start(session.workspace, workflow.id, input, None)
        .await
    {
        Ok(run) => {
            let run = if form.wait.is_some() {
                state.workflows.wait_for_end(run, WAIT_LIMIT).await?
            } else {
                run
            };
            Ok(Redirect::to(&format!("/runs/{}", run.id)).into_response())
        }
        Err(ServiceError::Conflict(detail)) => {
            let page = refused(StatusCode::CONFLICT, detail);
            workflow_page(&state, &session, workflow, page).await
        }
        Err(other) => Err(other.into()),
    }
}

/// A run's error code, in words.
fn error_words(code: &str) -> &'static str {
    match code {
        "validation_failed" => "The input does not fit the workflow",
        "missing_scopes" => "The mailbox connection lacks a permission",
        "needs_reauth" => "The mailbox connection must be reconnected",
        "disconnected" => "The mailbox connection is disconnected",
        "not_found" => "Something this step uses no longer exists",
        "provider_error" => "The mailbox refused",
        "provider_unavailable" => "The mailbox did not answer",
        "http_error" => "The URL refused the request",
        "http_refused" => "This server does not call that address",
        _ => "The step failed",
    }
}

fn error_view(error: Option<&RunError>) -> Option<minijinja::Value> {
    let error = error?;
    Some(context! {
        code => error.code.clone(),
        words => error_words(&error.code),
        message => error.message.clone(),
    })
}

/// One run: status, each step's status, output and error, the input.
#[utoipa::path(get, path = "/runs/{id}", tag = "ui", params(("id" = String, Path)),
    responses((status = 200, content_type = "text/html"), (status = 303), (status = 404)))]
pub(super) async fn run_page(
    State(state): State<AppState>,
    SignedIn(session): SignedIn,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let run = state
        .workflows
        .run(session.workspace, parse_id(&id)?)
        .await?;
    show_run(&state, &session, run, StatusCode::OK, None).await
}

/// Re-run a failed run from its first failed step, then show the new run.
#[utoipa::path(post, path = "/runs/{id}/rerun", tag = "ui", params(("id" = String, Path)),
    responses((status = 303, description = "To the new run's page"), (status = 409, content_type = "text/html"), (status = 404)))]
pub(super) async fn rerun(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Posted(session, _): Posted<super::SignOutForm>,
) -> Result<Response, ApiError> {
    let id = parse_id(&id)?;
    match state.workflows.rerun(session.workspace, id).await {
        Ok(run) => Ok(Redirect::to(&format!("/runs/{}", run.id)).into_response()),
        Err(ServiceError::Conflict(problem)) => {
            let run = state.workflows.run(session.workspace, id).await?;
            show_run(&state, &session, run, StatusCode::CONFLICT, Some(problem)).await
        }
        Err(other) => Err(other.into()),
    }
}

async fn show_run(
    state: &AppState,
    session: &SessionUser,
    run: engine::workflows::Run,
    status: StatusCode,
    rerun_problem: Option<String>,
) -> Result<Response, ApiError> {
    let workflow = match state
        .workflows
        .get(session.workspace, run.workflow_id)
        .await
    {
        Ok(workflow) => Some(workflow),
        Err(ServiceError::NotFound) => None,
        Err(other) => return Err(other.into()),
    };
    let now = chrono::Utc::now();
    let steps: Vec<minijinja::Value> = run
        .steps
        .records()
        .iter()
        .map(|step| {
            context! {
                number => step.index + 1,
                action => step.action.as_str(),
                status => step.status,
                output => (!step.output.is_null()).then(|| definition_json(&step.output)),
                error => error_view(step.error.as_ref()),
            }
        })
        .collect();
    let attention = attention(state, session.workspace).await?;
    render(
        status,
        "run.html",
        context! {
            signed_in => true,
            attention,
            csrf => session.csrf_token.clone(),
            run => context! {
                id => run.id.to_string(),
                status => run.status,
                trigger => run.trigger.clone(),
                ago => ago(run.created_at, now),
                at => run.created_at.to_rfc3339(),
                finished_ago => run.finished_at.map(|at| ago(at, now)),
                finished_at => run.finished_at.map(|at| at.to_rfc3339()),
                next_attempt_at => run.next_attempt_at.map(|at| at.to_rfc3339()),
                next_attempt_in => run.next_attempt_at.map(|at| until(at, now)),
                input => definition_json(&run.input),
                error => error_view(run.error.as_ref()),
                steps,
                rerun_of => run.rerun_of.map(|id| id.to_string()),
                first_failed => run.steps.iter().position(|step| step.status == domain::runs::StepStatus::Failed).map(|index| index + 1),
            },
            rerun_problem,
            workflow_name => workflow.as_ref().map(|workflow| workflow.name.clone()),
            workflow_url => workflow.map(|workflow| format!("/workflows/{}", workflow.id)),
            refresh => !run.status.is_ended(),
        },
    )
}

/// "in 3 minutes": how long until `at`.
fn until(at: chrono::DateTime<chrono::Utc>, now: chrono::DateTime<chrono::Utc>) -> String {
    let seconds = (at - now).num_seconds().max(0);
    match seconds {
        0..=59 => format!("in {seconds} s"),
        60..=3599 => format!("in {} min", seconds / 60),
        _ => format!("in {} h {} min", seconds / 3600, seconds % 3600 / 60),
    }
}

#[cfg(test)]
#[path = "workflows_tests.rs"]
mod tests;
