//! The auto-draft page of one mailbox connection: the switch (disabled, with
//! the reason and a reconnect button, when the connection cannot draft),
//! numbers, last success and failure, the test action, recent drafts. It
//! calls the same services as `/api/integrations/{id}/auto-draft`.

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use chrono::{DateTime, Utc};
use domain::IntegrationId;
use domain::drafting::outcome::DraftOutcome;
use domain::drafting::rules::DraftRules;
use domain::drafting::style::StyleProfile;
use domain::scopes::IntegrationType;
use engine::error::ServiceError;
use minijinja::context;
use serde::{Deserialize, Serialize};

use super::charts;
use super::flash::Flash;
use super::render;
use super::session::{Posted, SessionForm, SignedIn, SwitchForm, attention};
use crate::app::AppState;
use crate::auth::{SessionUser, cookies};
use crate::http::ApiError;
use crate::http::autodraft::AutoDraftView;
use crate::http::integrations::reconnect_path_back_to;

/// "just now", "3 minutes ago", "2 hours ago", "5 days ago".
pub(super) fn ago(at: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let seconds = (now - at).num_seconds().max(0);
    let (amount, unit) = match seconds {
        0..=44 => return "just now".into(),
        45..=5_399 => ((seconds + 30) / 60, "minute"),
        5_400..=129_599 => ((seconds + 1_800) / 3_600, "hour"),
        _ => ((seconds + 43_200) / 86_400, "day"),
    };
    let amount = amount.max(1);
    format!("{amount} {unit}{} ago", if amount == 1 { "" } else { "s" })
}

/// Where a draft's conversation opens: Gmail, signed in as the mailbox; in
/// the demo, the sandbox inbox at that conversation. An IMAP mailbox has
/// no web address Mailwright knows: `None` (the person's mail client).
pub(super) fn conversation_url(
    state: &AppState,
    kind: IntegrationType,
    email: &str,
    thread_id: &str,
) -> Option<String> {
    // Only Gmail's conversations have a stable web address.
    if kind != IntegrationType::Gmail {
        return None;
    }
    if state.demo.is_some() {
        return Some(format!("/sandbox/inbox#thread-{thread_id}"));
    }
    let mut url = url::Url::parse("https://mail.google.com/mail/").expect("a valid URL");
    url.query_pairs_mut().append_pair("authuser", email);
    url.set_fragment(Some(&format!("all/{thread_id}")));
    Some(url.to_string())
}

/// Who wrote a draft, in words.
pub(super) fn generator_words(generator: &str) -> String {
    match generator.strip_prefix("llm:") {
        Some(model) => format!("written by {model}"),
        None if generator == "builtin" => "built-in drafter".to_owned(),
        None => generator.to_owned(),
    }
}

/// Drafts the page lists.
const RECENT_DRAFTS: i64 = 20;

#[derive(Deserialize)]
pub(super) struct PageQuery {
    notice: Option<String>,
    /// Back from a reconnect: `connected=<type>`, or `error=<code>`.
    connected: Option<String>,
    error: Option<String>,
}

fn integration_id(text: &str) -> Result<IntegrationId, ApiError> {
    IntegrationId::parse(text).map_err(|_| ApiError::NotFound)
}

