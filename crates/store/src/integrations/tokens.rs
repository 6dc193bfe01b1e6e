//! A connection's tokens: read with it, refreshed under a lease, expired
//! when Google rejects them, re-encrypted when keys rotate, and the key
//! checks.

use super::*;

impl Store {
    /// The integration and its tokens (if any) in one query (on PostgreSQL a
    /// function that scopes it: one round trip, in the baseline migration): what every
    /// use of a token needs first.
    pub async fn integration_with_tokens(
        &self,
        workspace: WorkspaceId,
        id: IntegrationId,
    ) -> Result<(Integration, Option<StoredTokens>), StoreError> {
        #[derive(sqlx::FromRow)]
        struct Row {
            #[sqlx(flatten)]
            integration: IntegrationRow,
            access_key_id: Option<String>,
            access_token: Option<Vec<u8>>,
            refresh_key_id: Option<String>,
            refresh_token: Option<Vec<u8>>,
            token_expires_at: Option<DateTime<Utc>>,
            version: Option<i32>,
            refresh_lease_until: Option<DateTime<Utc>>,
        }
        let sql = integration_with_tokens_sql(self.backend());
        let row: Option<Row> = on_pool!(self, pool => {
            sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str()))
                .bind(workspace.as_uuid())
                .bind(id.as_uuid())
                .fetch_optional(pool)
                .await?
        });
        let row = row.ok_or(StoreError::NotFound)?;
        let tokens = match (
            row.access_key_id,
            row.access_token,
            row.token_expires_at,
            row.version,
        ) {
            (Some(access_key_id), Some(access_token), Some(expires_at), Some(version)) => {
                Some(StoredTokens::from(TokenRow {
                    access_key_id,
                    access_token,
                    refresh_key_id: row.refresh_key_id,
                    refresh_token: row.refresh_token,
                    expires_at,
                    version,
                    refresh_lease_until: row.refresh_lease_until,
                }))
            }
            _ => None,
        };
        Ok((row.integration.try_into()?, tokens))
    }

    pub async fn tokens(
        &self,
        workspace: WorkspaceId,
        id: IntegrationId,
    ) -> Result<Option<StoredTokens>, StoreError> {
        let row: Option<TokenRow> = in_workspace!(self, workspace, conn => {
            sqlx::query_as(
                "SELECT access_key_id, access_token, refresh_key_id, refresh_token, expires_at, version, \
                        refresh_lease_until \
                 FROM oauth_tokens WHERE workspace_id = $1 AND integration_id = $2",
            )
            .bind(workspace.as_uuid())
            .bind(id.as_uuid())
            .fetch_optional(&mut *conn)
            .await?
        });
        Ok(row.map(StoredTokens::from))
    }

    /// Take the right to refresh: succeeds for one caller at a time, across
    /// processes, only over the token version the caller read, and never for
    /// an integration that needs reconnecting (checked in the same statement,
    /// so a refresh that just found the grant revoked stops everyone).
    pub async fn lease_token_refresh(
        &self,
        workspace: WorkspaceId,
        id: IntegrationId,
        version: i32,
        lease: Uuid,
        until: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let at = now();
        let taken = in_workspace!(self, workspace, conn => {
            sqlx::query(
                "UPDATE oauth_tokens SET refresh_lease_token = $1, refresh_lease_until = $2 \
                 WHERE workspace_id = $3 AND integration_id = $4 AND version = $5 \
                   AND (refresh_lease_until IS NULL OR refresh_lease_until < $6) \
                   AND EXISTS (SELECT 1 FROM integrations i WHERE i.workspace_id = $3 AND i.id = $4 \
                               AND i.status IN ('connected', 'missing_scopes'))",
            )
            .bind(lease)
            .bind(until)
            .bind(workspace.as_uuid())
            .bind(id.as_uuid())
            .bind(version)
            .bind(at)
            .execute(&mut *conn)
            .await?
            .rows_affected()
        });
        Ok(taken == 1)
    }

    /// Write refreshed tokens under the lease. `false` when the lease was
    /// lost (someone else's tokens are newer: ours are discarded).
    pub async fn store_refreshed_tokens(
        &self,
        workspace: WorkspaceId,
        id: IntegrationId,
        lease: Uuid,
        refreshed: &Refreshed,
    ) -> Result<bool, StoreError> {
        let at = now();
        let written = in_workspace_tx!(self, workspace, conn => {
            let written = sqlx::query(
                "UPDATE oauth_tokens SET access_key_id = $1, access_token = $2, \
                     refresh_key_id = COALESCE($3, refresh_key_id), refresh_token = COALESCE($4, refresh_token), \
                     expires_at = $5, version = version + 1, refresh_lease_token = NULL, refresh_lease_until = NULL, \
                     updated_at = $6 \
                 WHERE workspace_id = $7 AND integration_id = $8 AND refresh_lease_token = $9",
            )
            .bind(&refreshed.access_token.key_id)
            .bind(&refreshed.access_token.bytes)
            .bind(refreshed.refresh_token.as_ref().map(|sealed| sealed.key_id.clone()))
            .bind(refreshed.refresh_token.as_ref().map(|sealed| sealed.bytes.clone()))
            .bind(refreshed.expires_at)
            .bind(at)
            .bind(workspace.as_uuid())
            .bind(id.as_uuid())
            .bind(lease)
            .execute(&mut *conn)
            .await?
            .rows_affected();
            if written == 1 && let Some((scopes, status)) = &refreshed.granted_scopes {
                sqlx::query(
                    "UPDATE integrations SET granted_scopes = $1, status = $2, updated_at = $3 \
                     WHERE workspace_id = $4 AND id = $5 AND status IN ('connected', 'missing_scopes')",
                )
                .bind(scopes.to_space_delimited())
                .bind(status.as_str())
                .bind(at)
                .bind(workspace.as_uuid())
                .bind(id.as_uuid())
                .execute(&mut *conn)
                .await?;
            }
            written
        });
        Ok(written == 1)
    }

    pub async fn release_token_refresh(
        &self,
        workspace: WorkspaceId,
        id: IntegrationId,
        lease: Uuid,
    ) -> Result<(), StoreError> {
        in_workspace!(self, workspace, conn => {
            sqlx::query(
                "UPDATE oauth_tokens SET refresh_lease_token = NULL, refresh_lease_until = NULL \
                 WHERE workspace_id = $1 AND integration_id = $2 AND refresh_lease_token = $3",
            )
            .bind(workspace.as_uuid())
            .bind(id.as_uuid())
            .bind(lease)
            .execute(&mut *conn)
            .await?;
        });
        Ok(())
    }

    /// Mark the access token of `version` expired, so the next use refreshes
    /// it (Google rejected it with a 401). A newer token is left alone.
    pub async fn expire_access_token(
        &self,
        workspace: WorkspaceId,
        id: IntegrationId,
        version: i32,
    ) -> Result<(), StoreError> {
        in_workspace!(self, workspace, conn => {
            sqlx::query(
                "UPDATE oauth_tokens SET expires_at = $1 WHERE workspace_id = $2 AND integration_id = $3 AND version = $4",
            )
            .bind(now())
            .bind(workspace.as_uuid())
            .bind(id.as_uuid())
            .bind(version)
            .execute(&mut *conn)
            .await?;
        });
        Ok(())
    }

    /// Key ids that encrypt at least one stored secret (OAuth tokens,
    /// webhook tokens).
    pub async fn token_key_ids(&self) -> Result<Vec<String>, StoreError> {
        Ok(across_workspaces!(self, conn => {
            sqlx::query_scalar(
                "SELECT access_key_id FROM oauth_tokens \
                 UNION SELECT refresh_key_id FROM oauth_tokens WHERE refresh_key_id IS NOT NULL \
                 UNION SELECT webhook_key_id FROM workflows WHERE webhook_key_id IS NOT NULL",
            )
            .fetch_all(&mut *conn)
            .await?
        }))
    }

    /// The ids of the keys that have written a check value here (every key
    /// this database was ever opened with).
    pub async fn key_check_ids(&self) -> Result<Vec<String>, StoreError> {
        Ok(on_pool!(self, pool => {
            sqlx::query_scalar("SELECT key_id FROM encryption_key_checks ORDER BY key_id")
                .fetch_all(pool)
                .await?
        }))
    }

    pub async fn key_check(&self, key_id: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(on_pool!(self, pool => {
            sqlx::query_scalar("SELECT check_value FROM encryption_key_checks WHERE key_id = $1")
                .bind(key_id)
                .fetch_optional(pool)
                .await?
        }))
    }

    pub async fn save_key_check(&self, key_id: &str, check_value: &[u8]) -> Result<(), StoreError> {
        on_pool!(self, pool => {
            sqlx::query(
                "INSERT INTO encryption_key_checks (key_id, check_value, created_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (key_id) DO NOTHING",
            )
            .bind(key_id)
            .bind(check_value)
            .bind(now())
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// Every stored token, for re-encryption under a new key.
    pub async fn all_tokens(
        &self,
    ) -> Result<Vec<(WorkspaceId, IntegrationId, StoredTokens)>, StoreError> {
        #[derive(sqlx::FromRow)]
        struct Row {
            workspace_id: Uuid,
            integration_id: Uuid,
            #[sqlx(flatten)]
            tokens: TokenRow,
        }
        let rows: Vec<Row> = across_workspaces!(self, conn => {
            sqlx::query_as(
                "SELECT workspace_id, integration_id, access_key_id, access_token, refresh_key_id, refresh_token, \
                        expires_at, version, refresh_lease_until FROM oauth_tokens",
            )
            .fetch_all(&mut *conn)
            .await?
        });
        Ok(rows
            .into_iter()
            .map(|row| {
                (
                    WorkspaceId::from_uuid(row.workspace_id),
                    IntegrationId::from_uuid(row.integration_id),
                    row.tokens.into(),
                )
            })
            .collect())
    }

    /// Replace a token row's ciphertexts (same plaintext, new key), only if
    /// it has not changed since it was read.
    pub async fn reencrypt_tokens(
        &self,
        workspace: WorkspaceId,
        id: IntegrationId,
        version: i32,
        access: &Sealed,
        refresh: Option<&Sealed>,
    ) -> Result<bool, StoreError> {
        let written = in_workspace!(self, workspace, conn => {
            sqlx::query(
                "UPDATE oauth_tokens SET access_key_id = $1, access_token = $2, refresh_key_id = $3, refresh_token = $4, \
                     version = version + 1 \
                 WHERE workspace_id = $5 AND integration_id = $6 AND version = $7",
            )
            .bind(&access.key_id)
            .bind(&access.bytes)
            .bind(refresh.map(|sealed| sealed.key_id.clone()))
            .bind(refresh.map(|sealed| sealed.bytes.clone()))
            .bind(workspace.as_uuid())
            .bind(id.as_uuid())
            .bind(version)
            .execute(&mut *conn)
            .await?
            .rows_affected()
        });
        Ok(written == 1)
    }
}
