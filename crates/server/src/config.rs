//! Configuration: environment variables, optionally a TOML file with the same
//! keys (`--config`), validated once at start. Environment wins over the
//! file, the file over defaults. A bad value is reported in one line naming
//! the variable, and stops startup.

use std::collections::{BTreeMap, HashMap};
use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use domain::retry::RetryPolicy;
use engine::autodraft::AutoDraftSettings;
use engine::keyring::Keyring;
use providers::google::oauth::GoogleEndpoints;
use providers::llm::LlmSettings;
use providers::mail::Sender;
use providers::microsoft::identity::{MicrosoftEndpoints, MicrosoftOAuth};
use secrecy::SecretString;
use store::DatabaseUrl;
use url::Url;

use crate::auth::throttle::{SigninLimits, TrustedProxies};

/// Settings Mailwright reads, by their environment name. In a `--config`
/// file the same keys are accepted as written here or in lower case without
/// the `MAILWRIGHT_` prefix (`database_url = "..."`).
pub const SETTINGS: &[&str] = &[
    "MAILWRIGHT_DATA_DIR",
    "MAILWRIGHT_DATABASE_URL",
    "MAILWRIGHT_LISTEN",
    "MAILWRIGHT_PUBLIC_URL",
    "MAILWRIGHT_LOG_FORMAT",
    "RUST_LOG",
    "MAILWRIGHT_AUTH_JWKS_URL",
    "MAILWRIGHT_AUTH_ISSUER",
    "MAILWRIGHT_AUTH_AUDIENCE",
    "MAILWRIGHT_AUTH_WORKSPACE_CLAIM",
    "MAILWRIGHT_ENCRYPTION_KEYS",
    "MAILWRIGHT_GOOGLE_CLIENT_ID",
    "MAILWRIGHT_GOOGLE_CLIENT_SECRET",
    "MAILWRIGHT_GOOGLE_AUTH_URL",
    "MAILWRIGHT_GOOGLE_TOKEN_URL",
    "MAILWRIGHT_GOOGLE_REVOKE_URL",
    "MAILWRIGHT_GOOGLE_USERINFO_URL",
    "MAILWRIGHT_GMAIL_API_URL",
    "MAILWRIGHT_MICROSOFT_CLIENT_ID",
    "MAILWRIGHT_MICROSOFT_CLIENT_SECRET",
    "MAILWRIGHT_MICROSOFT_TENANT",
    "MAILWRIGHT_MICROSOFT_AUTH_URL",
    "MAILWRIGHT_MICROSOFT_TOKEN_URL",
    "MAILWRIGHT_GRAPH_API_URL",
    "MAILWRIGHT_SIDEMAIL_API_KEY",
    "MAILWRIGHT_SIDEMAIL_API_URL",
    "MAILWRIGHT_SMTP_URL",
    "MAILWRIGHT_SYSTEM_FROM",
    "MAILWRIGHT_AUTODRAFT_POLL_SECONDS",
    "MAILWRIGHT_AUTODRAFT_ALERT_FAILURE_RATE",
    "MAILWRIGHT_AUTODRAFT_ALERT_WINDOW_MINUTES",
    "MAILWRIGHT_AUTODRAFT_ALERT_MIN_MESSAGES",
    "MAILWRIGHT_PUSH_TOKEN",
    "MAILWRIGHT_GMAIL_PUBSUB_TOPIC",
    "MAILWRIGHT_PUSH_AUDIENCE",
    "MAILWRIGHT_PUSH_SERVICE_ACCOUNT",
    "MAILWRIGHT_GOOGLE_CERTS_URL",
    "MAILWRIGHT_CLERK_SECRET_KEY",
    "MAILWRIGHT_CLERK_API_URL",
    "MAILWRIGHT_CLERK_REAUTHORIZE_URL",
    "MAILWRIGHT_LLM_URL",
    "MAILWRIGHT_LLM_MODEL",
    "MAILWRIGHT_LLM_API_KEY",
    "MAILWRIGHT_LLM_DAILY_TOKENS",
    "MAILWRIGHT_IMAP_IDLE_CONNECTIONS",
    "MAILWRIGHT_RETRY_HORIZON_HOURS",
    "MAILWRIGHT_RETRY_BASE_MILLIS",
    "MAILWRIGHT_JOB_LEASE_SECONDS",
    "MAILWRIGHT_SIGNIN_MAX_FAILURES",
    "MAILWRIGHT_SIGNIN_LOCKOUT_MINUTES",
    "MAILWRIGHT_SIGNIN_ATTEMPTS_PER_MINUTE",
    "MAILWRIGHT_TRUSTED_PROXIES",
    "MAILWRIGHT_OUTBOUND_ALLOW_PRIVATE_NETWORKS",
];

