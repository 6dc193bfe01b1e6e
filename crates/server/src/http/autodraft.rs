//! Auto-draft: the per-mailbox switch and its numbers, the test action, the
//! drafts list, and the push endpoints of Gmail (Pub/Sub) and Microsoft
//! Graph (change notifications).

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, header};
use base64::Engine;
use chrono::{DateTime, Utc};
use domain::drafting::outcome::DraftOutcome;
use domain::drafting::rules::DraftRules;
use domain::drafting::style::StyleProfile;
use domain::{IntegrationId, WorkspaceId};
use engine::autodraft::DEFAULT_CLEANUP_DAYS;
use engine::autodraft::{GraphNotification, Overview, TestOutcome};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::integrations::{LastErrorView, reconnect_path};
use super::problem::{ApiError, FieldError};
use crate::app::AppState;
use crate::auth::{AuthUser, secrets};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_autodraft, put_autodraft))
        .routes(routes!(test_autodraft))
        .routes(routes!(drafts))
        .routes(routes!(cleanup))
        .routes(routes!(push_gmail))
        .routes(routes!(push_microsoft))
}

/// Where Microsoft Graph posts change notifications (and its validation
/// request when a subscription is made).
pub const MICROSOFT_PUSH_PATH: &str = "/api/push/microsoft";
/// Different subscriptions one Graph post may name (Graph batches the
/// notifications of a burst; a mailbox has one subscription).
const MAX_GRAPH_SUBSCRIPTIONS: usize = 100;
/// Graph's ids and clientState are at most 128 characters.
const MAX_GRAPH_FIELD: usize = 128;
/// A validation token longer than this is not Graph's.
const MAX_VALIDATION_TOKEN: usize = 1024;

/// How many drafts `GET .../drafts` lists.
const DRAFT_LIST_LIMIT: i64 = 100;

/// Counters pushed to Prometheus for pushes.
pub const PUSHES: &str = "mailwright_push_notifications_total";

#[derive(Debug, Serialize, ToSchema)]
pub struct AutoDraftStatsView {
    drafts_created: i64,
    /// Drafts per type: a known type's name, or `other` for labels outside
    /// the known vocabulary.
    drafts_by_type: BTreeMap<String, i64>,
    skipped: i64,
    skipped_by_reason: BTreeMap<String, i64>,
    failed: i64,
    failures_by_reason: BTreeMap<String, i64>,
    /// Found and not finished yet.
    pending: i64,
    /// Of the pending: those whose last attempt failed for a reason that
    /// may pass (an outage); they are tried again until the retry horizon.
    retrying: i64,
    /// The soonest next attempt among them, with what went wrong last time.
    next_retry: Option<NextRetryView>,
    last_success_at: Option<DateTime<Utc>>,
    last_failure: Option<LastErrorView>,
    /// What became of the drafts: `pending`, `sent_unchanged`,
    /// `sent_edited`, `deleted`, `cleaned_up` (each present, 0 when none).
    outcomes: BTreeMap<String, i64>,
    /// The same per draft type and generator: what an operator compares to
    /// judge whether a generator's drafts are used.
    outcomes_by_type: Vec<OutcomesByType>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OutcomesByType {
    draft_type: String,
    generator: String,
    outcomes: BTreeMap<String, i64>,
}

/// The opt-in clean-up of stale untouched drafts.
#[derive(Debug, Serialize, ToSchema)]
pub struct CleanupView {
    enabled: bool,
    /// Days of quiet after which an untouched draft is deleted.
    after_days: i32,
}

/// Every outcome with its count (0 when none).
fn outcome_counts<'a>(rows: impl Iterator<Item = (&'a str, i64)>) -> BTreeMap<String, i64> {
    let mut counts: BTreeMap<String, i64> = DraftOutcome::ALL
        .iter()
        .map(|outcome| (outcome.as_str().to_owned(), 0))
        .collect();
    for (outcome, count) in rows {
        *counts.entry(outcome.to_owned()).or_default() += count;
    }
    counts
}

