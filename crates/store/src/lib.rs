//! Mailwright's database: one [`Store`] over SQLite or PostgreSQL, chosen at
//! run time from the database URL; migrations per backend; workspace-scoped
//! repositories; the durable job queue.
//!
//! Queries are written once where the two dialects agree (both accept `$1`
//! placeholders through sqlx) and run on whichever pool the store holds; SQL
//! is written per backend only where the dialects differ. See
//! `docs/decisions/0002-plain-sql-on-two-typed-pools.md`.

pub mod api_keys;
pub mod autodraft;
pub mod daily;
mod database_url;
mod error;
pub mod identity;
pub mod integrations;
pub mod jobs;
mod readiness;
pub mod sessions;
pub mod system_emails;
pub mod tenancy;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod webhooks;
pub mod workflows;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, SubsecRound, Utc};
use secrecy::ExposeSecret;
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgPool, SqlitePool};
use tokio::sync::{Notify, broadcast};
use uuid::Uuid;

pub use database_url::{DatabaseUrl, InvalidDatabaseUrl};
pub use error::StoreError;
pub use readiness::Readiness;

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/postgres");

/// How long a request waits for a free connection before the store reports
/// itself unavailable (rather than hanging while a database is down).
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

/// The database, over one of the two supported backends.
#[derive(Clone, Debug)]
pub struct Store {
    pool: Pool,
    /// Signalled when this store added a job, so the workers of this process
    /// take it at once instead of at their next idle poll (see
    /// [`Store::job_added`]).
    jobs_added: Arc<Notify>,
    /// The id of each workflow run this process ended, for requests that
    /// wait for a run (see [`Store::run_ends`]).
    run_ends: broadcast::Sender<Uuid>,
    /// The last SQLite integrity check (see [`Store::readiness`]).
    integrity: Arc<std::sync::Mutex<readiness::Integrity>>,
}

/// The connection pool of one backend.
#[derive(Clone, Debug)]
pub(crate) enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Which database a [`Store`] runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Run one expression on whichever pool the store holds. The expression is
/// compiled once per backend, so a query written with it must be valid SQL
/// (and use types) that both backends accept.
macro_rules! on_pool {
    ($store:expr, $pool:ident => $body:expr) => {
        match &$store.pool {
            $crate::Pool::Sqlite($pool) => $body,
            $crate::Pool::Postgres($pool) => $body,
        }
    };
}
pub(crate) use on_pool;

/// Run `$body` with `$conn` (use it as `&mut *$conn`) on a connection scoped
/// to one workspace. On PostgreSQL this is a transaction that sets
/// `mailwright.workspace_id`, which the row-level security policies check: a
/// query that forgot its `workspace_id = $1` still sees only this workspace.
/// Every repository function over tenant data goes through here, with the
/// `WorkspaceId` it takes as its first argument.
macro_rules! in_workspace {
    ($store:expr, $workspace:expr, $conn:ident => $body:expr) => {
        match &$store.pool {
            $crate::Pool::Sqlite(pool) => {
                let mut $conn = pool.acquire().await?;
                $body
            }
            $crate::Pool::Postgres(pool) => {
                // One round trip for both: the id is a typed UUID (its
                // Display is the hyphenated form), never outside text.
                let workspace: domain::WorkspaceId = $workspace;
                let begin = format!(
                    "BEGIN; SELECT set_config('mailwright.workspace_id', '{workspace}', true)"
                );
                let mut $conn = pool.begin_with(sqlx::AssertSqlSafe(begin)).await?;
                let result = $body;
                $conn.commit().await?;
                result
            }
        }
    };
}
pub(crate) use in_workspace;