async fn page(
    state: &AppState,
    session: &crate::auth::SessionUser,
    id: IntegrationId,
    notice: Option<String>,
    problem: Option<String>,
    test: Option<minijinja::Value>,
) -> Result<Response, ApiError> {
    let overview = state.autodraft.overview(session.workspace, id).await?;
    if !overview.integration.integration_type.is_mailbox() {
        return Err(ApiError::NotFound);
    }
    let now = Utc::now();
    let drafts: Vec<minijinja::Value> = state
        .autodraft
        .drafts(session.workspace, id, RECENT_DRAFTS)
        .await?
        .into_iter()
        .map(|draft| {
            let open_url = conversation_url(
                state,
                overview.integration.integration_type,
                &overview.integration.email,
                &draft.thread_id,
            );
            context! {
                draft_type => draft.draft_type,
                label => draft.draft_type_label,
                thread_id => draft.thread_id,
                generator => generator_words(&draft.generator),
                ago => ago(draft.created_at, now),
                at => draft.created_at.to_rfc3339(),
                subject => draft.summary.source_subject,
                from => draft.summary.source_from,
                excerpt => draft.summary.reply_excerpt,
                outcome_words => outcome_words(&draft.outcome, draft.changed_percent),
                outcome => draft.outcome,
                open_url,
            }
        })
        .collect();
    let days = charts::last_days(now.date_naive(), charts::CHART_DAYS);
    let day_counts = state
        .autodraft
        .days(session.workspace, id, charts::since(&days))
        .await?;
    let chart = charts::autodraft_chart(&days, &day_counts).map(minijinja::Value::from_safe_string);
    let last_success = overview.stats.last_success_at.map(|at| ago(at, now));
    let last_failure_ago = overview
        .last_failure
        .as_ref()
        .map(|error| ago(error.at, now));
    let next_retry_in = overview.stats.next_retry.as_ref().map(|retry| {
        let seconds = (retry.at - now).num_seconds().max(0);
        if seconds < 120 {
            format!("in {seconds} s")
        } else {
            format!("in {} min", seconds / 60)
        }
    });
    let email = overview.integration.email.clone();
    let blocked = overview.blocked.clone();
    let kind = overview.integration.integration_type;
    let autodraft = AutoDraftView::new(overview, state.config.autodraft.poll_interval);
    let attention = attention(state, session.workspace).await?;
    render(
        StatusCode::OK,
        "autodraft.html",
        context! {
            signed_in => true,
            attention,
            csrf => session.csrf_token.clone(),
            id => id.to_string(),
            email,
            blocked,
            reconnect_url => reconnect_path_back_to(id, &format!("/autodraft/{id}")),
            autodraft => minijinja::Value::from_serialize(&autodraft),
            last_success,
            last_failure_ago,
            next_retry_in,
            drafts,
            chart,
            demo => state.demo.is_some(),
            // What the page calls the mailbox ("Gmail", "your mailbox").
            imap => kind == IntegrationType::Imap,
            outlook => kind == IntegrationType::Outlook,
            mailbox_name => match kind {
                IntegrationType::Imap => "your mailbox",
                _ => "Gmail",
            },
            notice,
            problem,
            test,
        },
    )
}

/// The auto-draft page of a mailbox connection.
#[utoipa::path(get, path = "/autodraft/{id}", tag = "ui", params(("id" = String, Path)),
    responses((status = 200, content_type = "text/html"), (status = 303), (status = 404)))]
pub(super) async fn autodraft_page(
    State(state): State<AppState>,
    SignedIn(session): SignedIn,
    Path(id): Path<String>,
    Query(query): Query<PageQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let id = integration_id(&id)?;
    let notice = match (query.notice.as_deref(), &query.connected) {
        (Some("on"), _) => Some("Auto-draft is on: new mail gets a reply draft.".to_owned()),
        (Some("off"), _) => Some("Auto-draft is off.".to_owned()),
        (Some("preferences"), _) => Some("Saved: new drafts follow them.".to_owned()),
        (_, Some(_)) => Some("Reconnected: auto-draft can use this connection again.".to_owned()),
        _ => None,
    };
    let problem = query
        .error
        .as_deref()
        .map(|code| super::integrations::explain_connect_error(code).to_owned());
    let purpose = test_purpose(id);
    let flash = test_flash(&session, &purpose);
    let test = flash
        .open(&state, &headers)
        .and_then(|plain| serde_json::from_slice::<TestResult>(&plain).ok())
        .map(|result| minijinja::Value::from_serialize(&result));
    let shows_test = test.is_some();
    let mut response = page(&state, &session, id, notice, problem, test).await?;
    if shows_test {
        flash.consumed(&state, &mut response);
    }
    Ok(response)
}

/// Turn auto-draft on or off from the page.
#[utoipa::path(post, path = "/autodraft/{id}/switch", tag = "ui", params(("id" = String, Path)),
    responses((status = 303, description = "Back to the page"), (status = 200, content_type = "text/html", description = "The page with the reason it could not be switched on")))]
pub(super) async fn switch(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Posted(session, form): Posted<SwitchForm>,
) -> Result<Response, ApiError> {
    let id = integration_id(&id)?;
    let on = form.is_on();
    let result = if on {
        state.autodraft.enable(session.workspace, id).await
    } else {
        state.autodraft.disable(session.workspace, id).await
    };
    match result {
        Ok(_) => Ok(Redirect::to(&format!(
            "/autodraft/{id}?notice={}",
            if on { "on" } else { "off" }
        ))
        .into_response()),
        Err(error) => match refusal_words(error) {
            Ok(problem) => page(&state, &session, id, None, Some(problem), None).await,
            Err(error) => Err(error),
        },
    }
}