#[derive(Debug, Serialize, ToSchema)]
pub struct NextRetryView {
    at: DateTime<Utc>,
    code: String,
    message: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PausedView {
    code: String,
    message: String,
    reconnect_url: String,
}

/// Gmail push for this mailbox (`users.watch` on
/// `MAILWRIGHT_GMAIL_PUBSUB_TOPIC`): `active` while Google announces new
/// mail (the poll is the safety net), `off` without a topic or while
/// auto-draft is off, `failing` when the last attempt failed or the watch
/// lapsed (the poll finds new mail meanwhile).
#[derive(Debug, Serialize, ToSchema)]
pub struct WatchView {
    #[schema(example = "active")]
    status: &'static str,
    expires_at: Option<DateTime<Utc>>,
    /// When the watch is renewed next; after a failure, when it is tried again.
    renews_at: Option<DateTime<Utc>>,
    last_error: Option<LastErrorView>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EventView {
    kind: String,
    message: String,
    at: DateTime<Utc>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AutoDraftView {
    integration_id: String,
    enabled: bool,
    updated_at: DateTime<Utc>,
    /// Set while auto-draft is on but cannot run because the connection is
    /// broken: why, and where to fix it.
    paused: Option<PausedView>,
    stats: AutoDraftStatsView,
    /// Notable events, newest first (catch-ups after an expired history
    /// cursor, failure-rate alerts).
    events: Vec<EventView>,
    poll_interval_seconds: u64,
    watch: WatchView,
    /// What the owner asks of every draft (given to the language model).
    instructions: Option<String>,
    /// Senders and domains to always draft for (even lists and automatic
    /// mail) or never: `{"always": [...], "never": [...]}`.
    #[schema(value_type = Object)]
    rules: DraftRules,
    cleanup: CleanupView,
    llm_usage: LlmUsageView,
    /// How the owner writes, learnt from their sent mail (`learned_from`
    /// messages; 0 when set by hand), or null before it is learnt:
    /// `{"greeting","sign_off","typical_words","formality","languages","examples","learned_from"}`.
    #[schema(value_type = Option<Object>)]
    style: Option<StyleProfile>,
}

/// The language model's use by this mailbox.
#[derive(Debug, Serialize, ToSchema)]
pub struct LlmUsageView {
    /// Whether a model writes the drafts (else the built-in drafter).
    model_configured: bool,
    /// Tokens the mailbox's drafts may use per UTC day; over it, the
    /// built-in drafter writes them (`MAILWRIGHT_LLM_DAILY_TOKENS`).
    daily_limit: Option<u64>,
    /// Tokens used today (UTC).
    today: i64,
    /// Whether today's budget is used up.
    over_budget: bool,
    /// The last 7 days, per day and model, newest first.
    days: Vec<LlmDayView>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LlmDayView {
    day: chrono::NaiveDate,
    model: String,
    tokens: i64,
    calls: i64,
}

fn integration_id(text: &str) -> Result<IntegrationId, ApiError> {
    IntegrationId::parse(text).map_err(|_| ApiError::NotFound)
}

impl AutoDraftView {
    /// The answer for `overview`, polled every `poll_interval`.
    pub(crate) fn new(overview: Overview, poll_interval: std::time::Duration) -> AutoDraftView {
        let id = overview.integration.id;
        let stats = overview.stats;
        AutoDraftView {
            integration_id: id.to_string(),
            enabled: overview.enabled,
            updated_at: overview.updated_at,
            paused: overview.paused.map(|(code, message)| PausedView {
                code,
                message,
                reconnect_url: reconnect_path(id),
            }),
            stats: AutoDraftStatsView {
                drafts_created: stats.drafts_created,
                drafts_by_type: stats.drafts_by_type,
                skipped: stats.skipped_by_reason.values().sum(),
                skipped_by_reason: stats.skipped_by_reason,
                failed: stats.failures_by_reason.values().sum(),
                failures_by_reason: stats.failures_by_reason,
                pending: stats.pending,
                retrying: stats.retrying,
                next_retry: stats.next_retry.map(|retry| NextRetryView {
                    at: retry.at,
                    code: retry.code,
                    message: retry.message,
                }),
                last_success_at: stats.last_success_at,
                last_failure: overview.last_failure.map(|error| LastErrorView {
                    code: error.code,
                    message: error.message,
                    at: error.at,
                }),
                outcomes: outcome_counts(
                    overview
                        .outcome_counts
                        .iter()
                        .map(|(_, _, outcome, count)| (outcome.as_str(), *count)),
                ),
                outcomes_by_type: {
                    let mut by_type: BTreeMap<(String, String), Vec<(&str, i64)>> = BTreeMap::new();
                    for (draft_type, generator, outcome, count) in &overview.outcome_counts {
                        by_type
                            .entry((draft_type.clone(), generator.clone()))
                            .or_default()
                            .push((outcome.as_str(), *count));
                    }
                    by_type
                        .into_iter()
                        .map(|((draft_type, generator), rows)| OutcomesByType {
                            draft_type,
                            generator,
                            outcomes: outcome_counts(rows.into_iter()),
                        })
                        .collect()
                },
            },
            events: overview
                .events
                .into_iter()
                .map(|event| EventView {
                    kind: event.kind,
                    message: event.message,
                    at: event.at,
                })
                .collect(),
            poll_interval_seconds: poll_interval.as_secs(),
            instructions: overview.instructions,
            rules: overview.rules,
            cleanup: CleanupView {
                enabled: overview.cleanup_after_days.is_some(),
                after_days: overview.cleanup_after_days.unwrap_or(DEFAULT_CLEANUP_DAYS),
            },
            style: overview.style.clone(),
            llm_usage: {
                let today_date = Utc::now().date_naive();
                let today: i64 = overview
                    .llm_usage
                    .iter()
                    .filter(|usage| usage.day == today_date)
                    .map(|usage| usage.tokens)
                    .sum();
                LlmUsageView {
                    model_configured: overview.llm_daily_tokens.is_some(),
                    daily_limit: overview.llm_daily_tokens,
                    today,
                    over_budget: overview
                        .llm_daily_tokens
                        .is_some_and(|limit| today >= i64::try_from(limit).unwrap_or(i64::MAX)),
                    days: overview
                        .llm_usage
                        .into_iter()
                        .map(|usage| LlmDayView {
                            day: usage.day,
                            model: usage.model,
                            tokens: usage.tokens,
                            calls: usage.calls,
                        })
                        .collect(),
                }
            },
            watch: WatchView {
                status: overview.watch.status.as_str(),
                expires_at: overview.watch.expires_at,
                renews_at: overview.watch.renews_at,
                last_error: overview.watch.last_error.map(|error| LastErrorView {
                    code: error.code,
                    message: error.message,
                    at: error.at,
                }),
            },
        }
    }
}

/// The `AutoDraft` answer for mailbox `id`.
async fn view(
    state: &AppState,
    workspace: WorkspaceId,
    id: IntegrationId,
) -> Result<AutoDraftView, ApiError> {
    let overview = state.autodraft.overview(workspace, id).await?;
    Ok(AutoDraftView::new(
        overview,
        state.config.autodraft.poll_interval,
    ))
}

/// The mailbox's auto-draft switch, numbers and recent events.
#[utoipa::path(
    get,
    path = "/api/integrations/{id}/auto-draft",
    tag = "auto-draft",
    security(("bearer" = []), ("session" = [])),
    params(("id" = String, Path, description = "Integration id")),
    responses((status = 200, body = AutoDraftView), (status = 404, content_type = "application/problem+json"))
)]
async fn get_autodraft(
    State(state): State<AppState>,
    caller: AuthUser,
    Path(id): Path<String>,
) -> Result<Json<AutoDraftView>, ApiError> {
    let id = integration_id(&id)?;
    Ok(Json(view(&state, caller.workspace, id).await?))
}

/// What `PUT .../auto-draft` changes: the switch, and what the owner asks
/// of the drafts; a field left out stays as it is.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AutoDraftSettingsInput {
    #[serde(default)]
    enabled: Option<bool>,
    /// At most 2,000 characters; empty clears them.
    #[serde(default)]
    instructions: Option<String>,
    /// `{"always": [...], "never": [...]}`: addresses, `*@example.com`
    /// patterns or domains, at most 200 each.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    rules: Option<DraftRules>,
    /// `{"enabled", "after_days"?}`: delete drafts nobody touched once
    /// their thread moved on or was quiet for `after_days` (1 to 365;
    /// default 14).
    #[serde(default)]
    cleanup: Option<CleanupInput>,
    /// A style set by hand (kept until reset), or `null` to forget it and
    /// learn it again from the sent mail.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<Object>)]
    style: Option<Option<StyleProfile>>,
}

/// A field that is present (even as `null`) is `Some`.
fn present<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CleanupInput {
    enabled: bool,
    #[serde(default)]
    after_days: Option<i32>,
}

/// Days of quiet as given, checked (1 to 365); `field` names it.
fn cleanup_days(days: Option<i32>, field: &str) -> Result<i32, ApiError> {
    match days {
        None => Ok(DEFAULT_CLEANUP_DAYS),
        Some(days) if (1..=365).contains(&days) => Ok(days),
        Some(_) => Err(ApiError::Validation(vec![FieldError::new(
            field,
            "must be 1 to 365 days",
        )])),
    }
}

/// Switch auto-draft on or off, and set what the owner asks of its drafts
/// (`instructions`, `rules`). On: the connection must be healthy and allow
/// reading mail and creating drafts (else 409 naming what is missing); only
/// mail arriving from now on gets drafts.
#[utoipa::path(
    put,
    path = "/api/integrations/{id}/auto-draft",
    tag = "auto-draft",
    security(("bearer" = []), ("session" = [])),
    params(("id" = String, Path, description = "Integration id")),
    request_body = AutoDraftSettingsInput,
    responses(
        (status = 200, body = AutoDraftView),
        (status = 409, description = "missing_scopes (with missing_scopes and reconnect_url) or needs_reauth", content_type = "application/problem+json"),
        (status = 404, content_type = "application/problem+json")
    )
)]
async fn put_autodraft(
    State(state): State<AppState>,
    caller: AuthUser,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<AutoDraftView>, ApiError> {
    let id = integration_id(&id)?;
    // A foreign or missing id is a 404 whatever the body says.
    state.connections.get(caller.workspace, id).await?;
    let input: AutoDraftSettingsInput = super::json::parse(&body)?;
    // Every part checked before any is applied: a refusal changes nothing.
    let mut problems: Vec<FieldError> = Vec::new();
    let cleanup = match &input.cleanup {
        Some(cleanup) => match cleanup_days(cleanup.after_days, "cleanup.after_days") {
            Ok(days) => Some(cleanup.enabled.then_some(days)),
            Err(ApiError::Validation(mut errors)) => {
                problems.append(&mut errors);
                None
            }
            Err(other) => return Err(other),
        },
        None => None,
    };
    let mut check = |found: Vec<(String, String)>| {
        problems.extend(
            found
                .into_iter()
                .map(|(field, message)| FieldError::new(field, message)),
        );
    };
    if let Some(Err(problem)) = input
        .instructions
        .as_deref()
        .map(domain::drafting::rules::check_instructions)
    {
        check(vec![("instructions".into(), problem)]);
    }
    if let Some(Some(style)) = &input.style {
        check(style.validate());
    }
    if let Some(rules) = &input.rules {
        check(rules.validate());
    }
    if !problems.is_empty() {
        return Err(ApiError::Validation(problems));
    }
    if let Some(days) = cleanup {
        state
            .autodraft
            .set_cleanup(caller.workspace, id, days)
            .await?;
    }
    if let Some(style) = input.style {
        state
            .autodraft
            .set_style(caller.workspace, id, style)
            .await?;
    }
    if input.instructions.is_some() || input.rules.is_some() {
        state
            .autodraft
            .set_preferences(
                caller.workspace,
                id,
                input.instructions.as_deref(),
                input.rules,
            )
            .await?;
    }
    match input.enabled {
        Some(true) => {
            state.autodraft.enable(caller.workspace, id).await?;
        }
        Some(false) => {
            state.autodraft.disable(caller.workspace, id).await?;
        }
        None => {}
    }
    Ok(Json(view(&state, caller.workspace, id).await?))
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TestRequest {
    /// A Gmail message id; default: the newest inbox message.
    #[serde(default)]
    #[schema(pattern = "^[A-Za-z0-9]{1,64}$")]
    message_id: Option<String>,
    /// Also create the draft in Gmail (default false: only show it).
    #[serde(default)]
    create_draft: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TestAnswer {
    message_id: String,
    thread_id: String,
    draft_type: String,
    draft_type_label: String,
    subject: String,
    body: String,
    /// Why this message would get no draft (null: it would get one).
    skipped_reason: Option<String>,
    skipped_detail: Option<String>,
    /// The mailbox's draft id, when `create_draft` created it.
    draft_id: Option<String>,
}

impl From<TestOutcome> for TestAnswer {
    fn from(outcome: TestOutcome) -> Self {
        TestAnswer {
            message_id: outcome.message_id,
            thread_id: outcome.thread_id,
            draft_type: outcome.draft_type,
            draft_type_label: outcome.draft_type_label,
            subject: outcome.subject,
            body: outcome.body,
            skipped_reason: outcome.skipped.map(|reason| reason.code().to_owned()),
            skipped_detail: outcome.skipped.map(|reason| reason.describe().to_owned()),
            draft_id: outcome.draft_id,
        }
    }
}

/// Run the whole pipeline on the newest inbox message (or the one named):
/// the type, subject and body it would write, or why it would skip it.
#[utoipa::path(
    post,
    path = "/api/integrations/{id}/auto-draft/test",
    tag = "auto-draft",
    security(("bearer" = []), ("session" = [])),
    params(("id" = String, Path, description = "Integration id")),
    request_body = TestRequest,
    responses(
        (status = 200, body = TestAnswer),
        (status = 409, content_type = "application/problem+json"),
        (status = 404, content_type = "application/problem+json"),
        (status = 422, content_type = "application/problem+json")
    )
)]
async fn test_autodraft(
    State(state): State<AppState>,
    caller: AuthUser,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<TestAnswer>, ApiError> {
    let id = integration_id(&id)?;
    state.connections.get(caller.workspace, id).await?;
    // An empty body means "all defaults".
    let request: TestRequest = if body.iter().all(u8::is_ascii_whitespace) {
        TestRequest::default()
    } else {
        super::json::parse(&body)?
    };
    // Gmail's ids are hex, IMAP's are numbers, Graph's are long base64url.
    if let Some(message_id) = &request.message_id
        && (message_id.is_empty()
            || message_id.len() > 512
            || !message_id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '=')))
    {
        return Err(ApiError::Validation(vec![FieldError::new(
            "message_id",
            "must be a message id of the mailbox (letters, digits, - _ =)",
        )]));
    }
    let outcome = state
        .autodraft
        .test(
            caller.workspace,
            id,
            request.message_id,
            request.create_draft,
        )
        .await?;
    Ok(Json(outcome.into()))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DraftView {
    id: String,
    /// The Gmail id of the message answered.
    source_message_id: String,
    source_rfc822_message_id: Option<String>,
    thread_id: String,
    provider_draft_id: String,
    draft_type: String,
    draft_type_label: String,
    /// `builtin` or `llm:<model>`.
    generator: String,
    created_at: DateTime<Utc>,
    /// The answered message's subject (null for drafts made before it was
    /// recorded, and for drafts adopted after a crash).
    subject: Option<String>,
    /// The answered message's sender, `Name <address>` (null as above).
    from: Option<String>,
    /// The start of the reply Mailwright wrote (at most 280 characters).
    reply_excerpt: Option<String>,
    /// `pending`, `sent_unchanged`, `sent_edited`, `deleted` or
    /// `cleaned_up`, as last found in the mailbox.
    outcome: String,
    /// For `sent_edited`: how much of the reply the person changed, in
    /// percent of its words (null when not known).
    changed_percent: Option<i32>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DraftList {
    drafts: Vec<DraftView>,
}

/// Drafts auto-draft created in this mailbox, newest first (at most 100).
#[utoipa::path(
    get,
    path = "/api/integrations/{id}/drafts",
    operation_id = "list_drafts",
    tag = "auto-draft",
    security(("bearer" = []), ("session" = [])),
    params(("id" = String, Path, description = "Integration id")),
    responses((status = 200, body = DraftList), (status = 404, content_type = "application/problem+json"))
)]
async fn drafts(
    State(state): State<AppState>,
    caller: AuthUser,
    Path(id): Path<String>,
) -> Result<Json<DraftList>, ApiError> {
    let id = integration_id(&id)?;
    let drafts = state
        .autodraft
        .drafts(caller.workspace, id, DRAFT_LIST_LIMIT)
        .await?;
    Ok(Json(DraftList {
        drafts: drafts
            .into_iter()
            .map(|draft| DraftView {
                id: draft.id.to_string(),
                source_message_id: draft.source_message_id,
                source_rfc822_message_id: draft.source_rfc822_message_id,
                thread_id: draft.thread_id,
                provider_draft_id: draft.provider_draft_id,
                draft_type: draft.draft_type,
                draft_type_label: draft.draft_type_label,
                generator: draft.generator,
                created_at: draft.created_at,
                subject: draft.summary.source_subject,
                from: draft.summary.source_from,
                reply_excerpt: draft.summary.reply_excerpt,
                outcome: draft.outcome,
                changed_percent: draft.changed_percent,
            })
            .collect(),
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CleanupRequest {
    /// List what would be deleted without deleting (default true).
    #[serde(default = "dry_run_by_default")]
    dry_run: bool,
    /// Days of quiet (default: the mailbox's setting, else 14).
    #[serde(default)]
    after_days: Option<i32>,
}

fn dry_run_by_default() -> bool {
    true
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CleanupAnswer {
    dry_run: bool,
    after_days: i32,
    /// The drafts deleted (or, in a dry run, that would be), and why.
    drafts: Vec<CleanupItemView>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CleanupItemView {
    id: String,
    provider_draft_id: String,
    thread_id: String,
    subject: Option<String>,
    why: String,
}

/// Clean up stale untouched drafts now, or (the default) list what would
/// go: only drafts Mailwright created whose text nobody changed, whose
/// thread was answered another way or has been quiet for `after_days`.
#[utoipa::path(
    post,
    path = "/api/integrations/{id}/auto-draft/cleanup",
    operation_id = "cleanup_drafts",
    tag = "auto-draft",
    security(("bearer" = []), ("session" = [])),
    params(("id" = String, Path, description = "Integration id")),
    request_body = CleanupRequest,
    responses(
        (status = 200, body = CleanupAnswer),
        (status = 404, content_type = "application/problem+json"),
        (status = 409, content_type = "application/problem+json"),
        (status = 422, content_type = "application/problem+json")
    )
)]
async fn cleanup(
    State(state): State<AppState>,
    caller: AuthUser,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<CleanupAnswer>, ApiError> {
    let id = integration_id(&id)?;
    state.connections.get(caller.workspace, id).await?;
    // No body: the defaults (a dry run with the mailbox's days).
    let request: CleanupRequest = if body.iter().all(u8::is_ascii_whitespace) {
        super::json::parse(b"{}")?
    } else {
        super::json::parse(&body)?
    };
    let configured = state
        .autodraft
        .overview(caller.workspace, id)
        .await?
        .cleanup_after_days;
    let days = cleanup_days(request.after_days.or(configured), "after_days")?;
    let items = state
        .autodraft
        .cleanup(caller.workspace, id, days, request.dry_run)
        .await?;
    Ok(Json(CleanupAnswer {
        dry_run: request.dry_run,
        after_days: days,
        drafts: items
            .into_iter()
            .map(|item| CleanupItemView {
                id: item.draft.id.to_string(),
                provider_draft_id: item.draft.provider_draft_id,
                thread_id: item.draft.thread_id,
                subject: item.draft.summary.source_subject,
                why: item.why,
            })
            .collect(),
    }))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PushQuery {
    /// The shared secret `MAILWRIGHT_PUSH_TOKEN`.
    token: Option<String>,
}

/// What a Pub/Sub push says about a mailbox.
#[derive(Debug, PartialEq, Eq)]
struct GmailNotification {
    email: String,
    history_id: Option<u64>,
}

/// `{"message":{"data": base64(JSON {"emailAddress","historyId"})}, "subscription"}`.
fn parse_push(body: &[u8]) -> Option<GmailNotification> {
    let envelope: Value = serde_json::from_slice(body).ok()?;
    let data = envelope.get("message")?.get("data")?.as_str()?.trim();
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(data)
        .or_else(|_| base64::engine::general_purpose::URL_SAFE.decode(data))
        .or_else(|_| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(data))
        .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(data))
        .ok()?;
    let notification: Value = serde_json::from_slice(&decoded).ok()?;
    let email = notification.get("emailAddress")?.as_str()?.trim();
    if email.is_empty() || email.len() > 320 || !email.contains('@') {
        return None;
    }
    // Gmail sends the history id as a number; accept a string too.
    let history_id = match notification.get("historyId") {
        Some(Value::Number(number)) => number.as_u64(),
        Some(Value::String(text)) => text.parse().ok(),
        _ => None,
    };
    Some(GmailNotification {
        email: email.to_owned(),
        history_id,
    })
}

/// Whether this push proves where it comes from, by a configured method.
async fn authenticate_push(
    state: &AppState,
    token: Option<&str>,
    headers: &HeaderMap,
) -> Result<(), ApiError> {
    let refused = |reason: &'static str, detail: String| {
        metrics::counter!(PUSHES, "outcome" => reason).increment(1);
        Err(ApiError::Unauthorized { reason, detail })
    };
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .map(str::trim);
    let expected_token = state.config.push_token.as_ref();
    if let (Some(verifier), Some(bearer)) = (&state.push_verifier, bearer) {
        match verifier.verify(bearer).await {
            Ok(()) => return Ok(()),
            // A shared token, when one is configured and given, still counts.
            Err(_) if token.is_some() && expected_token.is_some() => {}
            Err(error) => return refused(error.reason(), error.to_string()),
        }
    }
    match (expected_token, token) {
        (Some(expected), Some(given))
            if secrets::constant_time_eq(
                given.as_bytes(),
                secrecy::ExposeSecret::expose_secret(expected).as_bytes(),
            ) =>
        {
            Ok(())
        }
        (Some(_), _) => refused("bad_push_token", "The push token is missing or wrong.".into()),
        (None, _) if state.push_verifier.is_some() => refused(
            "missing_push_oidc",
            "The push carries no Pub/Sub OIDC token (Authorization: Bearer); configure the push subscription to authenticate with the service account MAILWRIGHT_PUSH_SERVICE_ACCOUNT.".into(),
        ),
        (None, _) => refused(
            "push_not_configured",
            "Push notifications are not configured on this server (MAILWRIGHT_PUSH_AUDIENCE and MAILWRIGHT_PUSH_SERVICE_ACCOUNT, or MAILWRIGHT_PUSH_TOKEN).".into(),
        ),
    }
}

/// Gmail's push notifications (a Pub/Sub push subscription pointed here):
/// queue a sync of the mailbox and answer at once. The push proves itself
/// with Pub/Sub's OIDC token (`Authorization: Bearer`, when
/// `MAILWRIGHT_PUSH_AUDIENCE` is set) or `?token=` (when
/// `MAILWRIGHT_PUSH_TOKEN` is set); either configured method is enough.
/// Always 200 once it has, so Pub/Sub does not redeliver what cannot be
/// used; an unusable body or an unknown address is logged and counted.
#[utoipa::path(
    post,
    path = "/api/push/gmail",
    tag = "auto-draft",
    params(PushQuery),
    request_body(content = Option<Value>, description = "Pub/Sub's push envelope: `{\"message\": {\"data\": base64({\"emailAddress\", \"historyId\"})}, \"subscription\"}`; an unreadable one is logged and acknowledged",
        example = json!({"message": {"data": "eyJlbWFpbEFkZHJlc3MiOiJhbm5AZXhhbXBsZS5jb20iLCJoaXN0b3J5SWQiOjk4NzZ9", "messageId": "1"}, "subscription": "projects/p/subscriptions/s"})),
    responses(
        (status = 200, description = "Accepted: a sync is queued for each mailbox of the address", body = super::openapi::PushAccepted),
        (status = 401, description = "Neither a valid Pub/Sub OIDC token nor the right `token` (code `unauthorized`; `reason` says which check failed), or push is not configured")
    )
)]
async fn push_gmail(
    State(state): State<AppState>,
    Query(query): Query<PushQuery>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    authenticate_push(&state, query.token.as_deref(), &headers).await?;
    let Some(notification) = parse_push(&body) else {
        metrics::counter!(PUSHES, "outcome" => "malformed").increment(1);
        tracing::warn!(
            bytes = body.len(),
            "a Gmail push body could not be read; ignored"
        );
        return Ok(Json(json!({ "mailboxes": 0 })));
    };
    let queued = state.autodraft.push(&notification.email).await?;
    metrics::counter!(PUSHES, "outcome" => if queued > 0 { "queued" } else { "unknown_address" })
        .increment(1);
    tracing::debug!(
        history_id = notification.history_id,
        queued,
        "Gmail push received"
    );
    Ok(Json(json!({ "mailboxes": queued })))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct GraphPushQuery {
    /// Graph's validation request, when a subscription is made: answered
    /// with this token, as `text/plain`.
    #[serde(rename = "validationToken")]
    #[param(rename = "validationToken")]
    validation_token: Option<String>,
}

/// One change notification of a Graph post: which subscription, and the
/// clientState Graph was given with it.
#[derive(Debug, PartialEq, Eq)]
struct GraphNotice {
    subscription_id: String,
    client_state: String,
}

/// Graph's `{"value": [{"subscriptionId", "clientState", ...}]}`, each
/// subscription once (the body limit bounds the items). What else a
/// notification says is not needed: the sync reads the inbox's delta.
fn parse_graph_notices(body: &[u8]) -> Result<Vec<GraphNotice>, ApiError> {
    let envelope: Value = serde_json::from_slice(body)
        .map_err(|_| ApiError::MalformedBody("The body is not JSON.".into()))?;
    let invalid = |field: String, message: &str| {
        ApiError::Validation(vec![FieldError::new(field, message.to_owned())])
    };
    let Some(items) = envelope.get("value").and_then(Value::as_array) else {
        return Err(invalid(
            "value".into(),
            "must be the array of change notifications",
        ));
    };
    let mut notices: Vec<GraphNotice> = Vec::new();
    for (index, item) in items.iter().enumerate() {
        let field = |name: &str| -> Result<String, ApiError> {
            match item.get(name) {
                Some(Value::String(text)) if !text.is_empty() && text.len() <= MAX_GRAPH_FIELD => {
                    Ok(text.clone())
                }
                // A subscription made without a clientState (not one of
                // Mailwright's) is told apart by the check, not here.
                None | Some(Value::Null) if name == "clientState" => Ok(String::new()),
                _ => Err(invalid(
                    format!("value[{index}].{name}"),
                    &format!("must be a string of 1 to {MAX_GRAPH_FIELD} characters"),
                )),
            }
        };
        let notice = GraphNotice {
            subscription_id: field("subscriptionId")?,
            client_state: field("clientState")?,
        };
        if !notices.contains(&notice) {
            notices.push(notice);
        }
        if notices.len() > MAX_GRAPH_SUBSCRIPTIONS {
            return Err(invalid(
                "value".into(),
                &format!("must name at most {MAX_GRAPH_SUBSCRIPTIONS} subscriptions"),
            ));
        }
    }
    Ok(notices)
}

/// Microsoft Graph's change notifications for Outlook mailboxes. With
/// `validationToken` (when a subscription is made) the token is echoed as
/// `text/plain`, as Graph requires within 10 s. Otherwise each notification
/// whose `clientState` is the one its subscription was made with queues a
/// sync of that mailbox; the rest are logged, counted and ignored. 202 at
/// once either way, so Graph neither retries nor slows its deliveries.
/// Without Microsoft configured there are no subscriptions: 503.
#[utoipa::path(
    post,
    path = "/api/push/microsoft",
    tag = "auto-draft",
    params(GraphPushQuery),
    request_body(content = Option<Value>, description = "Graph's change notifications: `{\"value\": [{\"subscriptionId\", \"clientState\", \"changeType\", \"resource\", ...}]}` (empty for the validation request)",
        example = json!({"value": [{"subscriptionId": "7f105c7d-2dc5-4530-97cd-4e7ae6534c07", "clientState": "secret", "changeType": "created", "resource": "Users/a1/Messages/AAMk", "tenantId": "9188040d-6c67-4c5b-b112-36a304b66dad"}]})),
    responses(
        (status = 200, description = "The validation handshake: the `validationToken`, back as `text/plain`", content_type = "text/plain", body = String),
        (status = 202, description = "Accepted: a sync is queued for each mailbox whose subscription and clientState match", body = super::openapi::PushAccepted),
        (status = 400, description = "The body is not JSON (code `validation_failed`, field `body`)", content_type = "application/problem+json"),
        (status = 422, description = "Not Graph's notification shape, or a validation token too long (code `validation_failed`, naming the field)", content_type = "application/problem+json")
    )
)]
async fn push_microsoft(
    State(state): State<AppState>,
    Query(query): Query<GraphPushQuery>,
    body: Bytes,
) -> Result<axum::response::Response, ApiError> {
    use axum::response::IntoResponse;
    if !state
        .autodraft
        .announced(domain::scopes::IntegrationType::Outlook)
    {
        return Err(super::integrations::not_configured("microsoft"));
    }
    if let Some(token) = query.validation_token {
        if token.is_empty() || token.len() > MAX_VALIDATION_TOKEN {
            return Err(ApiError::Validation(vec![FieldError::new(
                "validationToken",
                format!("must be 1 to {MAX_VALIDATION_TOKEN} characters"),
            )]));
        }
        metrics::counter!(PUSHES, "outcome" => "validated", "provider" => "microsoft").increment(1);
        return Ok((
            axum::http::StatusCode::OK,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            token,
        )
            .into_response());
    }
    let notices = parse_graph_notices(&body).inspect_err(|_| {
        metrics::counter!(PUSHES, "outcome" => "malformed", "provider" => "microsoft").increment(1);
    })?;
    let mut queued = 0u64;
    let mut refused = 0usize;
    for notice in &notices {
        let outcome = state
            .autodraft
            .graph_notification(&notice.subscription_id, &notice.client_state)
            .await?;
        metrics::counter!(PUSHES, "outcome" => outcome.as_str(), "provider" => "microsoft")
            .increment(1);
        match outcome {
            GraphNotification::Queued => queued += 1,
            GraphNotification::UnknownSubscription => tracing::debug!(
                "a Graph notification for a subscription no mailbox has (lapsed or replaced); ignored"
            ),
            GraphNotification::WrongClientState => refused += 1,
        }
    }
    if refused > 0 {
        // Once per post, however many it names.
        tracing::warn!(
            event = "graph_notification_refused",
            refused,
            "Graph notifications whose clientState is not their subscription's; ignored (not from Graph)"
        );
    }
    Ok((
        axum::http::StatusCode::ACCEPTED,
        Json(json!({ "mailboxes": queued })),
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn graph_notifications_are_read_as_graph_posts_them() {
        let body = json!({"value": [
            {"subscriptionId": "s1", "clientState": "c1", "changeType": "created", "resource": "Users/u/Messages/m1"},
            {"subscriptionId": "s1", "clientState": "c1", "changeType": "created", "resource": "Users/u/Messages/m2"},
            {"subscriptionId": "s2", "changeType": "created"}
        ]});
        let notices = parse_graph_notices(body.to_string().as_bytes()).unwrap();
        assert_eq!(
            notices,
            vec![
                GraphNotice {
                    subscription_id: "s1".into(),
                    client_state: "c1".into()
                },
                GraphNotice {
                    subscription_id: "s2".into(),
                    client_state: String::new()
                },
            ]
        );
    }

    #[test]
    fn unusable_graph_notifications_name_the_field() {
        let field_of = |body: Value| match parse_graph_notices(body.to_string().as_bytes()) {
            Err(ApiError::Validation(errors)) => errors[0].field.clone(),
            other => panic!("{other:?}"),
        };
        assert_eq!(field_of(json!({})), "value");
        assert_eq!(field_of(json!({"value": {}})), "value");
        assert_eq!(
            field_of(json!({"value": [{"clientState": "c"}]})),
            "value[0].subscriptionId"
        );
        assert_eq!(
            field_of(json!({"value": [{"subscriptionId": "s", "clientState": "x".repeat(129)}]})),
            "value[0].clientState"
        );
        let many: Vec<Value> = (0..101)
            .map(|i| json!({"subscriptionId": format!("s{i}")}))
            .collect();
        assert_eq!(field_of(json!({ "value": many })), "value");
        // A burst of one subscription's notifications is one notice.
        let burst: Vec<Value> = (0..500)
            .map(|_| json!({"subscriptionId": "s", "clientState": "c"}))
            .collect();
        assert_eq!(
            parse_graph_notices(json!({ "value": burst }).to_string().as_bytes())
                .unwrap()
                .len(),
            1
        );
        assert!(matches!(
            parse_graph_notices(b"not json"),
            Err(ApiError::MalformedBody(_))
        ));
    }

    fn push_body(inner: &str) -> Vec<u8> {
        let data = base64::engine::general_purpose::STANDARD.encode(inner);
        serde_json::to_vec(&json!({"message": {"data": data, "messageId": "1"}, "subscription": "projects/p/subscriptions/s"}))
            .unwrap()
    }

    #[test]
    fn push_bodies_are_read_as_gmail_sends_them() {
        assert_eq!(
            parse_push(&push_body(
                r#"{"emailAddress":"ann@example.com","historyId":9876}"#
            )),
            Some(GmailNotification {
                email: "ann@example.com".into(),
                history_id: Some(9876)
            })
        );
        assert_eq!(
            parse_push(&push_body(
                r#"{"emailAddress":"ann@example.com","historyId":"12"}"#
            ))
            .and_then(|n| n.history_id),
            Some(12)
        );
    }

    #[test]
    fn unusable_push_bodies_are_none() {
        assert_eq!(parse_push(b"not json"), None);
        assert_eq!(parse_push(br#"{"message":{}}"#), None);
        assert_eq!(parse_push(&push_body("{}")), None);
        assert_eq!(parse_push(&push_body(r#"{"emailAddress":"nobody"}"#)), None);
    }
}