/// Environment variables that belong to other tools (the test suite, the
/// CLI parser) and are not settings.
const NOT_SETTINGS: &[&str] = &[
    "MAILWRIGHT_CONFIG",
    "MAILWRIGHT_TEST_POSTGRES_URL",
    "MAILWRIGHT_REQUIRE_POSTGRES",
];

#[derive(Debug, Clone)]
pub struct Config {
    pub data_dir: PathBuf,
    pub database_url: DatabaseUrl,
    pub listen: SocketAddr,
    /// External base URL, without a trailing slash.
    pub public_url: Url,
    /// Whether `MAILWRIGHT_PUBLIC_URL` was given (else it follows the
    /// address actually bound, which matters when listening on port 0).
    pub public_url_explicit: bool,
    /// `id:base64,...`; `None` means "generate a key file" (SQLite only).
    pub encryption_keys: Option<SecretString>,
    /// The OAuth client; `None` when Google is not configured.
    pub google: Option<OAuthClientSettings>,
    pub google_endpoints: GoogleEndpoints,
    pub gmail_api_url: Url,
    /// The Microsoft identity platform app; `None` when Microsoft is not
    /// configured.
    pub microsoft: Option<OAuthClientSettings>,
    /// The tenant's (or the overriding) authorize and token URLs, and Graph's.
    pub microsoft_endpoints: MicrosoftEndpoints,
    /// How Mailwright's own email leaves.
    pub mail: MailConfig,
    pub system_from: Sender,
    pub log_format: LogFormat,
    /// A `tracing` filter (`RUST_LOG` syntax), already checked.
    pub log_filter: String,
    /// JWT bearer authentication; `None` when no JWKS URL is configured.
    pub jwt: Option<JwtConfig>,
    pub autodraft: AutoDraftSettings,
    /// The shared secret of `POST /api/push/gmail` (`?token=`).
    pub push_token: Option<SecretString>,
    /// Clerk's Backend API, for Google tokens Clerk holds.
    pub clerk: Option<ClerkSettings>,
    /// Pub/Sub's OIDC authentication of `POST /api/push/gmail`. With
    /// neither this nor `push_token`, push is refused.
    pub push_oidc: Option<PushOidc>,
    /// The OpenAI-compatible reply generator; `None`: the built-in drafter.
    pub llm: Option<LlmSettings>,
    /// How transient failures of background work are retried.
    pub retry: RetryPolicy,
    /// How long a worker holds a claimed job without renewing it: a job
    /// whose process died is taken again after this.
    pub job_lease: Duration,
    /// Brute-force limits of the sign-in and setup forms.
    pub signin: SigninLimits,
    /// Proxies whose `X-Forwarded-For` names the client (none by default).
    pub trusted_proxies: TrustedProxies,
    /// Whether webhooks may reach private, loopback and link-local
    /// addresses (tests, the demo, a private network on purpose).
    pub outbound_allow_private: bool,
    /// The roots IMAP and SMTP servers' certificates are checked against:
    /// the system's plus the bundle `SSL_CERT_FILE` names.
    pub mail_tls: providers::imap::MailTls,
}

/// The system email provider.
#[derive(Debug, Clone)]
pub enum MailConfig {
    /// Kept in the outbox and logged only.
    Log,
    Sidemail {
        api_url: Url,
        api_key: SecretString,
    },
    /// The URL may hold a password.
    Smtp {
        url: SecretString,
    },
}

/// An OAuth client Mailwright is registered as (at Google or Microsoft).
#[derive(Clone)]
pub struct OAuthClientSettings {
    pub client_id: String,
    pub client_secret: SecretString,
}

impl std::fmt::Debug for OAuthClientSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuthClientSettings")
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

/// What a Pub/Sub push's Google-signed OIDC token must say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushOidc {
    /// Google's signing keys (a JWKS document).
    pub certs_url: Url,
    /// The push subscription's audience (`aud`).
    pub audience: String,
    /// The service account the subscription authenticates as (`email`).
    pub service_account: String,
}

/// Clerk, where people sign in with Google and which holds their Google
/// tokens.
#[derive(Clone)]
pub struct ClerkSettings {
    pub secret_key: SecretString,
    pub api_url: Url,
    /// Where a person re-authorises Google in the app they sign in to
    /// through Clerk (its account page); without it, reconnecting a
    /// Clerk-held connection says what to do in words.
    pub reauthorize_url: Option<Url>,
}

impl std::fmt::Debug for ClerkSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClerkSettings")
            .field("api_url", &self.api_url.as_str())
            .field(
                "reauthorize_url",
                &self.reauthorize_url.as_ref().map(Url::as_str),
            )
            .finish_non_exhaustive()
    }
}

/// Clerk's Backend API.
pub const CLERK_API_URL: &str = "https://api.clerk.com";

