//! Sign-in sessions of the built-in UI. The cookie holds a random token; the
//! database holds its SHA-256, so a leaked database does not sign anyone in.

use chrono::{DateTime, Utc};
use domain::{UserId, WorkspaceId};
use uuid::Uuid;

use crate::{Store, StoreError, now, on_pool};

#[derive(Debug, Clone)]
pub struct Session {
    pub user: UserId,
    pub workspace: WorkspaceId,
    /// Must accompany every state-changing request made with this session.
    pub csrf_token: String,
    pub expires_at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
struct SessionRow {
    user_id: Uuid,
    workspace_id: Uuid,
    csrf_token: String,
    expires_at: DateTime<Utc>,
}

impl Store {
    pub async fn create_session(
        &self,
        token_hash: &str,
        session: &Session,
    ) -> Result<(), StoreError> {
        on_pool!(self, pool => {
            sqlx::query(
                "INSERT INTO sessions (id, token_hash, user_id, workspace_id, csrf_token, created_at, expires_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(Uuid::now_v7())
            .bind(token_hash)
            .bind(session.user.as_uuid())
            .bind(session.workspace.as_uuid())
            .bind(&session.csrf_token)
            .bind(now())
            .bind(session.expires_at)
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// The unexpired session with this token hash.
    pub async fn session(&self, token_hash: &str) -> Result<Option<Session>, StoreError> {
        let row: Option<SessionRow> = on_pool!(self, pool => {
            sqlx::query_as(
                "SELECT user_id, workspace_id, csrf_token, expires_at FROM sessions \
                 WHERE token_hash = $1 AND expires_at > $2",
            )
            .bind(token_hash)
            .bind(now())
            .fetch_optional(pool)
            .await?
        });
        Ok(row.map(|row| Session {
            user: UserId::from_uuid(row.user_id),
            workspace: WorkspaceId::from_uuid(row.workspace_id),
            csrf_token: row.csrf_token,
            expires_at: row.expires_at,
        }))
    }

    pub async fn delete_session(&self, token_hash: &str) -> Result<(), StoreError> {
        on_pool!(self, pool => {
            sqlx::query("DELETE FROM sessions WHERE token_hash = $1").bind(token_hash).execute(pool).await?;
        });
        Ok(())
    }

    /// Delete sessions that expired before `before`; how many.
    pub async fn purge_expired_sessions(
        &self,
        before: chrono::DateTime<chrono::Utc>,
    ) -> Result<u64, StoreError> {
        Ok(on_pool!(self, pool => {
            sqlx::query("DELETE FROM sessions WHERE expires_at < $1")
                .bind(before)
                .execute(pool)
                .await?
                .rows_affected()
        }))
    }
}
