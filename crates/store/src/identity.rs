//! Who someone is: users named by a JWT's (issuer, subject), workspaces named
//! by a JWT workspace claim or personal to a user (all created on first
//! sight), and local accounts with passwords for the built-in UI.

use domain::{UserId, WorkspaceId};
use uuid::Uuid;

use crate::tenancy::{User, UserRow, Workspace, WorkspaceRow};
use crate::{Pool, Store, StoreError, across_workspaces, now, on_pool};

const USER_COLUMNS: &str = "u.id, u.email, u.display_name, u.created_at";
/// The PostgreSQL advisory lock key that serialises first-run setups.
const FIRST_OWNER_LOCK: i64 = 0x6d77_5f66_6972_7374; // "mw_first"

impl Store {
    /// The user a JWT names, created on first sight. Safe when several
    /// requests with a new token arrive at once: exactly one user results.
    pub async fn user_for_external_identity(
        &self,
        issuer: &str,
        subject: &str,
        email: Option<&str>,
    ) -> Result<(User, bool), StoreError> {
        let find = format!(
            "SELECT {USER_COLUMNS} FROM users u JOIN external_identities i ON i.user_id = u.id \
             WHERE i.issuer = $1 AND i.subject = $2"
        );
        let existing: Option<UserRow> = on_pool!(self, pool => {
            sqlx::query_as(sqlx::AssertSqlSafe(find.as_str())).bind(issuer).bind(subject).fetch_optional(pool).await?
        });
        if let Some(row) = existing {
            let user = User::from(row);
            if email.is_some() && user.email.as_deref() != email {
                on_pool!(self, pool => {
                    sqlx::query("UPDATE users SET email = $1 WHERE id = $2")
                        .bind(email)
                        .bind(user.id.as_uuid())
                        .execute(pool)
                        .await?;
                });
                let user = User {
                    email: email.map(str::to_owned),
                    ..user
                };
                return Ok((user, true));
            }
            return Ok((user, false));
        }

        let created_at = now();
        let id = UserId::new();
        let won = on_pool!(self, pool => {
            // Starts with a write, so on SQLite it holds the write lock from
            // the first statement and cannot fail on a stale read.
            let mut tx = pool.begin().await?;
            sqlx::query("INSERT INTO users (id, email, display_name, created_at) VALUES ($1, $2, NULL, $3)")
                .bind(id.as_uuid())
                .bind(email)
                .bind(created_at)
                .execute(&mut *tx)
                .await?;
            let inserted = sqlx::query(
                "INSERT INTO external_identities (issuer, subject, user_id, created_at) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (issuer, subject) DO NOTHING",
            )
            .bind(issuer)
            .bind(subject)
            .bind(id.as_uuid())
            .bind(created_at)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if inserted == 1 {
                tx.commit().await?;
            }
            inserted == 1
        });
        if won {
            let user = User {
                id,
                email: email.map(str::to_owned),
                display_name: None,
                created_at,
            };
            return Ok((user, true));
        }
        // Another request created it first (our transaction was rolled back).
        let row: UserRow = on_pool!(self, pool => {
            sqlx::query_as(sqlx::AssertSqlSafe(find.as_str())).bind(issuer).bind(subject).fetch_one(pool).await?
        });
        Ok((row.into(), false))
    }

    /// The workspace a JWT workspace claim (e.g. a Clerk `org_id`) names,
    /// created on first sight.
    pub async fn workspace_for_external_id(
        &self,
        external_id: &str,
    ) -> Result<Workspace, StoreError> {
        self.workspace_made_on_first_sight("external_id", external_id, external_id.to_owned())
            .await
    }

    /// The user's personal workspace (for tokens without a workspace claim
    /// and for local accounts), created on first sight.
    pub async fn personal_workspace(&self, user: &User) -> Result<Workspace, StoreError> {
        let name = user
            .email
            .clone()
            .unwrap_or_else(|| "Personal workspace".to_owned());
        self.workspace_made_on_first_sight("personal_user_id", user.id.as_uuid(), name)
            .await
    }

