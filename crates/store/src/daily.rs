//! Numbers per day for the pages' charts and the home page: auto-draft's
//! outcomes per mailbox and workflow runs per workflow, grouped by UTC day
//! in the database, so the answer is bounded by the days asked for, not by
//! how much mail or how many runs there were.

use chrono::{DateTime, NaiveDate, Utc};
use domain::{IntegrationId, WorkspaceId};
use uuid::Uuid;

use crate::workflows::{RUN_VIEW_COLUMNS, Run, RunRow};
use crate::{Backend, Store, StoreError, in_workspace};

/// How many of one kind ended (or started) on one day.
#[derive(Debug, Clone, PartialEq)]
pub struct DayCount {
    pub day: NaiveDate,
    /// The message's or run's status.
    pub status: String,
    pub count: i64,
    /// Runs only: the mean and longest time from start to end, in seconds,
    /// of those that ended.
    pub mean_seconds: Option<f64>,
    pub max_seconds: Option<f64>,
}

/// The UTC day of a timestamp column, as `YYYY-MM-DD` text.
fn day_of(backend: Backend, column: &str) -> String {
    match backend {
        // Stored as RFC 3339 text in UTC: the day is its first ten characters.
        Backend::Sqlite => format!("substr({column}, 1, 10)"),
        Backend::Postgres => format!("to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM-DD')"),
    }
}

/// Seconds from `start` to `end` (NULL while `end` is).
fn seconds_between(backend: Backend, start: &str, end: &str) -> String {
    match backend {
        Backend::Sqlite => format!("((julianday({end}) - julianday({start})) * 86400.0)"),
        Backend::Postgres => format!("EXTRACT(EPOCH FROM ({end} - {start}))::float8"),
    }
}

type DayRow = (String, String, i64, Option<f64>, Option<f64>);

fn parse_days(rows: Vec<DayRow>) -> Result<Vec<DayCount>, StoreError> {
    rows.into_iter()
        .map(|(day, status, count, mean_seconds, max_seconds)| {
            let day = NaiveDate::parse_from_str(&day, "%Y-%m-%d")
                .map_err(|error| StoreError::Other(format!("day {day:?}: {error}").into()))?;
            Ok(DayCount {
                day,
                status,
                count,
                mean_seconds,
                max_seconds,
            })
        })
        .collect()
}

impl Store {
    /// Auto-draft's finished messages of one mailbox since `since`, per
    /// UTC day and status (`drafted`, `skipped`, `failed`).
    pub async fn autodraft_days(
        &self,
        workspace: WorkspaceId,
        integration: IntegrationId,
        since: DateTime<Utc>,
    ) -> Result<Vec<DayCount>, StoreError> {
        let day = day_of(self.backend(), "finished_at");
        let sql = format!(
            "SELECT {day} AS day, status, COUNT(*), NULL, NULL FROM autodraft_messages \
             WHERE workspace_id = $1 AND integration_id = $2 AND finished_at >= $3 \
               AND status IN ('drafted', 'skipped', 'failed') \
             GROUP BY 1, 2 ORDER BY 1"
        );
        let rows: Vec<DayRow> = in_workspace!(self, workspace, conn => {
            sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str()))
                .bind(workspace.as_uuid())
                .bind(integration.as_uuid())
                .bind(since)
                .fetch_all(&mut *conn)
                .await?
        });
        parse_days(rows)
    }

    /// A workflow's runs started since `since`, per UTC day and status,
    /// with how long the finished ones took.
    pub async fn run_days(
        &self,
        workspace: WorkspaceId,
        workflow_id: Uuid,
        since: DateTime<Utc>,
    ) -> Result<Vec<DayCount>, StoreError> {
        let backend = self.backend();
        let day = day_of(backend, "created_at");
        let seconds = seconds_between(backend, "created_at", "finished_at");
        let sql = format!(
            "SELECT {day} AS day, status, COUNT(*), AVG({seconds}), MAX({seconds}) FROM workflow_runs \
             WHERE workspace_id = $1 AND workflow_id = $2 AND created_at >= $3 \
             GROUP BY 1, 2 ORDER BY 1"
        );
        let rows: Vec<DayRow> = in_workspace!(self, workspace, conn => {
            sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str()))
                .bind(workspace.as_uuid())
                .bind(workflow_id)
                .bind(since)
                .fetch_all(&mut *conn)
                .await?
        });
        parse_days(rows)
    }

    /// The workspace's newest `limit` runs, of any workflow.
    pub async fn recent_runs(
        &self,
        workspace: WorkspaceId,
        limit: i64,
    ) -> Result<Vec<Run>, StoreError> {
        let sql = format!(
            "SELECT {RUN_VIEW_COLUMNS} FROM workflow_runs WHERE workspace_id = $1 \
             ORDER BY created_at DESC LIMIT $2"
        );
        let rows: Vec<RunRow> = in_workspace!(self, workspace, conn => {
            sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str()))
                .bind(workspace.as_uuid())
                .bind(limit)
                .fetch_all(&mut *conn)
                .await?
        });
        rows.into_iter().map(Run::try_from).collect()
    }

    /// How many of the workspace's runs started since `since` have failed.
    pub async fn failed_runs_since(
        &self,
        workspace: WorkspaceId,
        since: DateTime<Utc>,
    ) -> Result<i64, StoreError> {
        let count: i64 = in_workspace!(self, workspace, conn => {
            sqlx::query_scalar(
                "SELECT COUNT(*) FROM workflow_runs WHERE workspace_id = $1 AND created_at >= $2 AND status = 'failed'",
            )
            .bind(workspace.as_uuid())
            .bind(since)
            .fetch_one(&mut *conn)
            .await?
        });
        Ok(count)
    }
}
