//! Throw-away databases for tests: a SQLite file in a temporary folder, or,
//! when `MAILWRIGHT_TEST_POSTGRES_URL` is set, a freshly created PostgreSQL
//! database that is dropped when the test ends.
//!
//! With `MAILWRIGHT_REQUIRE_POSTGRES=1` (CI sets it) a missing or unreachable
//! PostgreSQL fails the test loudly instead of quietly testing SQLite only.

use std::path::PathBuf;

use sqlx::Connection;
use sqlx::postgres::PgConnection;

use crate::{Backend, DatabaseUrl, Store};

pub const POSTGRES_URL_VAR: &str = "MAILWRIGHT_TEST_POSTGRES_URL";
/// The role test databases belong to and the application connects as: not a
/// superuser, so PostgreSQL's row-level security applies to it as it would to
/// a production deployment.
pub const POSTGRES_APP_ROLE: &str = "mailwright_test_app";
pub const REQUIRE_POSTGRES_VAR: &str = "MAILWRIGHT_REQUIRE_POSTGRES";

/// A database that exists for one test.
pub struct TestDatabase {
    pub url: DatabaseUrl,
    /// The temporary folder that holds the SQLite file (and can serve as a
    /// data dir); kept alive as long as the database.
    pub dir: tempfile::TempDir,
    postgres: Option<PostgresDatabase>,
}

struct PostgresDatabase {
    admin_url: String,
    name: String,
}

/// Which backend this test run targets.
pub fn backend_under_test() -> Backend {
    match std::env::var(POSTGRES_URL_VAR) {
        Ok(url) if !url.is_empty() => Backend::Postgres,
        _ => {
            if std::env::var(REQUIRE_POSTGRES_VAR).as_deref() == Ok("1") {
                panic!(
                    "{REQUIRE_POSTGRES_VAR}=1 but {POSTGRES_URL_VAR} is not set: refusing to run the PostgreSQL suite on SQLite"
                );
            }
            Backend::Sqlite
        }
    }
}

impl TestDatabase {
    /// A new, empty, unmigrated database on the backend under test.
    pub async fn new() -> TestDatabase {
        let dir = tempfile::tempdir().expect("a temporary folder for the test database");
        match backend_under_test() {
            Backend::Sqlite => TestDatabase {
                url: DatabaseUrl::sqlite_in(dir.path()),
                dir,
                postgres: None,
            },
            Backend::Postgres => {
                let admin_url = std::env::var(POSTGRES_URL_VAR).expect("checked above");
                let name = format!("mw_test_{}", uuid::Uuid::new_v4().simple());
                let mut admin = PgConnection::connect(&admin_url).await.unwrap_or_else(|error| {
                    panic!("cannot reach PostgreSQL at {POSTGRES_URL_VAR} ({error}); is the server running?")
                });
                ensure_app_role(&mut admin).await;
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "CREATE DATABASE {name} OWNER {POSTGRES_APP_ROLE}"
                )))
                .execute(&mut admin)
                .await
                .unwrap_or_else(|error| panic!("cannot create test database {name}: {error}"));
                let _ = admin.close().await;
                let mut url =
                    url::Url::parse(&admin_url).expect("MAILWRIGHT_TEST_POSTGRES_URL is a URL");
                url.set_path(&name);
                url.set_username(POSTGRES_APP_ROLE)
                    .expect("a PostgreSQL URL has a user part");
                url.set_password(None)
                    .expect("a PostgreSQL URL has a password part");
                TestDatabase {
                    url: DatabaseUrl::parse(url.as_str()).expect("a PostgreSQL URL"),
                    dir,
                    postgres: Some(PostgresDatabase { admin_url, name }),
                }
            }
        }
    }

    /// A new database, connected and migrated.
    pub async fn migrated() -> (TestDatabase, Store) {
        let database = TestDatabase::new().await;
        let store = database.connect().await;
        store
            .migrate()
            .await
            .expect("migrations apply to a fresh database");
        (database, store)
    }

    /// Another, independent connection pool to the same database (as a second
    /// process would have).
    pub async fn connect(&self) -> Store {
        Store::connect(&self.url)
            .await
            .expect("the test database accepts connections")
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }
}