    async fn workspace_made_on_first_sight<K>(
        &self,
        key_column: &'static str,
        key: K,
        name: String,
    ) -> Result<Workspace, StoreError>
    where
        K: Clone + Send + Sync,
        K: for<'q> sqlx::Encode<'q, sqlx::Sqlite> + sqlx::Type<sqlx::Sqlite>,
        K: for<'q> sqlx::Encode<'q, sqlx::Postgres> + sqlx::Type<sqlx::Postgres>,
    {
        let find = format!("SELECT id, name, created_at FROM workspaces WHERE {key_column} = $1");
        let existing: Option<WorkspaceRow> = on_pool!(self, pool => {
            sqlx::query_as(sqlx::AssertSqlSafe(find.as_str())).bind(key.clone()).fetch_optional(pool).await?
        });
        if let Some(row) = existing {
            return Ok(row.into());
        }
        let insert = format!(
            "INSERT INTO workspaces (id, name, created_at, {key_column}) VALUES ($1, $2, $3, $4) \
             ON CONFLICT ({key_column}) WHERE {key_column} IS NOT NULL DO NOTHING"
        );
        on_pool!(self, pool => {
            sqlx::query(sqlx::AssertSqlSafe(insert.as_str()))
                .bind(WorkspaceId::new().as_uuid())
                .bind(&name)
                .bind(now())
                .bind(key.clone())
                .execute(pool)
                .await?;
        });
        let row: WorkspaceRow = on_pool!(self, pool => {
            sqlx::query_as(sqlx::AssertSqlSafe(find.as_str())).bind(key).fetch_one(pool).await?
        });
        Ok(row.into())
    }

    /// Workspaces with exactly this name (names are not unique).
    pub async fn workspaces_named(&self, name: &str) -> Result<Vec<Workspace>, StoreError> {
        let rows: Vec<WorkspaceRow> = on_pool!(self, pool => {
            sqlx::query_as("SELECT id, name, created_at FROM workspaces WHERE name = $1 ORDER BY created_at")
                .bind(name)
                .fetch_all(pool)
                .await?
        });
        Ok(rows.into_iter().map(Workspace::from).collect())
    }

