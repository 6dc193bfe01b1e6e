use std::fmt;
use std::path::{Path, PathBuf};

use secrecy::{ExposeSecret, SecretString};

/// Where the database is. A PostgreSQL URL may hold a password, so it is kept
/// secret and shown only without its credentials.
#[derive(Clone)]
pub enum DatabaseUrl {
    Sqlite {
        path: PathBuf,
    },
    Postgres {
        url: SecretString,
        /// `postgres://host:port/db`, without user or password: for logs.
        shown: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidDatabaseUrl(String);

impl DatabaseUrl {
    /// The default: a SQLite file in the data folder.
    pub fn sqlite_in(data_dir: &Path) -> DatabaseUrl {
        DatabaseUrl::Sqlite {
            path: data_dir.join("mailwright.db"),
        }
    }

    /// Accepts `sqlite://PATH` (`sqlite:///abs/path.db` or
    /// `sqlite://relative/path.db`), `sqlite:PATH`, and
    /// `postgres://` / `postgresql://` URLs.
    pub fn parse(text: &str) -> Result<DatabaseUrl, InvalidDatabaseUrl> {
        let text = text.trim();
        if let Some(rest) = text.strip_prefix("sqlite:") {
            let rest = rest.strip_prefix("//").unwrap_or(rest);
            // Options after `?` (e.g. `?mode=rwc`) are set by Mailwright itself.
            let path = rest.split('?').next().unwrap_or_default();
            if path.is_empty() {
                return Err(InvalidDatabaseUrl(
                    "a SQLite URL needs a file path, e.g. sqlite://./data/mailwright.db".into(),
                ));
            }
            if path == ":memory:" {
                return Err(InvalidDatabaseUrl(
                    "an in-memory SQLite database would be lost on restart and differs per connection; give a file path".into(),
                ));
            }
            return Ok(DatabaseUrl::Sqlite {
                path: PathBuf::from(path),
            });
        }
        if text.starts_with("postgres://") || text.starts_with("postgresql://") {
            let parsed = url::Url::parse(text).map_err(|error| {
                InvalidDatabaseUrl(format!("not a valid PostgreSQL URL ({error})"))
            })?;
            let host = parsed.host_str().unwrap_or("localhost");
            let port = parsed
                .port()
                .map(|port| format!(":{port}"))
                .unwrap_or_default();
            let shown = format!("postgres://{host}{port}{}", parsed.path());
            return Ok(DatabaseUrl::Postgres {
                url: SecretString::from(text.to_owned()),
                shown,
            });
        }
        let scheme = text.split(':').next().unwrap_or_default();
        Err(InvalidDatabaseUrl(format!(
            "unsupported database `{scheme}:`; use sqlite://PATH or postgres://USER@HOST:PORT/DB"
        )))
    }

    /// The URL with any credentials removed, for logs and messages.
    pub fn redacted(&self) -> String {
        match self {
            DatabaseUrl::Sqlite { path } => format!("sqlite://{}", path.display()),
            DatabaseUrl::Postgres { shown, .. } => shown.clone(),
        }
    }

    /// The full URL, secret included. Only for opening connections.
    pub fn expose(&self) -> String {
        match self {
            DatabaseUrl::Sqlite { path } => format!("sqlite://{}", path.display()),
            DatabaseUrl::Postgres { url, .. } => url.expose_secret().to_owned(),
        }
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_forms() {
        for (text, path) in [
            ("sqlite://./data/x.db", "./data/x.db"),
            ("sqlite:///var/lib/mw/x.db", "/var/lib/mw/x.db"),
            ("sqlite:x.db?mode=rwc", "x.db"),
        ] {
            match DatabaseUrl::parse(text).unwrap() {
                DatabaseUrl::Sqlite { path: parsed } => assert_eq!(parsed, PathBuf::from(path)),
                other => panic!("{text} parsed as {other:?}"),
            }
        }
        assert!(DatabaseUrl::parse("sqlite://").is_err());
        assert!(DatabaseUrl::parse("sqlite::memory:").is_err());
    }

    #[test]
    fn postgres_password_never_shows() {
        let url = DatabaseUrl::parse("postgres://app:hunter2@db.internal:5433/mailwright").unwrap();
        for shown in [format!("{url:?}"), url.to_string(), url.redacted()] {
            assert!(!shown.contains("hunter2"), "{shown}");
            assert!(!shown.contains("app"), "{shown}");
            assert_eq!(shown, "postgres://db.internal:5433/mailwright");
        }
        assert!(url.expose().contains("hunter2"));
    }

    #[test]
    fn other_schemes_are_named_in_the_error() {
        let error = DatabaseUrl::parse("mysql://localhost/db").unwrap_err();
        assert!(error.to_string().contains("mysql:"), "{error}");
    }
}