/// Un-apply the record of the newest migration, as if this binary were
/// newer than the database (readiness must then report pending migrations).
pub async fn forget_latest_migration(store: &Store) {
    crate::on_pool!(store, pool => {
        sqlx::query("DELETE FROM _sqlx_migrations WHERE version = (SELECT MAX(version) FROM _sqlx_migrations)")
            .execute(pool)
            .await
            .expect("the migrations table exists");
    });
}

/// Make every pending OAuth state expired, as if the person took longer
/// than its lifetime on Google's consent screen.
pub async fn expire_oauth_states(store: &Store) {
    let past = crate::now() - chrono::Duration::minutes(1);
    let result: Result<(), crate::StoreError> = async {
        crate::across_workspaces!(store, conn => {
            sqlx::query("UPDATE oauth_states SET expires_at = $1").bind(past).execute(&mut *conn).await?;
        });
        Ok(())
    }
    .await;
    result.expect("oauth states can be expired");
}

/// Expire the lease of every running job, as if its worker had died: the
/// next claim takes it over.
pub async fn expire_job_leases(store: &Store) {
    crate::on_pool!(store, pool => {
        sqlx::query("UPDATE jobs SET lease_expires_at = $1 WHERE status = 'running'")
            .bind(crate::now() - chrono::Duration::seconds(1))
            .execute(pool)
            .await
            .expect("job leases can be expired");
    });
}

/// Make every polled mailbox's poll due now (auto-draft's and new-mail
/// workflows').
pub async fn make_polls_due(store: &Store) {
    let due = crate::now() - chrono::Duration::seconds(1);
    let result: Result<(), crate::StoreError> = async {
        // Across workspaces: the table has row-level security on PostgreSQL.
        crate::across_workspaces!(store, conn => {
            sqlx::query("UPDATE autodraft_mailboxes SET next_poll_at = $1 WHERE next_poll_at IS NOT NULL")
                .bind(due)
                .execute(&mut *conn)
                .await?;
        });
        Ok(())
    }
    .await;
    result.expect("polls can be made due");
}

/// Whether a job was announced to this process's workers (see
/// [`Store::job_added`]) and not yet taken by one; takes it. Does not wait.
pub async fn take_job_announcement(store: &Store) -> bool {
    // `timeout` polls its future once before looking at the clock, so a
    // zero duration asks "is a wake-up stored?" without waiting.
    tokio::time::timeout(std::time::Duration::ZERO, store.job_added())
        .await
        .is_ok()
}

/// Make every queued job due now (skip the backoff a retry waits for).
pub async fn make_jobs_due(store: &Store) {
    crate::on_pool!(store, pool => {
        sqlx::query("UPDATE jobs SET run_at = $1 WHERE status = 'queued'")
            .bind(crate::now())
            .execute(pool)
            .await
            .expect("jobs can be made due");
    });
}

/// Create the application role once; concurrent tests may race to do it.
async fn ensure_app_role(admin: &mut PgConnection) {
    async fn exists(admin: &mut PgConnection) -> Result<bool, sqlx::Error> {
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)")
            .bind(POSTGRES_APP_ROLE)
            .fetch_one(admin)
            .await
    }
    if exists(admin).await.unwrap_or(false) {
        return;
    }
    let created = sqlx::query(sqlx::AssertSqlSafe(format!(
        "CREATE ROLE {POSTGRES_APP_ROLE} LOGIN NOSUPERUSER NOBYPASSRLS"
    )))
    .execute(&mut *admin)
    .await;
    if let Err(error) = created {
        // Another test created it at the same moment: fine if it exists now.
        assert!(
            exists(admin).await.unwrap_or(false),
            "cannot create the role {POSTGRES_APP_ROLE}: {error}"
        );
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let Some(postgres) = self.postgres.take() else {
            return;
        };
        // Drop runs inside the test's runtime; use a thread with its own.
        let cleanup = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build();
            if let Ok(runtime) = runtime {
                runtime.block_on(async {
                    if let Ok(mut admin) = PgConnection::connect(&postgres.admin_url).await {
                        let drop =
                            format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", postgres.name);
                        let _ = sqlx::query(sqlx::AssertSqlSafe(drop))
                            .execute(&mut admin)
                            .await;
                        let _ = admin.close().await;
                    }
                });
            }
        });
        let _ = cleanup.join();
    }
}