/// Like [`in_workspace!`], and atomic on both backends: for functions that
/// write more than once (or read, then write) and must leave all or nothing.
/// On SQLite a plain pooled connection is not a transaction, so this takes
/// one with `BEGIN IMMEDIATE` (the write lock up front: a read-then-write
/// cannot fail on a stale snapshot). `$body` may `return Err(..)` to roll back.
macro_rules! in_workspace_tx {
    ($store:expr, $workspace:expr, $conn:ident => $body:expr) => {
        match &$store.pool {
            $crate::Pool::Sqlite(pool) => {
                let mut $conn = pool.begin_with("BEGIN IMMEDIATE").await?;
                let result = $body;
                $conn.commit().await?;
                result
            }
            $crate::Pool::Postgres(pool) => {
                // One round trip for both: the id is a typed UUID (its
                // Display is the hyphenated form), never outside text.
                let workspace: domain::WorkspaceId = $workspace;
                let begin = format!(
                    "BEGIN; SELECT set_config('mailwright.workspace_id', '{workspace}', true)"
                );
                let mut $conn = pool.begin_with(sqlx::AssertSqlSafe(begin)).await?;
                let result = $body;
                $conn.commit().await?;
                result
            }
        }
    };
}
pub(crate) use in_workspace_tx;

/// Like [`in_workspace!`], for the few lookups that must search every
/// workspace because the workspace is what they find out (an API key's
/// owner, a user's memberships at sign-in). Explicit, so it stands out.
macro_rules! across_workspaces {
    ($store:expr, $conn:ident => $body:expr) => {
        match &$store.pool {
            $crate::Pool::Sqlite(pool) => {
                let mut $conn = pool.acquire().await?;
                $body
            }
            $crate::Pool::Postgres(pool) => {
                let mut $conn = pool
                    .begin_with("BEGIN; SELECT set_config('mailwright.all_workspaces', 'on', true)")
                    .await?;
                let result = $body;
                $conn.commit().await?;
                result
            }
        }
    };
}
pub(crate) use across_workspaces;

/// Create `dir` (and its parents) readable by its owner only (0700) if it
/// does not exist; an existing folder is left as it is.
fn create_private_dir(dir: &std::path::Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

/// Create an empty database file readable by its owner only (0600) if there
/// is none; SQLite gives its `-wal` and `-shm` files the same mode.
fn create_private_file(path: &std::path::Path) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(_) => Ok(()),
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(error) => Err(error),
    }
}

/// A PostgreSQL connection idle at least this long is pinged before it is
/// handed out (see [`postgres_pool_options`]).
const PING_AFTER_IDLE: Duration = Duration::from_secs(1);

/// SQLite pools. sqlx would ping every connection as it hands it out (a
/// round trip to the connection's thread and back, two context switches);
/// the "server" is a file in this process and cannot hang up, so the check
/// buys nothing. (sqlx still pings when a connection comes back, in a task
/// of its own.)
fn sqlite_pool_options() -> SqlitePoolOptions {
    SqlitePoolOptions::new()
        .acquire_timeout(ACQUIRE_TIMEOUT)
        .test_before_acquire(false)
}

/// PostgreSQL pools. sqlx would ping every connection as it hands it out,
/// one extra network round trip per query in the caller's path (most of the store's functions are
/// one query); a busy pool's connections were in use a moment ago. Only a
/// connection idle for [`PING_AFTER_IDLE`] is checked first (a server that
/// restarted, a dropped idle connection), as HikariCP skips its check for a
/// connection used within the last 500 ms. A connection that dies under
/// load fails its query like any network error (a job retries; a request
/// answers 503) and is then closed.
fn postgres_pool_options() -> PgPoolOptions {
    PgPoolOptions::new()
        .acquire_timeout(ACQUIRE_TIMEOUT)
        .test_before_acquire(false)
        .before_acquire(|conn, meta| {
            Box::pin(async move {
                if meta.idle_for >= PING_AFTER_IDLE {
                    sqlx::Connection::ping(conn).await?;
                }
                Ok(true)
            })
        })
}

/// What every SQLite connection has: the file, and waiting for a lock
/// rather than failing at once.
fn sqlite_options(path: &std::path::Path) -> SqliteConnectOptions {
    SqliteConnectOptions::new()
        .filename(path)
        .busy_timeout(Duration::from_secs(10))
}

