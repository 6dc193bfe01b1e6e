//! The state of a connection being made: issued with the consent URL,
//! consumed once by Google's redirect.

use super::*;

impl Store {
    pub async fn create_oauth_state(
        &self,
        state_hash: &str,
        state: &OAuthState,
    ) -> Result<(), StoreError> {
        in_workspace!(self, state.workspace, conn => {
            sqlx::query(
                "INSERT INTO oauth_states (state_hash, workspace_id, user_id, integration_type, code_verifier, \
                                           requested_scopes, return_to, created_at, expires_at, started_by) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            )
            .bind(state_hash)
            .bind(state.workspace.as_uuid())
            .bind(state.user.as_uuid())
            .bind(state.integration_type.as_str())
            .bind(&state.code_verifier)
            .bind(&state.requested_scopes)
            .bind(&state.return_to)
            .bind(now())
            .bind(state.expires_at)
            .bind(state.started_by.as_str())
            .execute(&mut *conn)
            .await?;
        });
        Ok(())
    }

    /// Find and consume a callback's `state`: it works once. The callback
    /// carries no credentials, so this searches every workspace.
    /// Delete consent states that expired before `before` (callers keep a
    /// grace period, so a late callback is still told its state expired
    /// rather than unknown); how many.
    pub async fn purge_expired_oauth_states(
        &self,
        before: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        Ok(across_workspaces!(self, conn => {
            sqlx::query("DELETE FROM oauth_states WHERE expires_at < $1")
                .bind(before)
                .execute(&mut *conn)
                .await?
                .rows_affected()
        }))
    }

    pub async fn consume_oauth_state(&self, state_hash: &str) -> Result<StateLookup, StoreError> {
        let at = now();
        let (consumed, exists): (Option<OAuthStateRow>, bool) = across_workspaces!(self, conn => {
            let consumed: Option<OAuthStateRow> = sqlx::query_as(
                "UPDATE oauth_states SET consumed_at = $1 WHERE state_hash = $2 AND consumed_at IS NULL \
                 RETURNING workspace_id, user_id, integration_type, code_verifier, requested_scopes, return_to, expires_at, \
                           started_by",
            )
            .bind(at)
            .bind(state_hash)
            .fetch_optional(&mut *conn)
            .await?;
            let exists = consumed.is_some()
                || sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM oauth_states WHERE state_hash = $1")
                    .bind(state_hash)
                    .fetch_one(&mut *conn)
                    .await?
                    > 0;
            (consumed, exists)
        });
        let Some(row) = consumed else {
            return Ok(if exists {
                StateLookup::AlreadyUsed
            } else {
                StateLookup::Unknown
            });
        };
        let integration_type = IntegrationType::parse(&row.integration_type).ok_or_else(|| {
            StoreError::Other(
                format!("oauth state with unknown type `{}`", row.integration_type).into(),
            )
        })?;
        let state = OAuthState {
            workspace: WorkspaceId::from_uuid(row.workspace_id),
            user: UserId::from_uuid(row.user_id),
            integration_type,
            code_verifier: row.code_verifier,
            requested_scopes: row.requested_scopes,
            return_to: row.return_to,
            expires_at: row.expires_at,
            started_by: StartedBy::parse(&row.started_by),
        };
        Ok(if state.expires_at <= at {
            StateLookup::Expired(state)
        } else {
            StateLookup::Fresh(state)
        })
    }
}