/// Google's keys for the ID tokens Pub/Sub push sends.
pub const GOOGLE_CERTS_URL: &str = "https://www.googleapis.com/oauth2/v3/certs";

/// How bearer JWTs are verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwtConfig {
    pub jwks_url: Url,
    /// Checked against `iss` when set.
    pub issuer: Option<String>,
    /// Checked against `aud` when set.
    pub audience: Option<String>,
    /// The claim naming the workspace (`org_id` by default).
    pub workspace_claim: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Json,
    Text,
}

/// A setting that stops startup: which one, where it came from, what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("configuration error: {setting}: {problem}")]
pub struct ConfigError {
    /// The variable (or `key (in FILE)` for a file setting).
    pub setting: String,
    pub problem: String,
}

/// Where a value came from, for error messages.
#[derive(Debug, Clone)]
enum Origin {
    Environment(&'static str),
    File { key: String, path: PathBuf },
}

impl Origin {
    fn describe(&self) -> String {
        match self {
            Origin::Environment(name) => (*name).to_owned(),
            Origin::File { key, path } => format!("{key} (in {})", path.display()),
        }
    }
}

/// The raw, unparsed settings from the environment and the file.
struct Sources {
    env: HashMap<String, String>,
    file: BTreeMap<&'static str, (String, Origin)>,
}

impl Sources {
    fn get(&self, name: &'static str) -> Option<(String, Origin)> {
        if let Some(value) = self.env.get(name).filter(|value| !value.trim().is_empty()) {
            return Some((value.trim().to_owned(), Origin::Environment(name)));
        }
        self.file.get(name).cloned()
    }
}

fn error(origin: &Origin, problem: impl Into<String>) -> ConfigError {
    ConfigError {
        setting: origin.describe(),
        problem: problem.into(),
    }
}

/// The name a file key stands for: `database_url` and
/// `MAILWRIGHT_DATABASE_URL` both mean `MAILWRIGHT_DATABASE_URL`.
fn setting_for_file_key(key: &str) -> Option<&'static str> {
    let upper = key.to_ascii_uppercase();
    SETTINGS
        .iter()
        .copied()
        .find(|name| *name == upper || name.strip_prefix("MAILWRIGHT_") == Some(upper.as_str()))
}

