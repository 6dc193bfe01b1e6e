use crate::DatabaseUrl;

type Source = Box<dyn std::error::Error + Send + Sync>;

/// What can go wrong in the store, in terms callers act on.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// No such row (or not in this workspace: callers cannot tell the two apart).
    #[error("not found")]
    NotFound,
    /// A uniqueness rule was broken; the message names the rule, not the SQL.
    #[error("conflict: {0}")]
    Conflict(String),
    /// The database could not be reached or timed out.
    #[error("database unavailable: {message}")]
    Unavailable {
        message: String,
        #[source]
        source: Source,
    },
    /// The database was made by a build from before the schema baseline
    /// (decision 0015), which this build does not upgrade.
    #[error(
        "this database was created by a Mailwright development build from before 2026-12-05, whose schema this version does not upgrade; start with a new database (a new MAILWRIGHT_DATABASE_URL, or move the SQLite file away)"
    )]
    BeforeBaseline,
    /// Applying migrations failed.
    #[error("database migration failed")]
    Migration(#[source] Source),
    /// Anything else: a bug or a corrupt row. Logged, answered generically.
    #[error("database error")]
    Other(#[source] Source),
}

impl StoreError {
    pub(crate) fn unavailable(url: &DatabaseUrl, source: sqlx::Error) -> StoreError {
        StoreError::Unavailable {
            message: format!("cannot open {}", url.redacted()),
            source: Box::new(source),
        }
    }

    pub fn is_unavailable(&self) -> bool {
        matches!(self, StoreError::Unavailable { .. })
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(error: sqlx::Error) -> Self {
        match &error {
            sqlx::Error::RowNotFound => StoreError::NotFound,
            sqlx::Error::Database(db) if db.is_unique_violation() => {
                let rule = db.constraint().unwrap_or("unique value").to_owned();
                StoreError::Conflict(rule)
            }
            sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Io(_)
            | sqlx::Error::Tls(_) => StoreError::Unavailable {
                message: "the database did not answer".into(),
                source: Box::new(error),
            },
            // PostgreSQL ending the session (class 08: connection
            // exceptions; 57P01-57P03: shutdown, crash, cannot connect now),
            // as on a restart: the database is away, not the query wrong.
            sqlx::Error::Database(db)
                if db.code().is_some_and(|code| {
                    code.starts_with("08") || matches!(code.as_ref(), "57P01" | "57P02" | "57P03")
                }) =>
            {
                StoreError::Unavailable {
                    message: "the database ended the connection".into(),
                    source: Box::new(error),
                }
            }
            _ => StoreError::Other(Box::new(error)),
        }
    }
}
