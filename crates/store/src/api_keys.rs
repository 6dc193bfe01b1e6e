//! Workspace API keys. The key is shown once when created; only its SHA-256
//! is stored (keys are 256 random bits, so a fast hash is enough: there is
//! nothing to brute-force).

use chrono::{DateTime, Utc};
use domain::{UserId, WorkspaceId};
use uuid::Uuid;

use crate::{Backend, Store, StoreError, in_workspace, now, on_pool};

/// An API key as listed: never its secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKey {
    pub id: Uuid,
    pub workspace: WorkspaceId,
    /// Whom requests with this key act as.
    pub user: UserId,
    pub name: String,
    pub prefix: String,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

#[derive(sqlx::FromRow)]
struct ApiKeyRow {
    id: Uuid,
    workspace_id: Uuid,
    user_id: Uuid,
    name: String,
    prefix: String,
    created_at: DateTime<Utc>,
    last_used_at: Option<DateTime<Utc>>,
    revoked_at: Option<DateTime<Utc>>,
}

impl From<ApiKeyRow> for ApiKey {
    fn from(row: ApiKeyRow) -> Self {
        ApiKey {
            id: row.id,
            workspace: WorkspaceId::from_uuid(row.workspace_id),
            user: UserId::from_uuid(row.user_id),
            name: row.name,
            prefix: row.prefix,
            created_at: row.created_at,
            last_used_at: row.last_used_at,
            revoked_at: row.revoked_at,
        }
    }
}

const COLUMNS: &str =
    "id, workspace_id, user_id, name, prefix, created_at, last_used_at, revoked_at";

fn api_key_by_secret_hash_sql(backend: Backend) -> String {
    match backend {
        Backend::Postgres => {
            format!("SELECT {COLUMNS} FROM mailwright_api_key_by_secret_hash($1)")
        }
        Backend::Sqlite => format!("SELECT {COLUMNS} FROM api_keys WHERE secret_hash = $1"),
    }
}