    /// A user who signs in with an email and password. `email` must already
    /// be normalised (lower case); a second account with it is a `Conflict`.
    pub async fn create_local_account(
        &self,
        email: &str,
        password_hash: &str,
        display_name: Option<&str>,
    ) -> Result<User, StoreError> {
        let user = User {
            id: UserId::new(),
            email: Some(email.to_owned()),
            display_name: display_name.map(str::to_owned),
            created_at: now(),
        };
        on_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            sqlx::query("INSERT INTO users (id, email, display_name, created_at) VALUES ($1, $2, $3, $4)")
                .bind(user.id.as_uuid())
                .bind(&user.email)
                .bind(&user.display_name)
                .bind(user.created_at)
                .execute(&mut *tx)
                .await?;
            sqlx::query("INSERT INTO local_accounts (user_id, email, password_hash, created_at) VALUES ($1, $2, $3, $4)")
                .bind(user.id.as_uuid())
                .bind(email)
                .bind(password_hash)
                .bind(user.created_at)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
        });
        Ok(user)
    }

    /// The installation's first user (the first-run setup): a local account
    /// owning a new workspace, named `workspace_name` or (without one) its
    /// personal workspace. Created only while no user exists, atomically:
    /// of concurrent calls exactly one creates it and the others, like any
    /// later call, get `None` and change nothing.
    ///
    /// SQLite serialises writers (`BEGIN IMMEDIATE` takes the write lock
    /// before the check); PostgreSQL serialises these calls with a
    /// transaction-scoped advisory lock, so each checks after the previous
    /// one committed.
    pub async fn create_first_owner(
        &self,
        email: &str,
        password_hash: &str,
        workspace_name: Option<&str>,
    ) -> Result<Option<(User, Workspace)>, StoreError> {
        let created_at = now();
        let user = User {
            id: UserId::new(),
            email: Some(email.to_owned()),
            display_name: None,
            created_at,
        };
        let workspace = Workspace {
            id: WorkspaceId::new(),
            name: workspace_name.unwrap_or(email).to_owned(),
            created_at,
        };
        let personal_user_id = workspace_name.is_none().then(|| user.id.as_uuid());
        macro_rules! create_if_first {
            ($tx:ident) => {{
                let users: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users")
                    .fetch_one(&mut *$tx)
                    .await?;
                if users > 0 {
                    return Ok(None);
                }
                sqlx::query("INSERT INTO users (id, email, display_name, created_at) VALUES ($1, $2, NULL, $3)")
                    .bind(user.id.as_uuid())
                    .bind(email)
                    .bind(created_at)
                    .execute(&mut *$tx)
                    .await?;
                sqlx::query("INSERT INTO local_accounts (user_id, email, password_hash, created_at) VALUES ($1, $2, $3, $4)")
                    .bind(user.id.as_uuid())
                    .bind(email)
                    .bind(password_hash)
                    .bind(created_at)
                    .execute(&mut *$tx)
                    .await?;
                sqlx::query("INSERT INTO workspaces (id, name, created_at, personal_user_id) VALUES ($1, $2, $3, $4)")
                    .bind(workspace.id.as_uuid())
                    .bind(&workspace.name)
                    .bind(created_at)
                    .bind(personal_user_id)
                    .execute(&mut *$tx)
                    .await?;
                sqlx::query("INSERT INTO memberships (workspace_id, user_id, role, created_at) VALUES ($1, $2, 'owner', $3)")
                    .bind(workspace.id.as_uuid())
                    .bind(user.id.as_uuid())
                    .bind(created_at)
                    .execute(&mut *$tx)
                    .await?;
                $tx.commit().await?;
            }};
        }
        match &self.pool {
            Pool::Sqlite(pool) => {
                let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
                create_if_first!(tx);
            }
            Pool::Postgres(pool) => {
                // The membership row is checked by row-level security: the
                // transaction is scoped to the new workspace. The id is a
                // typed UUID, never outside text.
                let begin = format!(
                    "BEGIN; SELECT set_config('mailwright.workspace_id', '{}', true); \
                     SELECT pg_advisory_xact_lock({FIRST_OWNER_LOCK})",
                    workspace.id
                );
                let mut tx = pool.begin_with(sqlx::AssertSqlSafe(begin)).await?;
                create_if_first!(tx);
            }
        }
        Ok(Some((user, workspace)))
    }

    /// The local account signing in with `email` (normalised), with its
    /// password hash.
    pub async fn local_account(&self, email: &str) -> Result<Option<(User, String)>, StoreError> {
        #[derive(sqlx::FromRow)]
        struct AccountRow {
            #[sqlx(flatten)]
            user: UserRow,
            password_hash: String,
        }
        let sql = format!(
            "SELECT {USER_COLUMNS}, a.password_hash FROM users u JOIN local_accounts a ON a.user_id = u.id \
             WHERE a.email = $1"
        );
        let row: Option<AccountRow> = on_pool!(self, pool => {
            sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str())).bind(email).fetch_optional(pool).await?
        });
        Ok(row.map(|row| (row.user.into(), row.password_hash)))
    }

    /// How many users exist (zero means the first-run setup is open).
    pub async fn user_count(&self) -> Result<i64, StoreError> {
        Ok(on_pool!(self, pool => {
            sqlx::query_scalar("SELECT COUNT(*) FROM users").fetch_one(pool).await?
        }))
    }

    /// The workspace a user joined first (where a sign-in lands).
    pub async fn first_workspace_of(
        &self,
        user: UserId,
    ) -> Result<Option<WorkspaceId>, StoreError> {
        let id: Option<Uuid> = across_workspaces!(self, conn => {
            sqlx::query_scalar("SELECT workspace_id FROM memberships WHERE user_id = $1 ORDER BY created_at LIMIT 1")
                .bind(user.as_uuid())
                .fetch_optional(&mut *conn)
                .await?
        });
        Ok(id.map(WorkspaceId::from_uuid))
    }

    /// A user by id, wherever they belong (the caller already knows the
    /// user from a verified credential).
    pub async fn user(&self, id: UserId) -> Result<User, StoreError> {
        let row: UserRow = on_pool!(self, pool => {
            sqlx::query_as("SELECT id, email, display_name, created_at FROM users WHERE id = $1")
                .bind(id.as_uuid())
                .fetch_optional(pool)
                .await?
        })
        .ok_or(StoreError::NotFound)?;
        Ok(row.into())
    }
}
