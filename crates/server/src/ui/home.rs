//! The home page: "is everything all right?" in one screen. Each mailbox
//! with its status and the next thing to do, auto-draft's numbers for today
//! and the last 7 days, the latest drafts and runs, and anything failing.

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use chrono::{Duration, Utc};
use domain::explain::explain;
use domain::scopes::{IntegrationStatus, IntegrationType};
use minijinja::context;
use serde::Deserialize;

use super::autodraft::{ago, conversation_url, generator_words};
use super::integrations::explain_connect_error;
use super::session::attention;
use super::{render, see_other};
use crate::app::AppState;
use crate::auth::{MaybeAuthUser, SessionUser};
use crate::http::ApiError;
use crate::http::integrations::reconnect_path_back_to;

/// Mailboxes shown in detail (a workspace with more is sent to Connections).
const MAILBOXES_SHOWN: usize = 20;
/// Drafts and runs listed.
const LATEST: usize = 5;

#[derive(Deserialize)]
pub(super) struct HomeQuery {
    /// Back from connecting: `connected=<type>`, or `error=<code>`.
    connected: Option<String>,
    error: Option<String>,
}

/// The home page when signed in; otherwise sign-in (or setup on first run).
#[utoipa::path(get, path = "/", tag = "ui", responses((status = 200, content_type = "text/html"), (status = 303)))]
pub(super) async fn home(
    State(state): State<AppState>,
    MaybeAuthUser(session): MaybeAuthUser,
    Query(query): Query<HomeQuery>,
) -> Result<Response, ApiError> {
    let Some(session) = session else {
        return Ok(if !state.accounts.has_users().await? {
            see_other("/setup")
        } else {
            see_other("/signin")
        });
    };
    let (user, workspace) = state
        .accounts
        .member(session.workspace, session.user)
        .await?;
    let overview = overview(&state, &session).await?;
    let attention = attention(&state, session.workspace).await?;
    render(
        StatusCode::OK,
        "home.html",
        context! {
            signed_in => true,
            attention,
            csrf => session.csrf_token,
            email => user.email,
            workspace => workspace.name,
            google_configured => state.vault.google().is_some(),
            demo => state.demo.is_some(),
            notice => query.connected.as_deref().map(|kind| match kind {
                "outlook" => "Outlook connected.",
                "imap" => "Mailbox connected.",
                "calendar" => "Google Calendar connected.",
                _ => "Gmail connected.",
            }),
            problem => query.error.as_deref().map(explain_connect_error),
            ..overview
        },
    )
}