fn read_file(path: &Path) -> Result<BTreeMap<&'static str, (String, Origin)>, ConfigError> {
    let file_error = |problem: String| ConfigError {
        setting: format!("--config {}", path.display()),
        problem,
    };
    let text = std::fs::read_to_string(path)
        .map_err(|io| file_error(format!("cannot read the file ({io})")))?;
    let table: toml::Table = text.parse().map_err(|parse: toml::de::Error| {
        let first_line = parse
            .to_string()
            .lines()
            .next()
            .unwrap_or_default()
            .to_owned();
        file_error(format!("not valid TOML: {first_line}"))
    })?;
    let mut values = BTreeMap::new();
    for (key, value) in table {
        let Some(setting) = setting_for_file_key(&key) else {
            return Err(file_error(format!(
                "unknown key `{key}`; known keys: {}",
                SETTINGS
                    .iter()
                    .map(|name| name.trim_start_matches("MAILWRIGHT_").to_ascii_lowercase())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        };
        let origin = Origin::File {
            key: key.clone(),
            path: path.to_path_buf(),
        };
        let text = match value {
            toml::Value::String(text) => text,
            toml::Value::Integer(number) => number.to_string(),
            toml::Value::Boolean(flag) => flag.to_string(),
            other => {
                return Err(error(
                    &origin,
                    format!("expected a string, found a {}", other.type_str()),
                ));
            }
        };
        values.insert(setting, (text, origin));
    }
    Ok(values)
}

impl Config {
    /// Read the configuration from `env` (name, value pairs) and an optional
    /// file. Also returns warnings worth logging (unknown variables).
    pub fn load(
        env: impl IntoIterator<Item = (String, String)>,
        config_file: Option<&Path>,
    ) -> Result<(Config, Vec<String>), ConfigError> {
        let env: HashMap<String, String> = env.into_iter().collect();
        let mut warnings: Vec<String> = env
            .keys()
            .filter(|name| name.starts_with("MAILWRIGHT_"))
            .filter(|name| !SETTINGS.contains(&name.as_str()) && !NOT_SETTINGS.contains(&name.as_str()))
            .map(|name| format!("{name} is set but is not a setting this version of Mailwright reads; it is ignored"))
            .collect();
        let file = match config_file {
            Some(path) => read_file(path)?,
            None => BTreeMap::new(),
        };
        let sources = Sources { env, file };

        let data_dir = sources
            .get("MAILWRIGHT_DATA_DIR")
            .map(|(value, _)| PathBuf::from(value))
            .unwrap_or_else(|| PathBuf::from("./data"));

        let database_url = match sources.get("MAILWRIGHT_DATABASE_URL") {
            Some((value, origin)) => {
                DatabaseUrl::parse(&value).map_err(|problem| error(&origin, problem.to_string()))?
            }
            None => DatabaseUrl::sqlite_in(&data_dir),
        };

        let listen = match sources.get("MAILWRIGHT_LISTEN") {
            Some((value, origin)) => value.parse::<SocketAddr>().map_err(|_| {
                error(&origin, format!("`{value}` is not an IP address and port such as 127.0.0.1:8080 or 0.0.0.0:8080"))
            })?,
            None => SocketAddr::from(([127, 0, 0, 1], 8080)),
        };

        let public_url_explicit = sources.get("MAILWRIGHT_PUBLIC_URL").is_some();
        let public_url = match sources.get("MAILWRIGHT_PUBLIC_URL") {
            Some((value, origin)) => {
                parse_public_url(&value).map_err(|problem| error(&origin, problem))?
            }
            None => Url::parse(&format!("http://{listen}")).map_err(|_| ConfigError {
                setting: "MAILWRIGHT_PUBLIC_URL".into(),
                problem: format!(
                    "cannot derive a URL from the listen address {listen}; set it explicitly"
                ),
            })?,
        };

        let log_format = match sources.get("MAILWRIGHT_LOG_FORMAT") {
            Some((value, origin)) => match value.to_ascii_lowercase().as_str() {
                "json" => LogFormat::Json,
                "text" | "pretty" => LogFormat::Text,
                _ => {
                    return Err(error(
                        &origin,
                        format!("`{value}` is not a log format; use json or text"),
                    ));
                }
            },
            None if std::io::stdout().is_terminal() => LogFormat::Text,
            None => LogFormat::Json,
        };

        let log_filter = match sources.get("RUST_LOG") {
            Some((value, origin)) => {
                tracing_subscriber::EnvFilter::try_new(&value).map_err(|problem| {
                    error(
                        &origin,
                        format!("`{value}` is not a valid log filter ({problem})"),
                    )
                })?;
                value
            }
            // PostgreSQL's notices ("relation already exists, skipping"
            // while migrating) are not worth an info line.
            None => "info,sqlx::postgres::notice=warn".to_owned(),
        };

        let jwt = match sources.get("MAILWRIGHT_AUTH_JWKS_URL") {
            Some((value, origin)) => {
                let jwks_url = Url::parse(&value)
                    .ok()
                    .filter(|url| matches!(url.scheme(), "http" | "https"))
                    .ok_or_else(|| {
                        error(
                            &origin,
                            format!("`{value}` is not an http(s) URL of a JWKS document"),
                        )
                    })?;
                let workspace_claim = sources
                    .get("MAILWRIGHT_AUTH_WORKSPACE_CLAIM")
                    .map(|(claim, _)| claim)
                    .unwrap_or_else(|| "org_id".to_owned());
                Some(JwtConfig {
                    jwks_url,
                    issuer: sources
                        .get("MAILWRIGHT_AUTH_ISSUER")
                        .map(|(issuer, _)| issuer),
                    audience: sources
                        .get("MAILWRIGHT_AUTH_AUDIENCE")
                        .map(|(audience, _)| audience),
                    workspace_claim,
                })
            }
            None => {
                for dependent in [
                    "MAILWRIGHT_AUTH_ISSUER",
                    "MAILWRIGHT_AUTH_AUDIENCE",
                    "MAILWRIGHT_AUTH_WORKSPACE_CLAIM",
                ] {
                    if let Some((_, origin)) = sources.get(dependent) {
                        return Err(error(
                            &origin,
                            "is set but MAILWRIGHT_AUTH_JWKS_URL is not; JWT authentication needs the JWKS URL",
                        ));
                    }
                }
                None
            }
        };

        let encryption_keys = match sources.get("MAILWRIGHT_ENCRYPTION_KEYS") {
            Some((value, origin)) => {
                Keyring::parse(&value).map_err(|problem| error(&origin, problem.to_string()))?;
                Some(SecretString::from(value))
            }
            None if matches!(database_url, DatabaseUrl::Postgres { .. }) => {
                return Err(ConfigError {
                    setting: "MAILWRIGHT_ENCRYPTION_KEYS".into(),
                    problem: "is required with PostgreSQL (replicas must share the key); set it to k1:<base64 of 32 random bytes>, e.g. `echo k1:$(openssl rand -base64 32)`".into(),
                });
            }
            None => None,
        };

        let url_setting = |name: &'static str, default: &str| -> Result<Url, ConfigError> {
            match sources.get(name) {
                Some((value, origin)) => Url::parse(&value)
                    .ok()
                    .filter(|url| matches!(url.scheme(), "http" | "https"))
                    .ok_or_else(|| error(&origin, format!("`{value}` is not an http(s) URL"))),
                None => Ok(Url::parse(default).expect("default URLs are valid")),
            }
        };
        let google_endpoints = GoogleEndpoints {
            auth_url: url_setting(
                "MAILWRIGHT_GOOGLE_AUTH_URL",
                "https://accounts.google.com/o/oauth2/v2/auth",
            )?,
            token_url: url_setting(
                "MAILWRIGHT_GOOGLE_TOKEN_URL",
                "https://oauth2.googleapis.com/token",
            )?,
            revoke_url: url_setting(
                "MAILWRIGHT_GOOGLE_REVOKE_URL",
                "https://oauth2.googleapis.com/revoke",
            )?,
            userinfo_url: url_setting(
                "MAILWRIGHT_GOOGLE_USERINFO_URL",
                "https://openidconnect.googleapis.com/v1/userinfo",
            )?,
        };
        let gmail_api_url =
            url_setting("MAILWRIGHT_GMAIL_API_URL", "https://gmail.googleapis.com")?;
        // An OAuth client is its id and its secret: both or neither.
        let client = |id: &'static str, secret: &'static str, registration: &str| match (
            sources.get(id),
            sources.get(secret),
        ) {
            (Some((client_id, _)), Some((secret, _))) => Ok(Some(OAuthClientSettings {
                client_id,
                client_secret: SecretString::from(secret),
            })),
            (None, None) => Ok(None),
            (Some((_, origin)), None) => Err(error(
                &origin,
                format!("is set but {secret} is not; both come from the same {registration}"),
            )),
            (None, Some((_, origin))) => Err(error(
                &origin,
                format!("is set but {id} is not; both come from the same {registration}"),
            )),
        };
        let google = client(
            "MAILWRIGHT_GOOGLE_CLIENT_ID",
            "MAILWRIGHT_GOOGLE_CLIENT_SECRET",
            "Google OAuth client",
        )?;
        let microsoft = client(
            "MAILWRIGHT_MICROSOFT_CLIENT_ID",
            "MAILWRIGHT_MICROSOFT_CLIENT_SECRET",
            "app registration",
        )?;
        let tenant = match sources.get("MAILWRIGHT_MICROSOFT_TENANT") {
            Some((value, origin)) => {
                // A tenant is `common`, `organizations`, `consumers`, a GUID
                // or a domain: it goes into a URL path.
                let valid = !value.is_empty()
                    && value.len() <= 253
                    && value
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.');
                if !valid {
                    return Err(error(
                        &origin,
                        format!(
                            "`{value}` is not a tenant: use common, organizations, consumers, a directory id or a domain"
                        ),
                    ));
                }
                value
            }
            None => "common".to_owned(),
        };
        let defaults = MicrosoftEndpoints::for_tenant(&tenant);
        let microsoft_endpoints = MicrosoftEndpoints {
            auth_url: url_setting("MAILWRIGHT_MICROSOFT_AUTH_URL", defaults.auth_url.as_str())?,
            token_url: url_setting(
                "MAILWRIGHT_MICROSOFT_TOKEN_URL",
                defaults.token_url.as_str(),
            )?,
            graph_url: url_setting("MAILWRIGHT_GRAPH_API_URL", defaults.graph_url.as_str())?,
        };

        let sidemail_api_url =
            url_setting("MAILWRIGHT_SIDEMAIL_API_URL", "https://api.sidemail.io")?;
        let mail = match (
            sources.get("MAILWRIGHT_SIDEMAIL_API_KEY"),
            sources.get("MAILWRIGHT_SMTP_URL"),
        ) {
            (Some(_), Some((_, origin))) => {
                return Err(error(
                    &origin,
                    "and MAILWRIGHT_SIDEMAIL_API_KEY are both set; choose one way to send system email",
                ));
            }
            (Some((key, _)), None) => MailConfig::Sidemail {
                api_url: sidemail_api_url,
                api_key: SecretString::from(key),
            },
            (None, Some((url, origin))) => {
                providers::mail::smtp::check_url(&url)
                    .map_err(|problem| error(&origin, problem))?;
                MailConfig::Smtp {
                    url: SecretString::from(url),
                }
            }
            (None, None) => MailConfig::Log,
        };
        let system_from = match sources.get("MAILWRIGHT_SYSTEM_FROM") {
            Some((value, origin)) => {
                Sender::parse(&value).map_err(|problem| error(&origin, problem))?
            }
            None => Sender::parse("Mailwright <no-reply@localhost>")
                .expect("the default sender is valid"),
        };

        let number = |name: &'static str| -> Result<Option<(f64, Origin)>, ConfigError> {
            match sources.get(name) {
                Some((value, origin)) => match value.parse::<f64>() {
                    Ok(number) if number.is_finite() => Ok(Some((number, origin))),
                    _ => Err(error(&origin, format!("`{value}` is not a number"))),
                },
                None => Ok(None),
            }
        };
        let mut autodraft = AutoDraftSettings::default();
        if let Some((seconds, origin)) = number("MAILWRIGHT_AUTODRAFT_POLL_SECONDS")? {
            if !(1.0..=86_400.0).contains(&seconds) || seconds.fract() != 0.0 {
                return Err(error(
                    &origin,
                    "must be a whole number of seconds from 1 to 86400",
                ));
            }
            autodraft.poll_interval = Duration::from_secs(seconds as u64);
        }
        if let Some((tokens, origin)) = number("MAILWRIGHT_LLM_DAILY_TOKENS")? {
            if !(0.0..=1e12).contains(&tokens) || tokens.fract() != 0.0 {
                return Err(error(
                    &origin,
                    "must be a whole number of tokens per mailbox and day, e.g. 200000 (0: never the model)",
                ));
            }
            autodraft.llm_daily_tokens = tokens as u64;
        }
        if let Some((count, origin)) = number("MAILWRIGHT_IMAP_IDLE_CONNECTIONS")? {
            if !(0.0..=10_000.0).contains(&count) || count.fract() != 0.0 {
                return Err(error(
                    &origin,
                    "must be a whole number of connections from 0 to 10000 (0: poll every IMAP mailbox)",
                ));
            }
            autodraft.imap_idle_connections = count as usize;
        }
        if let Some((rate, origin)) = number("MAILWRIGHT_AUTODRAFT_ALERT_FAILURE_RATE")? {
            if !(rate > 0.0 && rate <= 1.0) {
                return Err(error(
                    &origin,
                    "must be a share above 0 and at most 1, e.g. 0.5",
                ));
            }
            autodraft.alert_failure_rate = rate;
        }
        if let Some((minutes, origin)) = number("MAILWRIGHT_AUTODRAFT_ALERT_WINDOW_MINUTES")? {
            if !(1.0..=10_080.0).contains(&minutes) || minutes.fract() != 0.0 {
                return Err(error(
                    &origin,
                    "must be a whole number of minutes from 1 to 10080",
                ));
            }
            autodraft.alert_window = Duration::from_secs(minutes as u64 * 60);
        }
        if let Some((count, origin)) = number("MAILWRIGHT_AUTODRAFT_ALERT_MIN_MESSAGES")? {
            if !(1.0..=100_000.0).contains(&count) || count.fract() != 0.0 {
                return Err(error(&origin, "must be a whole number from 1 to 100000"));
            }
            autodraft.alert_min_messages = count as i64;
        }
        let mut retry = RetryPolicy::DEFAULT;
        if let Some((hours, origin)) = number("MAILWRIGHT_RETRY_HORIZON_HOURS")? {
            if !(hours > 0.0 && hours <= 720.0) {
                return Err(error(
                    &origin,
                    "must be a number of hours above 0 and at most 720, e.g. 24",
                ));
            }
            retry.horizon = Duration::from_secs_f64(hours * 3600.0);
        }
        if let Some((millis, origin)) = number("MAILWRIGHT_RETRY_BASE_MILLIS")? {
            if !(10.0..=60_000.0).contains(&millis) || millis.fract() != 0.0 {
                return Err(error(
                    &origin,
                    "must be a whole number of milliseconds from 10 to 60000",
                ));
            }
            retry.base = Duration::from_millis(millis as u64);
        }
        let mut job_lease = engine::worker::DEFAULT_LEASE;
        if let Some((seconds, origin)) = number("MAILWRIGHT_JOB_LEASE_SECONDS")? {
            if !(2.0..=3_600.0).contains(&seconds) || seconds.fract() != 0.0 {
                return Err(error(
                    &origin,
                    "must be a whole number of seconds from 2 to 3600",
                ));
            }
            job_lease = Duration::from_secs(seconds as u64);
        }
        let mut signin = SigninLimits::default();
        if let Some((count, origin)) = number("MAILWRIGHT_SIGNIN_MAX_FAILURES")? {
            if !(1.0..=1_000.0).contains(&count) || count.fract() != 0.0 {
                return Err(error(&origin, "must be a whole number from 1 to 1000"));
            }
            signin.max_failures = count as u32;
        }
        if let Some((minutes, origin)) = number("MAILWRIGHT_SIGNIN_LOCKOUT_MINUTES")? {
            if !(0.01..=1_440.0).contains(&minutes) {
                return Err(error(
                    &origin,
                    "must be a number of minutes from 0.01 to 1440, e.g. 15",
                ));
            }
            signin.lockout_cap = Duration::from_secs_f64(minutes * 60.0);
        }
        if let Some((count, origin)) = number("MAILWRIGHT_SIGNIN_ATTEMPTS_PER_MINUTE")? {
            if !(1.0..=100_000.0).contains(&count) || count.fract() != 0.0 {
                return Err(error(&origin, "must be a whole number from 1 to 100000"));
            }
            signin.attempts_per_minute = count as u32;
        }
        let trusted_proxies = match sources.get("MAILWRIGHT_TRUSTED_PROXIES") {
            Some((value, origin)) => {
                TrustedProxies::parse(&value).map_err(|problem| error(&origin, problem))?
            }
            None => TrustedProxies::default(),
        };
        let outbound_allow_private = match sources.get("MAILWRIGHT_OUTBOUND_ALLOW_PRIVATE_NETWORKS")
        {
            Some((value, origin)) => match value.trim().to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" => true,
                "false" | "0" | "no" | "" => false,
                _ => return Err(error(&origin, "must be true or false")),
            },
            None => false,
        };
        let mail_tls = match sources.get("SSL_CERT_FILE") {
            Some((path, origin)) => providers::imap::MailTls::load(Some(Path::new(&path)))
                .map_err(|problem| error(&origin, problem))?,
            None => providers::imap::MailTls::load(None).map_err(|problem| ConfigError {
                setting: "the system's CA certificates".into(),
                problem,
            })?,
        };
        let push_token = match sources.get("MAILWRIGHT_PUSH_TOKEN") {
            Some((value, origin)) if value.len() < 16 => {
                return Err(error(
                    &origin,
                    "is too short to be a secret; use at least 16 random characters, e.g. `openssl rand -hex 24`",
                ));
            }
            Some((value, _)) => Some(SecretString::from(value)),
            None => None,
        };
        let push_oidc = match (
            sources.get("MAILWRIGHT_PUSH_AUDIENCE"),
            sources.get("MAILWRIGHT_PUSH_SERVICE_ACCOUNT"),
        ) {
            (Some((audience, _)), Some((service_account, origin))) => {
                if !service_account.contains('@') {
                    return Err(error(
                        &origin,
                        format!(
                            "`{service_account}` is not a service account's email, such as push@PROJECT.iam.gserviceaccount.com"
                        ),
                    ));
                }
                let certs_url = match sources.get("MAILWRIGHT_GOOGLE_CERTS_URL") {
                    Some((value, origin)) => Url::parse(&value)
                        .ok()
                        .filter(|url| matches!(url.scheme(), "http" | "https"))
                        .ok_or_else(|| {
                            error(
                                &origin,
                                format!("`{value}` is not an http(s) URL of a JWKS document"),
                            )
                        })?,
                    None => Url::parse(GOOGLE_CERTS_URL).expect("Google's certificates URL"),
                };
                Some(PushOidc {
                    certs_url,
                    audience,
                    service_account,
                })
            }
            (Some((_, origin)), None) => {
                return Err(error(
                    &origin,
                    "is set but MAILWRIGHT_PUSH_SERVICE_ACCOUNT is not; name the service account the push subscription authenticates as",
                ));
            }
            (None, Some((_, origin))) => {
                return Err(error(
                    &origin,
                    "is set but MAILWRIGHT_PUSH_AUDIENCE is not; give the audience configured on the push subscription",
                ));
            }
            (None, None) => None,
        };
        let http_url = |name: &'static str, what: &str| -> Result<Option<Url>, ConfigError> {
            match sources.get(name) {
                Some((value, origin)) => Url::parse(&value)
                    .ok()
                    .filter(|url| matches!(url.scheme(), "http" | "https"))
                    .map(Some)
                    .ok_or_else(|| {
                        error(&origin, format!("`{value}` is not an http(s) URL {what}"))
                    }),
                None => Ok(None),
            }
        };
        let clerk = match sources.get("MAILWRIGHT_CLERK_SECRET_KEY") {
            Some((value, origin)) if !value.starts_with("sk_") => {
                return Err(error(
                    &origin,
                    "is not a Clerk secret key (they start with sk_live_ or sk_test_; Clerk dashboard, API keys)",
                ));
            }
            Some((value, _)) => Some(ClerkSettings {
                secret_key: SecretString::from(value),
                api_url: http_url("MAILWRIGHT_CLERK_API_URL", "of Clerk's Backend API")?
                    .unwrap_or_else(|| Url::parse(CLERK_API_URL).expect("Clerk's API URL")),
                reauthorize_url: http_url(
                    "MAILWRIGHT_CLERK_REAUTHORIZE_URL",
                    "of the page where people re-authorise Google",
                )?,
            }),
            None => {
                for dependent in [
                    "MAILWRIGHT_CLERK_API_URL",
                    "MAILWRIGHT_CLERK_REAUTHORIZE_URL",
                ] {
                    if let Some((_, origin)) = sources.get(dependent) {
                        return Err(error(
                            &origin,
                            "is set but MAILWRIGHT_CLERK_SECRET_KEY is not; without the key Mailwright cannot ask Clerk",
                        ));
                    }
                }
                None
            }
        };
        if let Some((value, origin)) = sources.get("MAILWRIGHT_GMAIL_PUBSUB_TOPIC") {
            autodraft.pubsub_topic = Some(
                domain::pubsub::PubSubTopic::parse(value.trim())
                    .map_err(|problem| error(&origin, problem))?,
            );
        }
        let llm = match sources.get("MAILWRIGHT_LLM_URL") {
            Some((value, origin)) => {
                let base_url = Url::parse(&value)
                    .ok()
                    .filter(|url| matches!(url.scheme(), "http" | "https"))
                    .ok_or_else(|| {
                        error(
                            &origin,
                            format!(
                                "`{value}` is not an http(s) URL such as http://127.0.0.1:11434/v1"
                            ),
                        )
                    })?;
                let Some((model, _)) = sources.get("MAILWRIGHT_LLM_MODEL") else {
                    return Err(error(
                        &origin,
                        "is set but MAILWRIGHT_LLM_MODEL is not; name the model to ask, e.g. llama3.1",
                    ));
                };
                Some(LlmSettings {
                    base_url,
                    model,
                    api_key: sources
                        .get("MAILWRIGHT_LLM_API_KEY")
                        .map(|(key, _)| SecretString::from(key)),
                    timeout: Duration::from_secs(60),
                })
            }
            None => {
                for dependent in ["MAILWRIGHT_LLM_MODEL", "MAILWRIGHT_LLM_API_KEY"] {
                    if let Some((_, origin)) = sources.get(dependent) {
                        return Err(error(
                            &origin,
                            "is set but MAILWRIGHT_LLM_URL is not; without the URL the built-in drafter is used",
                        ));
                    }
                }
                None
            }
        };

        if autodraft.pubsub_topic.is_some() && push_token.is_none() && push_oidc.is_none() {
            warnings.push(
                "MAILWRIGHT_GMAIL_PUBSUB_TOPIC is set, but POST /api/push/gmail accepts no push: set MAILWRIGHT_PUSH_AUDIENCE and MAILWRIGHT_PUSH_SERVICE_ACCOUNT (or MAILWRIGHT_PUSH_TOKEN); until then the poll finds new mail".into(),
            );
        }
        autodraft.retry = retry;
        let config = Config {
            outbound_allow_private,
            mail_tls,
            retry,
            job_lease,
            signin,
            trusted_proxies,
            autodraft,
            push_token,
            push_oidc,
            clerk,
            llm,
            mail,
            system_from,
            public_url_explicit,
            encryption_keys,
            google,
            google_endpoints,
            microsoft,
            microsoft_endpoints,
            gmail_api_url,
            jwt,
            data_dir,
            database_url,
            listen,
            public_url,
            log_format,
            log_filter,
        };
        Ok((config, warnings))
    }

    /// The client of Clerk's Backend API, when Clerk is configured.
    pub fn clerk_client(&self, http: &reqwest::Client) -> Option<providers::clerk::Clerk> {
        self.clerk.as_ref().map(|clerk| {
            providers::clerk::Clerk::new(
                clerk.api_url.clone(),
                clerk.secret_key.clone(),
                http.clone(),
                self.google_endpoints.userinfo_url.clone(),
            )
        })
    }

    /// Where Google sends people back after the consent screen.
    pub fn oauth_redirect_uri(&self) -> String {
        self.public_url_for("/api/auth/oauth/google/callback")
    }

    /// Where Microsoft sends people back after sign-in and consent.
    pub fn microsoft_redirect_uri(&self) -> String {
        self.public_url_for("/api/auth/oauth/microsoft/callback")
    }

    /// The Microsoft identity platform app, when configured.
    pub fn microsoft_client(&self, http: &reqwest::Client) -> Option<MicrosoftOAuth> {
        self.microsoft.as_ref().map(|client| {
            MicrosoftOAuth::new(
                client.client_id.clone(),
                client.client_secret.clone(),
                self.microsoft_endpoints.clone(),
                http.clone(),
            )
        })
    }

    /// Whether browsers reach this service over HTTPS (cookies get `Secure`).
    pub fn is_https(&self) -> bool {
        self.public_url.scheme() == "https"
    }

    /// An absolute URL for a path of this service (`/api/...`).
    pub fn public_url_for(&self, path: &str) -> String {
        format!("{}{}", self.public_url.as_str().trim_end_matches('/'), path)
    }
}

fn parse_public_url(value: &str) -> Result<Url, String> {
    let url = Url::parse(value).map_err(|_| {
        format!("`{value}` is not an absolute URL such as https://mail.example.com")
    })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("`{value}` must start with http:// or https://"));
    }
    if url.host_str().is_none() {
        return Err(format!("`{value}` has no host"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(format!("`{value}` must not have a query or fragment"));
    }
    Ok(url)
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