impl Store {
    /// Open the database (creating a SQLite file and its folder if needed,
    /// readable by their owner only).
    /// Does not migrate: call [`Store::migrate`].
    pub async fn connect(url: &DatabaseUrl) -> Result<Store, StoreError> {
        match url {
            DatabaseUrl::Sqlite { path } => {
                if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
                    create_private_dir(dir).map_err(|source| StoreError::Unavailable {
                        message: format!("cannot create the folder {}", dir.display()),
                        source: Box::new(source),
                    })?;
                }
                create_private_file(path).map_err(|source| StoreError::Unavailable {
                    message: format!("cannot create {}", path.display()),
                    source: Box::new(source),
                })?;
                let options = sqlite_options(path)
                    .create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Normal)
                    .foreign_keys(true);
                let pool = sqlite_pool_options()
                    .max_connections(8)
                    .connect_with(options)
                    .await
                    .map_err(|source| StoreError::unavailable(url, source))?;
                Ok(Store::new(Pool::Sqlite(pool)))
            }
            DatabaseUrl::Postgres { url: secret, .. } => {
                let options: PgConnectOptions = secret
                    .expose_secret()
                    .parse()
                    .map_err(|source| StoreError::unavailable(url, source))?;
                let pool = postgres_pool_options()
                    .max_connections(16)
                    .connect_with(options)
                    .await
                    .map_err(|source| StoreError::unavailable(url, source))?;
                Ok(Store::new(Pool::Postgres(pool)))
            }
        }
    }

    /// Open an existing database for reading only (`mailwright doctor`): a
    /// SQLite file is neither created nor switched to WAL, and a PostgreSQL
    /// session refuses writes (`default_transaction_read_only`).
    pub async fn connect_read_only(url: &DatabaseUrl) -> Result<Store, StoreError> {
        match url {
            DatabaseUrl::Sqlite { path } => {
                let options = sqlite_options(path)
                    .read_only(true)
                    .create_if_missing(false);
                let pool = sqlite_pool_options()
                    .max_connections(4)
                    .connect_with(options)
                    .await
                    .map_err(|source| StoreError::unavailable(url, source))?;
                Ok(Store::new(Pool::Sqlite(pool)))
            }
            DatabaseUrl::Postgres { url: secret, .. } => {
                let options: PgConnectOptions = secret
                    .expose_secret()
                    .parse()
                    .map_err(|source| StoreError::unavailable(url, source))?;
                let pool = postgres_pool_options()
                    .max_connections(4)
                    .connect_with(options.options([("default_transaction_read_only", "on")]))
                    .await
                    .map_err(|source| StoreError::unavailable(url, source))?;
                Ok(Store::new(Pool::Postgres(pool)))
            }
        }
    }

    fn new(pool: Pool) -> Store {
        Store {
            pool,
            jobs_added: Arc::new(Notify::new()),
            // A waiter that falls this far behind re-reads its run.
            run_ends: broadcast::channel(256).0,
            integrity: Arc::default(),
        }
    }

    pub fn backend(&self) -> Backend {
        match self.pool {
            Pool::Sqlite(_) => Backend::Sqlite,
            Pool::Postgres(_) => Backend::Postgres,
        }
    }

    /// Completes when this store (any clone of it) added a job since a
    /// worker last woke for one; at once if one was added while no worker
    /// was waiting. Each job added wakes one waiting worker. Jobs added by
    /// another process are not seen here: workers still poll for those.
    pub async fn job_added(&self) {
        self.jobs_added.notified().await;
    }

    /// The ids of the workflow runs this process ends from now on (any
    /// clone of the store). Runs ended by another process are not seen
    /// here: a waiter still reads its run now and then. A receiver that
    /// lags behind gets `Lagged` and should read its run.
    pub fn run_ends(&self) -> broadcast::Receiver<Uuid> {
        self.run_ends.subscribe()
    }

    /// Called after the commit that ended run `id` (or found nothing to
    /// change: a waiter woken for nothing reads its run once more).
    pub(crate) fn announce_run_end(&self, id: Uuid) {
        // An error only means nobody is waiting.
        let _ = self.run_ends.send(id);
    }

    /// Called after a commit that added `jobs` jobs (due or not: a worker
    /// woken for a later job finds nothing and waits again).
    pub(crate) fn announce_jobs(&self, jobs: usize) {
        // More wake-ups than any process has workers would change nothing.
        for _ in 0..jobs.min(64) {
            self.jobs_added.notify_one();
        }
    }

    fn migrator(&self) -> &'static Migrator {
        match self.pool {
            Pool::Sqlite(_) => &SQLITE_MIGRATIONS,
            Pool::Postgres(_) => &POSTGRES_MIGRATIONS,
        }
    }

    /// Apply every pending migration. Safe to run from several replicas at
    /// once on PostgreSQL (sqlx serialises them with an advisory lock).
    pub async fn migrate(&self) -> Result<(), StoreError> {
        if self.made_before_baseline().await {
            return Err(StoreError::BeforeBaseline);
        }
        let migrator = self.migrator();
        let result = on_pool!(self, pool => migrator.run(pool).await);
        result.map_err(|source| StoreError::Migration(Box::new(source)))
    }

    /// Whether the database was migrated by a build from before the
    /// baseline: its first migration was `foundation`, not `baseline`. (A
    /// new database has no migrations table: the query fails, and it is not.)
    async fn made_before_baseline(&self) -> bool {
        const FIRST: &str = "SELECT description FROM _sqlx_migrations WHERE version = 1";
        let first: Result<Option<String>, sqlx::Error> = on_pool!(self, pool => {
            sqlx::query_scalar(FIRST).fetch_optional(pool).await
        });
        matches!(first, Ok(Some(description)) if description != "baseline")
    }

    /// Whether the database role bypasses row-level security (a PostgreSQL
    /// superuser or a role with BYPASSRLS), so the second wall is down.
    /// Always `false` on SQLite, which has no such wall.
    pub async fn bypasses_row_security(&self) -> Result<bool, StoreError> {
        match &self.pool {
            Pool::Sqlite(_) => Ok(false),
            Pool::Postgres(pool) => Ok(sqlx::query_scalar(
                "SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = current_user",
            )
            .fetch_one(pool)
            .await?),
        }
    }

    /// Close every connection, waiting for those in use to be returned.
    pub async fn close(&self) {
        on_pool!(self, pool => pool.close().await)
    }
}