/// A draft's outcome in words ("sent after edits (40% changed)").
fn outcome_words(outcome: &str, changed_percent: Option<i32>) -> String {
    let words = DraftOutcome::parse(outcome)
        .map_or_else(|| outcome.to_owned(), |known| known.describe().to_owned());
    match changed_percent {
        Some(percent) => format!("{words} ({percent}% changed)"),
        None => words.to_owned(),
    }
}

/// Switch the clean-up on (with its default days) or off from the page.
#[utoipa::path(post, path = "/autodraft/{id}/cleanup", tag = "ui", params(("id" = String, Path)),
    responses((status = 303, description = "Back to the page")))]
pub(super) async fn cleanup_switch(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Posted(session, form): Posted<SwitchForm>,
) -> Result<Response, ApiError> {
    let id = integration_id(&id)?;
    let days = form
        .is_on()
        .then_some(engine::autodraft::DEFAULT_CLEANUP_DAYS);
    state
        .autodraft
        .set_cleanup(session.workspace, id, days)
        .await?;
    Ok(Redirect::to(&format!("/autodraft/{id}?notice=preferences")).into_response())
}

#[derive(Deserialize)]
pub(super) struct StyleForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    action: String,
    #[serde(default)]
    greeting: String,
    #[serde(default)]
    sign_off: String,
}

impl SessionForm for StyleForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

/// Keep the greeting and sign-off the person set, or forget the style and
/// learn it again.
#[utoipa::path(post, path = "/autodraft/{id}/style", tag = "ui", params(("id" = String, Path)),
    responses((status = 303, description = "Back to the page"), (status = 200, content_type = "text/html", description = "The page saying what to fix")))]
pub(super) async fn style(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Posted(session, form): Posted<StyleForm>,
) -> Result<Response, ApiError> {
    let id = integration_id(&id)?;
    let style = if form.action == "reset" {
        None
    } else {
        let current = state.autodraft.overview(session.workspace, id).await?.style;
        let given = |text: &str| Some(text.trim().to_owned()).filter(|text| !text.is_empty());
        Some(StyleProfile {
            greeting: given(&form.greeting),
            sign_off: given(&form.sign_off),
            ..current.unwrap_or_else(|| StyleProfile {
                formality: "neutral".into(),
                ..StyleProfile::default()
            })
        })
    };
    match state
        .autodraft
        .set_style(session.workspace, id, style)
        .await
    {
        Ok(()) => Ok(Redirect::to(&format!("/autodraft/{id}?notice=preferences")).into_response()),
        Err(ServiceError::Invalid(problems)) => {
            let words: Vec<String> = problems.iter().map(|problem| problem.in_words()).collect();
            page(&state, &session, id, None, Some(words.join(" ")), None).await
        }
        Err(error) => Err(error.into()),
    }
}

#[derive(Deserialize)]
pub(super) struct PreferencesForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    instructions: String,
    /// One address, `*@example.com` pattern or domain per line.
    #[serde(default)]
    always: String,
    #[serde(default)]
    never: String,
    #[serde(default)]
    skip_cold_outreach: Option<String>,
    /// 0 to 100; empty: no threshold.
    #[serde(default)]
    min_confidence: String,
}

impl SessionForm for PreferencesForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

/// The lines of a list field, trimmed, empty ones dropped.
fn lines(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Keep the instructions and the always/never lists from the page.
#[utoipa::path(post, path = "/autodraft/{id}/preferences", tag = "ui", params(("id" = String, Path)),
    responses((status = 303, description = "Back to the page"), (status = 200, content_type = "text/html", description = "The page saying what to fix")))]
pub(super) async fn preferences(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Posted(session, form): Posted<PreferencesForm>,
) -> Result<Response, ApiError> {
    let id = integration_id(&id)?;
    let min_confidence = match form.min_confidence.trim() {
        "" => None,
        text => match text.parse::<u8>() {
            Ok(percent) => Some(percent),
            Err(_) => {
                let problem = "Minimum confidence must be a percentage from 0 to 100.".to_owned();
                return page(&state, &session, id, None, Some(problem), None).await;
            }
        },
    };
    let rules = DraftRules {
        always: lines(&form.always),
        never: lines(&form.never),
        skip_cold_outreach: form.skip_cold_outreach.is_some(),
        min_confidence,
    };
    let saved = state
        .autodraft
        .set_preferences(session.workspace, id, Some(&form.instructions), Some(rules))
        .await;
    match saved {
        Ok(()) => Ok(Redirect::to(&format!("/autodraft/{id}?notice=preferences")).into_response()),
        Err(ServiceError::Invalid(problems)) => {
            let words: Vec<String> = problems.iter().map(|problem| problem.in_words()).collect();
            page(&state, &session, id, None, Some(words.join(" ")), None).await
        }
        Err(error) => Err(error.into()),
    }
}