/// Everything the page shows but the greeting.
async fn overview(state: &AppState, session: &SessionUser) -> Result<minijinja::Value, ApiError> {
    let workspace = session.workspace;
    let now = Utc::now();
    let today = now.date_naive();
    let week_start = today - chrono::Days::new(6);
    let since = week_start
        .and_hms_opt(0, 0, 0)
        .map(|start| start.and_utc())
        .unwrap_or(now);

    let connections = state.connections.list(workspace).await?;
    let more_mailboxes = connections.len() > MAILBOXES_SHOWN;
    let mut mailboxes = Vec::new();
    let mut failing = Vec::new();
    let mut drafts = Vec::new();
    let (mut drafted_today, mut drafted_week) = (0, 0);
    let (mut skipped_week, mut failed_week) = (0, 0);
    for integration in connections.iter().take(MAILBOXES_SHOWN) {
        let explanation = explain(integration.status, Some(&integration.email), &[]);
        let reconnect_url = explanation
            .needs_reconnect()
            .then(|| reconnect_path_back_to(integration.id, "/"));
        // Broken, not chosen: a connection someone disconnected is listed
        // with its reconnect button, but nothing is failing.
        let broken = matches!(
            integration.status,
            IntegrationStatus::NeedsReauth | IntegrationStatus::MissingScopes
        );
        if let (true, Some(url)) = (broken, &reconnect_url) {
            failing.push(context! {
                text => format!("{}: {}", integration.email, explanation.label),
                url => url,
                action => "Reconnect",
            });
        }
        if !integration.integration_type.is_mailbox() {
            mailboxes.push(context! {
                email => integration.email,
                kind => "Google Calendar",
                is_mailbox => false,
                status => integration.status.as_str(),
                status_words => explanation.label,
                reconnect_url,
            });
            continue;
        }
        let id = integration.id;
        let autodraft_url = format!("/autodraft/{id}");
        let autodraft = state.autodraft.overview(workspace, id).await?;
        let days = state.autodraft.days(workspace, id, since).await?;
        let count = |status: &str, from: chrono::NaiveDate| -> i64 {
            days.iter()
                .filter(|day| day.status == status && day.day >= from)
                .map(|day| day.count)
                .sum()
        };
        let (today_drafted, week_drafted) = (count("drafted", today), count("drafted", week_start));
        let (week_skipped, week_failed) =
            (count("skipped", week_start), count("failed", week_start));
        drafted_today += today_drafted;
        drafted_week += week_drafted;
        skipped_week += week_skipped;
        failed_week += week_failed;
        if count("failed", today) > 0 {
            failing.push(context! {
                text => format!("{}: {} message(s) got no draft today because of a failure", integration.email, count("failed", today)),
                url => autodraft_url.clone(),
                action => "See why",
            });
        }
        if autodraft.enabled && autodraft.stats.retrying > 0 {
            failing.push(context! {
                text => format!("{}: {} message(s) waiting to be tried again", integration.email, autodraft.stats.retrying),
                url => autodraft_url.clone(),
                action => "See why",
            });
        }
        let next = match (integration.status, autodraft.enabled) {
            (IntegrationStatus::Connected, true) => None,
            (IntegrationStatus::Connected, false) if autodraft.blocked.is_none() => {
                Some(("Switch auto-draft on", autodraft_url.clone()))
            }
            _ => None,
        };
        for draft in state.autodraft.drafts(workspace, id, LATEST as i64).await? {
            drafts.push((
                draft,
                integration.email.clone(),
                integration.integration_type,
            ));
        }
        mailboxes.push(context! {
            email => integration.email,
            kind => mailbox_kind(integration.integration_type),
            is_mailbox => true,
            status => integration.status.as_str(),
            status_words => explanation.label,
            reconnect_url,
            autodraft_on => autodraft.enabled,
            autodraft_url,
            next_action => next.map(|(words, url)| context! { words, url }),
            today_drafted,
            week_drafted,
            week_skipped,
            week_failed,
        });
    }

    drafts.sort_by_key(|(draft, _, _)| std::cmp::Reverse(draft.created_at));
    let drafts: Vec<minijinja::Value> = drafts
        .into_iter()
        .take(LATEST)
        .map(|(draft, email, kind)| {
            context! {
                subject => draft.summary.source_subject,
                from => draft.summary.source_from,
                label => draft.draft_type_label,
                generator => generator_words(&draft.generator),
                mailbox => email,
                ago => ago(draft.created_at, now),
                at => draft.created_at.to_rfc3339(),
                open_url => conversation_url(state, kind, &email, &draft.thread_id),
            }
        })
        .collect();

    let names: HashMap<uuid::Uuid, String> = state
        .workflows
        .list(workspace)
        .await?
        .into_iter()
        .map(|workflow| (workflow.id, workflow.name))
        .collect();
    let runs: Vec<minijinja::Value> = state
        .workflows
        .recent_runs(workspace, LATEST as i64)
        .await?
        .into_iter()
        .map(|run| {
            context! {
                id => run.id.to_string(),
                workflow => names.get(&run.workflow_id).cloned().unwrap_or_else(|| "a deleted workflow".to_owned()),
                workflow_id => run.workflow_id.to_string(),
                status => run.status.as_str(),
                ago => ago(run.created_at, now),
                at => run.created_at.to_rfc3339(),
                error => run.error.map(|error| error.message),
            }
        })
        .collect();
    let failed_runs = state
        .workflows
        .failed_runs_since(workspace, now - Duration::hours(24))
        .await?;
    if failed_runs > 0 {
        failing.push(context! {
            text => format!("{failed_runs} workflow run(s) failed in the last 24 hours"),
            url => "/workflows",
            action => "See the runs",
        });
    }

    Ok(context! {
        mailboxes,
        more_mailboxes,
        has_mailbox => connections.iter().any(|i| i.integration_type.is_mailbox()),
        failing,
        drafts,
        runs,
        has_workflows => !names.is_empty(),
        totals => context! { drafted_today, drafted_week, skipped_week, failed_week },
    })
}

/// A mailbox's kind in words.
fn mailbox_kind(kind: IntegrationType) -> &'static str {
    match kind {
        IntegrationType::Imap => "IMAP",
        _ => "Gmail",
    }
}