/// The current time as the database stores it (microseconds, like
/// PostgreSQL), so a value written and read back compares equal.
pub fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

#[cfg(test)]
mod pool_tests {
    use super::*;
    use crate::testing::TestDatabase;

    /// Connections are pinged only after [`PING_AFTER_IDLE`]: a query on a
    /// connection the server ended fails as "unavailable"; one dropped while
    /// it sat idle (a restart, an idle timeout) is noticed
    /// and replaced before a query uses it, so the first query after a quiet
    /// spell succeeds.
    #[tokio::test]
    async fn a_connection_the_server_dropped_while_idle_is_replaced_before_a_query_uses_it() {
        let (db, store) = TestDatabase::migrated().await;
        let Pool::Postgres(pool) = &store.pool else {
            return; // SQLite's connections are threads of this process: nothing to drop.
        };
        store.create_workspace("before").await.unwrap();
        let mut in_use = pool.acquire().await.unwrap();
        sqlx::query("SELECT 1").execute(&mut *in_use).await.unwrap();

        // Another session of the same role ends every other backend of this
        // database, as a server restart would, waiting until they are gone.
        let killer = db.connect().await;
        let Pool::Postgres(killer_pool) = &killer.pool else {
            unreachable!("same backend");
        };
        let ended: Vec<bool> = sqlx::query_scalar(
            "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity \
             WHERE datname = current_database() AND pid <> pg_backend_pid() \
               AND usename = current_user",
        )
        .fetch_all(killer_pool)
        .await
        .unwrap();
        assert!(
            ended.iter().any(|ended| *ended),
            "the pool's connection was ended"
        );

        // A connection in use when its session ends fails its query as the
        // database being away (a 503, a job's retry), never as a bug.
        let failure = sqlx::query("SELECT 1")
            .execute(&mut *in_use)
            .await
            .expect_err("the session was ended");
        assert!(
            matches!(StoreError::from(failure), StoreError::Unavailable { .. }),
            "a connection ended by the server reads as the database being unavailable"
        );
        drop(in_use);

        // Waiting out the idle threshold is the condition under test.
        tokio::time::sleep(PING_AFTER_IDLE + Duration::from_millis(300)).await;
        store
            .create_workspace("after")
            .await
            .expect("the dead connection was replaced, not handed out");
    }
}