/// Move every connection's last check (and its connection time) back by
/// `by`, as if that much time had passed: the daily health check sees it
/// due.
pub async fn age_connection_checks(store: &Store, by: chrono::Duration) {
    let result: Result<(), crate::StoreError> = async {
        let integrations = {
            crate::across_workspaces!(store, conn => {
                sqlx::query_as::<_, (uuid::Uuid, uuid::Uuid, chrono::DateTime<chrono::Utc>, Option<chrono::DateTime<chrono::Utc>>)>(
                    "SELECT workspace_id, id, connected_at, checked_at FROM integrations",
                )
                .fetch_all(&mut *conn)
                .await?
            })
        };
        for (workspace, id, connected_at, checked_at) in integrations {
            let workspace = domain::WorkspaceId::from_uuid(workspace);
            crate::in_workspace!(store, workspace, conn => {
                sqlx::query("UPDATE integrations SET connected_at = $1, checked_at = $2 WHERE id = $3")
                    .bind(connected_at - by)
                    .bind(checked_at.map(|at| at - by))
                    .bind(id)
                    .execute(&mut *conn)
                    .await?;
            });
        }
        Ok(())
    }
    .await;
    result.expect("the connections can be aged");
}

/// Move every auto-draft mailbox's watch renewal `by` into the past, as if
/// that much time had gone by since the watches were made.
pub async fn age_watches(store: &Store, by: chrono::Duration) {
    let result: Result<(), crate::StoreError> = async {
        let mailboxes = {
            crate::across_workspaces!(store, conn => {
                sqlx::query_as::<_, (uuid::Uuid, uuid::Uuid, Option<chrono::DateTime<chrono::Utc>>)>(
                    "SELECT workspace_id, integration_id, watch_renew_at FROM autodraft_mailboxes",
                )
                .fetch_all(&mut *conn)
                .await?
            })
        };
        for (workspace, id, renew_at) in mailboxes {
            let workspace = domain::WorkspaceId::from_uuid(workspace);
            crate::in_workspace!(store, workspace, conn => {
                sqlx::query("UPDATE autodraft_mailboxes SET watch_renew_at = $1 WHERE integration_id = $2")
                    .bind(renew_at.map(|at| at - by))
                    .bind(id)
                    .execute(&mut *conn)
                    .await?;
            });
        }
        Ok(())
    }
    .await;
    result.expect("the watches can be aged");
}

/// Move every webhook endpoint's run of failures `by` into the past (the
/// switch-off after a day of failures, without waiting a day).
pub async fn age_webhook_failures(store: &Store, by: chrono::Duration) {
    let result: Result<(), crate::StoreError> = async {
        let endpoints = {
            crate::across_workspaces!(store, conn => {
                sqlx::query_as::<_, (uuid::Uuid, uuid::Uuid, Option<chrono::DateTime<chrono::Utc>>)>(
                    "SELECT workspace_id, id, failing_since FROM webhook_endpoints",
                )
                .fetch_all(&mut *conn)
                .await?
            })
        };
        for (workspace, id, since) in endpoints {
            let workspace = domain::WorkspaceId::from_uuid(workspace);
            crate::in_workspace!(store, workspace, conn => {
                sqlx::query("UPDATE webhook_endpoints SET failing_since = $1 WHERE id = $2")
                    .bind(since.map(|at| at - by))
                    .bind(id)
                    .execute(&mut *conn)
                    .await?;
            });
        }
        Ok(())
    }
    .await;
    result.expect("the webhook failures can be aged");
}

/// Move the recorded creation of the draft with this Gmail id `by` into the
/// past (a stale draft, without waiting days).
pub async fn age_draft(store: &Store, provider_draft_id: &str, by: chrono::Duration) {
    let result: Result<(), crate::StoreError> = async {
        let found = {
            crate::across_workspaces!(store, conn => {
                sqlx::query_as::<_, (uuid::Uuid, uuid::Uuid, chrono::DateTime<chrono::Utc>)>(
                    "SELECT workspace_id, id, created_at FROM draft_metadata WHERE provider_draft_id = $1",
                )
                .bind(provider_draft_id)
                .fetch_all(&mut *conn)
                .await?
            })
        };
        for (workspace, id, created_at) in found {
            let workspace = domain::WorkspaceId::from_uuid(workspace);
            crate::in_workspace!(store, workspace, conn => {
                sqlx::query("UPDATE draft_metadata SET created_at = $1 WHERE id = $2")
                    .bind(created_at - by)
                    .bind(id)
                    .execute(&mut *conn)
                    .await?;
            });
        }
        Ok(())
    }
    .await;
    result.expect("the draft can be aged");
}
