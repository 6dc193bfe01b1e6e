use std::collections::HashSet;
use std::time::{Duration, Instant};

use crate::{Backend, Pool, Store, StoreError, on_pool};

/// Whether the database can serve requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Readiness {
    Ready,
    /// Reachable, but these migration versions are not applied yet.
    MigrationsPending(Vec<i64>),
    /// The SQLite file is damaged: SQLite's own check says where.
    Damaged(String),
}

/// What is known of the SQLite file's integrity: the last check's result
/// and when it ran, and whether a check is running now.
#[derive(Debug, Default)]
pub(crate) struct Integrity {
    last: Option<(Instant, Option<String>)>,
    checking: bool,
}

/// `PRAGMA quick_check` reads the whole file: at most this often (readiness
/// probes come every few seconds).
const INTEGRITY_CHECK_INTERVAL: Duration = Duration::from_secs(300);

impl Store {
    /// Checks that the database answers and that every migration this binary
    /// knows has been applied successfully.
    pub async fn readiness(&self) -> Result<Readiness, StoreError> {
        let migrations_table_exists = match self.backend() {
            Backend::Sqlite => {
                "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations')"
            }
            Backend::Postgres => "SELECT to_regclass('_sqlx_migrations') IS NOT NULL",
        };
        let applied: Vec<i64> = on_pool!(self, pool => {
            let exists: bool = sqlx::query_scalar(migrations_table_exists).fetch_one(pool).await?;
            if exists {
                sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success")
                    .fetch_all(pool)
                    .await?
            } else {
                Vec::new()
            }
        });
        let applied: HashSet<i64> = applied.into_iter().collect();
        let pending: Vec<i64> = self
            .migrator()
            .iter()
            .filter(|migration| migration.migration_type.is_up_migration())
            .map(|migration| migration.version)
            .filter(|version| !applied.contains(version))
            .collect();
        if !pending.is_empty() {
            return Ok(Readiness::MigrationsPending(pending));
        }
        match self.sqlite_integrity().await? {
            Some(problem) => Ok(Readiness::Damaged(problem)),
            None => Ok(Readiness::Ready),
        }
    }

    /// What SQLite's `quick_check` last found (`None`: nothing, or no
    /// result yet). A check older than [`INTEGRITY_CHECK_INTERVAL`] starts a
    /// new one in the background: on a large file it takes longer than a
    /// readiness probe may wait, and a probe that gave up must not lose it.
    /// PostgreSQL checks its own pages.
    async fn sqlite_integrity(&self) -> Result<Option<String>, StoreError> {
        let Pool::Sqlite(pool) = &self.pool else {
            return Ok(None);
        };
        let mut integrity = self
            .integrity
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let known = integrity.last.as_ref().map(|(_, problem)| problem.clone());
        let fresh = integrity
            .last
            .as_ref()
            .is_some_and(|(at, _)| at.elapsed() < INTEGRITY_CHECK_INTERVAL);
        if !fresh && !integrity.checking {
            integrity.checking = true;
            let (pool, shared) = (pool.clone(), std::sync::Arc::clone(&self.integrity));
            tokio::spawn(async move {
                let problem = quick_check(&pool).await;
                let mut integrity = shared
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                integrity.checking = false;
                match problem {
                    Ok(problem) => integrity.last = Some((Instant::now(), problem)),
                    // Unreachable rather than damaged: the migrations query says so.
                    Err(error) => {
                        tracing::warn!(error = %error, "the SQLite integrity check could not run")
                    }
                }
            });
        }
        Ok(known.flatten())
    }

    /// SQLite's `quick_check`, now (it reads the whole file): what is
    /// damaged, if anything. PostgreSQL checks its own pages: `None`.
    pub async fn integrity_problem_now(&self) -> Result<Option<String>, StoreError> {
        match &self.pool {
            Pool::Sqlite(pool) => Ok(quick_check(pool).await?),
            Pool::Postgres(_) => Ok(None),
        }
    }
}

async fn quick_check(pool: &sqlx::SqlitePool) -> Result<Option<String>, sqlx::Error> {
    match sqlx::query_scalar::<_, String>("PRAGMA quick_check(1)")
        .fetch_one(pool)
        .await
    {
        Ok(answer) if answer == "ok" => Ok(None),
        Ok(answer) => Ok(Some(answer)),
        // A file so damaged that the check cannot run is damaged.
        Err(sqlx::Error::Database(error)) => Ok(Some(error.message().to_owned())),
        Err(other) => Err(other),
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Seek, SeekFrom, Write};

    use super::*;
    use crate::DatabaseUrl;

    /// A SQLite file damaged on disk (here: its last pages, where the rows
    /// written last live, overwritten) is not "ready", whatever the
    /// migrations say. Runs on
    /// a SQLite file of its own whichever backend the suite tests.
    #[tokio::test]
    async fn a_damaged_sqlite_file_is_not_ready_and_says_why() {
        let folder = tempfile::tempdir().unwrap();
        let path = folder.path().join("mailwright.db");
        let url = DatabaseUrl::parse(&format!("sqlite://{}", path.display())).unwrap();
        let store = Store::connect(&url).await.unwrap();
        store.migrate().await.unwrap();
        for n in 0..200 {
            store
                .create_workspace(&format!("workspace {n}"))
                .await
                .unwrap();
        }
        assert_eq!(store.readiness().await.unwrap(), Readiness::Ready);
        store.close().await; // the last connection checkpoints the WAL

        let size = std::fs::metadata(&path).unwrap().len();
        assert!(size > 3 * 4096, "{size}");
        let mut file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        file.seek(SeekFrom::Start(size - 2 * 4096)).unwrap();
        file.write_all(&[0xA5; 2 * 4096]).unwrap();
        drop(file);

        // The check runs in the background: the probes see it within a deadline.
        let store = Store::connect(&url).await.unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match store.readiness().await {
                Ok(Readiness::Damaged(problem)) => {
                    assert!(!problem.is_empty());
                    break;
                }
                Ok(Readiness::Ready) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                other => panic!("a damaged file was {other:?}"),
            }
        }
    }

    /// A database migrated by a build from before the schema baseline is
    /// refused with one sentence saying what to do, not migrated over.
    #[tokio::test]
    async fn a_database_from_before_the_baseline_is_refused_in_one_sentence() {
        let (_db, store) = crate::testing::TestDatabase::migrated().await;
        crate::on_pool!(store, pool => {
            sqlx::query("UPDATE _sqlx_migrations SET description = 'foundation' WHERE version = 1")
                .execute(pool)
                .await
                .unwrap();
        });
        let refused = store.migrate().await.unwrap_err();
        assert!(matches!(refused, crate::StoreError::BeforeBaseline));
        let sentence = refused.to_string();
        assert!(
            sentence.contains("new database") && !sentence.contains('\n'),
            "{sentence}"
        );
    }
}