/// A refused action in words for the page; what the page cannot show (not
/// found, a failure of ours) is answered as an error.
fn refusal_words(error: ServiceError) -> Result<String, ApiError> {
    match error {
        ServiceError::Connection { message, .. }
        | ServiceError::ProviderUnavailable(message)
        | ServiceError::ProviderError(message)
        | ServiceError::Conflict(message) => Ok(message),
        ServiceError::Invalid(_) => Ok("That did not work; try again.".into()),
        other => Err(other.into()),
    }
}

#[derive(Deserialize)]
pub(super) struct TestForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    create_draft: Option<String>,
}

impl SessionForm for TestForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

/// The test's result as the page shows it; it travels to the page in a
/// sealed cookie, so the draft text is capped to fit one.
#[derive(Serialize, Deserialize)]
struct TestResult {
    subject: Option<String>,
    label: Option<String>,
    body: Option<String>,
    /// The text was longer than the cookie holds.
    shortened: bool,
    skipped: Option<String>,
    created_in_gmail: bool,
    /// Why the test could not run.
    problem: Option<String>,
}

/// Draft text carried to the page (bytes, cut at a character boundary).
const TEST_TEXT_LIMIT: usize = 1_500;

impl TestResult {
    fn from_outcome(outcome: engine::autodraft::TestOutcome) -> TestResult {
        let mut body = outcome.body;
        let shortened = body.len() > TEST_TEXT_LIMIT;
        if shortened {
            let mut cut = TEST_TEXT_LIMIT;
            while !body.is_char_boundary(cut) {
                cut -= 1;
            }
            body.truncate(cut);
        }
        TestResult {
            subject: Some(outcome.subject),
            label: Some(outcome.draft_type_label),
            body: Some(body),
            shortened,
            skipped: outcome.skipped.map(|reason| reason.describe().to_owned()),
            created_in_gmail: outcome.draft_id.is_some(),
            problem: None,
        }
    }

    fn refused(problem: String) -> TestResult {
        TestResult {
            subject: None,
            label: None,
            body: None,
            shortened: false,
            skipped: None,
            created_in_gmail: false,
            problem: Some(problem),
        }
    }
}

/// The test result travels only to this user's page of this connection.
fn test_flash<'a>(session: &'a SessionUser, purpose: &'a str) -> Flash<'a> {
    Flash {
        cookie: cookies::AUTODRAFT_TEST,
        session,
        purpose,
    }
}

fn test_purpose(id: IntegrationId) -> String {
    format!("autodraft_test:{id}")
}

/// Run the pipeline on the newest inbox message, then show the result on
/// the page (redirect-after-post: a reload creates no second draft).
#[utoipa::path(post, path = "/autodraft/{id}/test", tag = "ui", params(("id" = String, Path)),
    responses((status = 303, description = "To the page, which shows the result once")))]
pub(super) async fn test(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Posted(session, form): Posted<TestForm>,
) -> Result<Response, ApiError> {
    let id = integration_id(&id)?;
    let create = form.create_draft.as_deref() == Some("on");
    let result = match state
        .autodraft
        .test(session.workspace, id, None, create)
        .await
    {
        Ok(outcome) => TestResult::from_outcome(outcome),
        Err(error) => TestResult::refused(refusal_words(error)?),
    };
    let mut response = Redirect::to(&format!("/autodraft/{id}#test-result")).into_response();
    let plain = serde_json::to_vec(&result)
        .map_err(|error| ApiError::Internal(anyhow::anyhow!("test result: {error}")))?;
    test_flash(&session, &test_purpose(id)).attach(&state, &mut response, &plain);
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::ago;
    use chrono::{Duration, Utc};

    #[test]
    fn times_read_like_people_say_them() {
        let now = Utc::now();
        assert_eq!(ago(now - Duration::seconds(10), now), "just now");
        assert_eq!(ago(now - Duration::minutes(1), now), "1 minute ago");
        assert_eq!(ago(now - Duration::minutes(3), now), "3 minutes ago");
        assert_eq!(ago(now - Duration::hours(2), now), "2 hours ago");
        assert_eq!(ago(now - Duration::days(5), now), "5 days ago");
        assert_eq!(ago(now + Duration::minutes(5), now), "just now");
    }
}