impl Store {
    pub async fn create_api_key(
        &self,
        workspace: WorkspaceId,
        user: UserId,
        name: &str,
        prefix: &str,
        secret_hash: &str,
    ) -> Result<ApiKey, StoreError> {
        let key = ApiKey {
            id: Uuid::now_v7(),
            workspace,
            user,
            name: name.to_owned(),
            prefix: prefix.to_owned(),
            created_at: now(),
            last_used_at: None,
            revoked_at: None,
        };
        in_workspace!(self, workspace, conn => {
            sqlx::query(
                "INSERT INTO api_keys (id, workspace_id, user_id, name, prefix, secret_hash, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(key.id)
            .bind(workspace.as_uuid())
            .bind(user.as_uuid())
            .bind(name)
            .bind(prefix)
            .bind(secret_hash)
            .bind(key.created_at)
            .execute(&mut *conn)
            .await?;
        });
        Ok(key)
    }

    /// The workspace's keys that are not revoked, newest first.
    pub async fn api_keys(&self, workspace: WorkspaceId) -> Result<Vec<ApiKey>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM api_keys WHERE workspace_id = $1 AND revoked_at IS NULL ORDER BY created_at DESC"
        );
        let rows: Vec<ApiKeyRow> = in_workspace!(self, workspace, conn => {
            sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str())).bind(workspace.as_uuid()).fetch_all(&mut *conn).await?
        });
        Ok(rows.into_iter().map(ApiKey::from).collect())
    }

    /// Revoke a key of this workspace. `NotFound` for a key that does not
    /// exist, is already revoked, or belongs to another workspace.
    pub async fn revoke_api_key(&self, workspace: WorkspaceId, id: Uuid) -> Result<(), StoreError> {
        let revoked = in_workspace!(self, workspace, conn => {
            sqlx::query(
                "UPDATE api_keys SET revoked_at = $1 WHERE workspace_id = $2 AND id = $3 AND revoked_at IS NULL",
            )
            .bind(now())
            .bind(workspace.as_uuid())
            .bind(id)
            .execute(&mut *conn)
            .await?
            .rows_affected()
        });
        if revoked == 1 {
            Ok(())
        } else {
            Err(StoreError::NotFound)
        }
    }

    /// The key with this secret hash, revoked or not, in whichever workspace
    /// it belongs to: authentication is how the workspace is found.
    pub async fn api_key_by_secret_hash(
        &self,
        secret_hash: &str,
    ) -> Result<Option<ApiKey>, StoreError> {
        let sql = api_key_by_secret_hash_sql(self.backend());
        // On every API request, so one round trip: on PostgreSQL a function
        // (in the baseline migration) looks across workspaces for its query only.
        let row: Option<ApiKeyRow> = on_pool!(self, pool => {
            sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str())).bind(secret_hash).fetch_optional(pool).await?
        });
        Ok(row.map(ApiKey::from))
    }

    /// Record that the key was used.
    pub async fn touch_api_key(
        &self,
        workspace: WorkspaceId,
        id: Uuid,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        in_workspace!(self, workspace, conn => {
            sqlx::query("UPDATE api_keys SET last_used_at = $1 WHERE workspace_id = $2 AND id = $3")
                .bind(at)
                .bind(workspace.as_uuid())
                .bind(id)
                .execute(&mut *conn)
                .await?;
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::TestDatabase;
    use crate::{Pool, on_pool};

    async fn workspace_with_key(store: &Store, name: &str) -> (WorkspaceId, ApiKey) {
        let workspace = store.create_workspace(name).await.unwrap();
        let user = store.create_user(None, None).await.unwrap();
        store
            .add_member(workspace.id, user.id, crate::tenancy::Role::Owner)
            .await
            .unwrap();
        let key = store
            .create_api_key(
                workspace.id,
                user.id,
                &format!("{name} key"),
                "mw_abcd",
                &format!("hash-{name}"),
            )
            .await
            .unwrap();
        (workspace.id, key)
    }

    #[tokio::test]
    async fn keys_are_listed_revoked_and_found_within_their_workspace_only() {
        let (_db, store) = TestDatabase::migrated().await;
        let (a, key_a) = workspace_with_key(&store, "a").await;
        let (b, key_b) = workspace_with_key(&store, "b").await;

        assert_eq!(store.api_keys(a).await.unwrap(), vec![key_a.clone()]);
        assert_eq!(store.api_keys(b).await.unwrap(), vec![key_b.clone()]);
        // Another workspace's key is exactly as absent as a missing one.
        assert!(matches!(
            store.revoke_api_key(b, key_a.id).await,
            Err(StoreError::NotFound)
        ));
        assert!(matches!(
            store.revoke_api_key(b, Uuid::now_v7()).await,
            Err(StoreError::NotFound)
        ));
        assert!(
            store
                .api_key_by_secret_hash("hash-a")
                .await
                .unwrap()
                .unwrap()
                .revoked_at
                .is_none()
        );

        store.revoke_api_key(a, key_a.id).await.unwrap();
        assert!(store.api_keys(a).await.unwrap().is_empty());
        assert!(
            store
                .api_key_by_secret_hash("hash-a")
                .await
                .unwrap()
                .unwrap()
                .revoked_at
                .is_some()
        );
        assert!(matches!(
            store.revoke_api_key(a, key_a.id).await,
            Err(StoreError::NotFound)
        ));
    }

    /// The second wall: on PostgreSQL, a query that forgets its workspace
    /// filter still sees only the workspace of its scope, and none without one.
    #[tokio::test]
    async fn row_security_hides_other_workspaces_even_from_unfiltered_queries()
    -> Result<(), StoreError> {
        let (_db, store) = TestDatabase::migrated().await;
        let (a, key_a) = workspace_with_key(&store, "a").await;
        workspace_with_key(&store, "b").await;

        let unfiltered = "SELECT id FROM api_keys";
        let seen_in_a: Vec<Uuid> = in_workspace!(&store, a, conn => {
            sqlx::query_scalar(unfiltered).fetch_all(&mut *conn).await.unwrap()
        });
        let seen_unscoped: Vec<Uuid> = on_pool!(&store, pool => {
            sqlx::query_scalar(unfiltered).fetch_all(pool).await.unwrap()
        });
        match store.backend() {
            Backend::Postgres => {
                assert!(
                    !store.bypasses_row_security().await.unwrap(),
                    "tests connect as a role RLS applies to"
                );
                assert_eq!(
                    seen_in_a,
                    vec![key_a.id],
                    "only workspace A's row in A's scope"
                );
                assert!(
                    seen_unscoped.is_empty(),
                    "no scope, no rows: {seen_unscoped:?}"
                );
                // The key lookup sees every workspace for its own query only:
                // the same connection is unscoped again right after.
                let Pool::Postgres(pool) = &store.pool else {
                    unreachable!()
                };
                let mut conn = pool.acquire().await.unwrap();
                let sql = api_key_by_secret_hash_sql(Backend::Postgres);
                let found: Vec<ApiKeyRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
                    .bind("hash-b")
                    .fetch_all(&mut *conn)
                    .await
                    .unwrap();
                assert_eq!(found.len(), 1, "the lookup finds a key in any workspace");
                let after: Vec<Uuid> = sqlx::query_scalar(unfiltered)
                    .fetch_all(&mut *conn)
                    .await
                    .unwrap();
                assert!(
                    after.is_empty(),
                    "the lookup left its scope behind: {after:?}"
                );
                // Writing a row into another workspace from A's scope is refused.
                let user = store.create_user(None, None).await.unwrap();
                let b = store.workspaces_named("b").await.unwrap()[0].id;
                let smuggled: Result<_, StoreError> = async {
                    in_workspace!(&store, a, conn => {
                        sqlx::query(
                            "INSERT INTO api_keys (id, workspace_id, user_id, name, prefix, secret_hash, created_at) \
                             VALUES ($1, $2, $3, 'x', 'x', 'smuggled', $4)",
                        )
                        .bind(Uuid::now_v7())
                        .bind(b.as_uuid())
                        .bind(user.id.as_uuid())
                        .bind(now())
                        .execute(&mut *conn)
                        .await?;
                    });
                    Ok(())
                }
                .await;
                assert!(
                    smuggled.is_err(),
                    "row-level security refuses a row for another workspace"
                );
            }
            Backend::Sqlite => {
                // SQLite has no row-level security: the scoped repository
                // functions (tested above) are the wall.
                assert!(!store.bypasses_row_security().await.unwrap());
                assert_eq!(seen_unscoped.len(), 2);
            }
        }
        Ok(())
    }
}
