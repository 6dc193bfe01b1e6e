//! Leases of IMAP IDLE connections: which process follows a mailbox by
//! IDLE, until when. A process takes a lease that is free, lapsed or its
//! own, and renews it while it holds the connection; several replicas never
//! IDLE on the same mailbox twice, and a mailbox whose holder died is taken
//! over when the lease lapses.

use super::*;

impl Store {
    /// Mailboxes of connected IMAP integrations that are synced (auto-draft
    /// on, or a workflow watching) and whose IDLE lease is free, lapsed or
    /// `owner`'s, in every workspace; at most `limit`.
    pub async fn idle_candidates(
        &self,
        owner: Uuid,
        at: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<(WorkspaceId, IntegrationId)>, StoreError> {
        let rows: Vec<(Uuid, Uuid)> = across_workspaces!(self, conn => {
            sqlx::query_as(concat!(
                "SELECT m.workspace_id, m.integration_id FROM autodraft_mailboxes m \
                 JOIN integrations i ON i.id = m.integration_id \
                 WHERE i.provider = 'imap' AND i.status = 'connected' AND m.history_id IS NOT NULL \
                     AND (m.idle_until IS NULL OR m.idle_until < $1 OR m.idle_owner = $2) AND ",
                synced!("m"),
                " ORDER BY m.integration_id LIMIT $3"
            ))
            .bind(at)
            .bind(owner)
            .bind(limit)
            .fetch_all(&mut *conn)
            .await?
        });
        Ok(rows
            .into_iter()
            .map(|(workspace, integration)| {
                (
                    WorkspaceId::from_uuid(workspace),
                    IntegrationId::from_uuid(integration),
                )
            })
            .collect())
    }

    /// Take or renew the IDLE lease of the mailbox for `owner` until
    /// `until`: `false` when another process holds it, or the mailbox is no
    /// longer synced or its connection no longer usable.
    pub async fn hold_idle_lease(
        &self,
        workspace: WorkspaceId,
        integration: IntegrationId,
        owner: Uuid,
        until: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let at = now();
        let updated = in_workspace!(self, workspace, conn => {
            sqlx::query(concat!(
                "UPDATE autodraft_mailboxes SET idle_owner = $1, idle_until = $2 \
                 WHERE workspace_id = $3 AND integration_id = $4 AND history_id IS NOT NULL \
                     AND (idle_until IS NULL OR idle_until < $5 OR idle_owner = $1) \
                     AND EXISTS (SELECT 1 FROM integrations i WHERE i.id = autodraft_mailboxes.integration_id \
                         AND i.workspace_id = autodraft_mailboxes.workspace_id AND i.status = 'connected') AND ",
                synced!("autodraft_mailboxes")
            ))
            .bind(owner)
            .bind(until)
            .bind(workspace.as_uuid())
            .bind(integration.as_uuid())
            .bind(at)
            .execute(&mut *conn)
            .await?
            .rows_affected()
        });
        Ok(updated == 1)
    }

    /// Give the lease up (the connection is closed), if `owner` holds it.
    pub async fn release_idle_lease(
        &self,
        workspace: WorkspaceId,
        integration: IntegrationId,
        owner: Uuid,
    ) -> Result<(), StoreError> {
        in_workspace!(self, workspace, conn => {
            sqlx::query(
                "UPDATE autodraft_mailboxes SET idle_owner = NULL, idle_until = NULL \
                 WHERE workspace_id = $1 AND integration_id = $2 AND idle_owner = $3",
            )
            .bind(workspace.as_uuid())
            .bind(integration.as_uuid())
            .bind(owner)
            .execute(&mut *conn)
            .await?;
        });
        Ok(())
    }
}
