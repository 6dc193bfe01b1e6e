//! The daily connection health check's bookkeeping: which connections are
//! due, and claiming one so that of several replicas exactly one checks it.

use super::*;

/// A connection whose check is due: `since` is when it was last checked (or
/// connected), the value its claim compares against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DueCheck {
    pub workspace: WorkspaceId,
    pub integration: IntegrationId,
    pub since: DateTime<Utc>,
}

impl Store {
    /// Up to `limit` usable connections (connected, or missing scopes) last
    /// checked, or connected and never checked, at or before `before`,
    /// oldest first, in every workspace.
    pub async fn due_connection_checks(
        &self,
        before: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<DueCheck>, StoreError> {
        let rows: Vec<(Uuid, Uuid, DateTime<Utc>)> = across_workspaces!(self, conn => {
            sqlx::query_as(
                "SELECT workspace_id, id, COALESCE(checked_at, connected_at) AS since FROM integrations \
                 WHERE status IN ('connected', 'missing_scopes') AND COALESCE(checked_at, connected_at) <= $1 \
                 ORDER BY since LIMIT $2",
            )
            .bind(before)
            .bind(limit)
            .fetch_all(&mut *conn)
            .await?
        });
        Ok(rows
            .into_iter()
            .map(|(workspace, integration, since)| DueCheck {
                workspace: WorkspaceId::from_uuid(workspace),
                integration: IntegrationId::from_uuid(integration),
                since,
            })
            .collect())
    }

    /// Take the check of `due` (compare-and-set on when it was last
    /// checked): `false` when another process took it first.
    pub async fn claim_connection_check(
        &self,
        due: &DueCheck,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let claimed = in_workspace!(self, due.workspace, conn => {
            sqlx::query(
                "UPDATE integrations SET checked_at = $1 \
                 WHERE workspace_id = $2 AND id = $3 AND COALESCE(checked_at, connected_at) = $4",
            )
            .bind(now)
            .bind(due.workspace.as_uuid())
            .bind(due.integration.as_uuid())
            .bind(due.since)
            .execute(&mut *conn)
            .await?
            .rows_affected()
        });
        Ok(claimed == 1)
    }
}
