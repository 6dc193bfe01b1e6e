use std::collections::HashSet;

use crate::{Backend, Store, StoreError, on_pool};

/// Whether the database can serve requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Readiness {
    Ready,
    /// Reachable, but these migration versions are not applied yet.
    MigrationsPending(Vec<i64>),
}

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
        if pending.is_empty() {
            Ok(Readiness::Ready)
        } else {
            Ok(Readiness::MigrationsPending(pending))
        }
    }
}
