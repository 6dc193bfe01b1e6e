//! `mailwright doctor`: check a deployment and say what to fix. Each check
//! ends ok, warn or fail, with one line for what was found and one for the
//! fix; `--json` prints the same for machines. The exit status is 0 only
//! when nothing failed. Doctor never changes data: it does not migrate,
//! generate a key, store a refreshed token or mark a connection; it reads,
//! and asks Google, the mail provider and the model what they think.
//!
//! A setting that stops `serve` is reported and, when it is optional (a
//! topic, the LLM, push, mail), left out so that the other checks still run:
//! one run names every problem, not only the first.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use domain::explain::explain;
use domain::scopes::{IntegrationStatus, IntegrationType};
use engine::autodraft::WatchStatus;
use engine::keyring::Keyring;
use engine::notify::Notifier;
use engine::vault::{Vault, VaultError};
use providers::google::gmail::Gmail;
use providers::google::oauth::{ClientCheck, GoogleOAuth};
use providers::llm::ChatDrafter;
use providers::mail::sidemail::Sidemail;
use providers::mail::smtp::Smtp;
use serde::Serialize;
use serde_json::{Value, json};
use store::integrations::Integration;
use store::{DatabaseUrl, Readiness, Store};

use crate::config::{Config, MailConfig, SETTINGS};

/// How many connections and mailboxes one run looks at.
const MOST_CONNECTIONS: i64 = 500;
/// Connections probed at once...
const PROBES_AT_ONCE: usize = 8;
/// ...each for at most this long...
const PROBE_TIMEOUT: Duration = Duration::from_secs(10);
/// ...and all of them within this (doctor answers in seconds).
const CONNECTIONS_DEADLINE: Duration = Duration::from_secs(30);
/// Settings without which the other checks would look at the wrong
/// database or key: a problem with one of them ends the run.
const ESSENTIAL: &[&str] = &[
    "MAILWRIGHT_DATABASE_URL",
    "MAILWRIGHT_DATA_DIR",
    "MAILWRIGHT_ENCRYPTION_KEYS",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    Warn,
    Fail,
}

impl Status {
    fn label(self) -> &'static str {
        match self {
            Status::Ok => "ok  ",
            Status::Warn => "warn",
            Status::Fail => "FAIL",
        }
    }
}

/// One finding.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    /// What was checked (`database`, `connection ann@example.com`, ...).
    pub name: String,
    pub status: Status,
    /// What was found, in a sentence.
    pub message: String,
    /// What to do about it, in a sentence (none when all is well).
    pub fix: Option<String>,
    /// The runbook entry that says more, when there is one.
    pub runbook: Option<String>,
}

impl Check {
    fn ok(name: impl Into<String>, message: impl Into<String>) -> Check {
        Check {
            name: name.into(),
            status: Status::Ok,
            message: message.into(),
            fix: None,
            runbook: None,
        }
    }

    fn warn(name: impl Into<String>, message: impl Into<String>, fix: impl Into<String>) -> Check {
        Check {
            status: Status::Warn,
            fix: Some(fix.into()),
            ..Check::ok(name, message)
        }
    }

    fn fail(name: impl Into<String>, message: impl Into<String>, fix: impl Into<String>) -> Check {
        Check {
            status: Status::Fail,
            fix: Some(fix.into()),
            ..Check::ok(name, message)
        }
    }

    fn runbook(mut self, entry: &str) -> Check {
        self.runbook = Some(entry.to_owned());
        self
    }
}

/// Everything one run found.
#[derive(Debug, Default, Serialize)]
pub struct Report {
    pub checks: Vec<Check>,
    /// The public URL runbook links start with, once the configuration is read.
    #[serde(skip)]
    public_url: Option<String>,
}

impl Report {
    fn add(&mut self, check: Check) {
        self.checks.push(check);
    }

    pub fn failed(&self) -> bool {
        self.checks.iter().any(|check| check.status == Status::Fail)
    }

    fn count(&self, status: Status) -> usize {
        self.checks.iter().filter(|c| c.status == status).count()
    }

    /// One line per check (`ok`, `warn`, `FAIL`, the name, what was found,
    /// and the fix), then a summary.
    pub fn to_text(&self) -> String {
        let mut text = String::new();
        for check in &self.checks {
            let message = check.message.trim_end_matches('.');
            text.push_str(&format!(
                "{}  {}: {message}.",
                check.status.label(),
                check.name,
            ));
            if let Some(fix) = &check.fix {
                text.push_str(&format!(" Fix: {}.", fix.trim_end_matches('.')));
            }
            if let Some(entry) = &check.runbook {
                text.push_str(&format!(" Runbook: {}", self.runbook_link(entry)));
            }
            text.push('\n');
        }
        text.push_str(&format!(
            "\n{} ok, {} warning(s), {} failed\n",
            self.count(Status::Ok),
            self.count(Status::Warn),
            self.count(Status::Fail)
        ));
        text
    }

    fn runbook_link(&self, entry: &str) -> String {
        format!(
            "{}{}",
            self.public_url.as_deref().unwrap_or_default(),
            domain::explain::runbook_path(entry)
        )
    }

    pub fn to_json(&self) -> Value {
        let checks: Vec<Value> = self
            .checks
            .iter()
            .map(|check| {
                let mut value = json!(check);
                if let Some(entry) = &check.runbook {
                    value["runbook"] = Value::String(self.runbook_link(entry));
                }
                value
            })
            .collect();
        json!({
            "ok": !self.failed(),
            "checks": checks,
            "summary": {
                "ok": self.count(Status::Ok),
                "warn": self.count(Status::Warn),
                "fail": self.count(Status::Fail),
            },
        })
    }
}

/// Run every check against the configuration in `env` (and `config_file`).
pub async fn run(env: Vec<(String, String)>, config_file: Option<&Path>) -> Report {
    let mut report = Report::default();
    let Some(config) = configuration(&mut report, env, config_file) else {
        return report;
    };
    report.public_url = Some(config.public_url.as_str().trim_end_matches('/').to_owned());
    public_url(&mut report, &config);
    let http = match reqwest::Client::builder()
        .user_agent(concat!("mailwright-doctor/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(10))
        .build()
    {
        Ok(http) => http,
        Err(_) => {
            report.add(Check::fail(
                "network",
                "the HTTP client could not be built",
                "check the system's TLS certificates",
            ));
            return report;
        }
    };
    let google = config.google.clone().map(|client| {
        GoogleOAuth::new(
            client.client_id,
            client.client_secret,
            config.google_endpoints.clone(),
            http.clone(),
        )
    });
    google_client(&mut report, &config, google.as_ref()).await;
    let clerk = config.clerk_client(&http);
    if let Some(clerk) = &clerk {
        report.add(match clerk.check_key().await {
            Ok(()) => Check::ok("Clerk", "Clerk's Backend API accepts the secret key"),
            Err(problem) => Check::fail(
                "Clerk",
                problem,
                "copy the instance's secret key (Clerk dashboard, API keys) into MAILWRIGHT_CLERK_SECRET_KEY, and check MAILWRIGHT_CLERK_API_URL",
            ),
        });
    }
    push(&mut report, &config, &http).await;
    mail(&mut report, &config, &http).await;
    llm(&mut report, &config, &http).await;
    if let Some(store) = database(&mut report, &config).await {
        let keyring = encryption_key(&mut report, &config, &store).await;
        let integrations = match store.integrations_everywhere(MOST_CONNECTIONS).await {
            Ok(integrations) => integrations,
            Err(_) => {
                report.add(Check::fail(
                    "connections",
                    "the connections could not be read",
                    "see `mailwright serve`'s log for the database error",
                ));
                Vec::new()
            }
        };
        watches(&mut report, &config, &store, &integrations).await;
        if let Some(keyring) = keyring {
            let vault = Arc::new(
                Vault::new(
                    store.clone(),
                    keyring,
                    google,
                    Gmail::new(config.gmail_api_url.clone(), http.clone()),
                    Arc::new(Notifier::new(
                        store.clone(),
                        config.public_url.as_str().to_owned(),
                    )),
                )
                .with_clerk(clerk)
                .with_microsoft(config.microsoft_client(&http)),
            );
            connections(&mut report, &config, &vault, integrations).await;
        }
        store.close().await;
    }
    report
}

/// Load the configuration; a problem with an optional setting is reported
/// and the setting left out, so the rest is still checked.
fn configuration(
    report: &mut Report,
    mut env: Vec<(String, String)>,
    config_file: Option<&Path>,
) -> Option<Config> {
    let origin = match config_file {
        Some(file) => format!("the environment and {}", file.display()),
        None => "the environment".to_owned(),
    };
    for _ in 0..SETTINGS.len() {
        match Config::load(env.clone(), config_file) {
            Ok((config, warnings)) => {
                report.add(Check::ok("configuration", format!("read from {origin}")));
                for warning in warnings {
                    report.add(Check::warn(
                        "configuration",
                        warning,
                        "remove or correct the setting",
                    ));
                }
                return Some(config);
            }
            Err(error) => {
                let essential = ESSENTIAL.contains(&error.setting.as_str());
                let from_env = env.iter().any(|(name, _)| *name == error.setting);
                report.add(Check::fail(
                    format!("setting {}", error.setting),
                    error.problem.clone(),
                    format!("correct {} (or unset it)", error.setting),
                ));
                if essential || !from_env {
                    report.add(Check::fail(
                        "configuration",
                        "the other checks need this setting; they did not run",
                        "fix the setting above and run `mailwright doctor` again",
                    ));
                    return None;
                }
                env.retain(|(name, _)| *name != error.setting);
            }
        }
    }
    None
}

fn public_url(report: &mut Report, config: &Config) {
    let redirect = config.oauth_redirect_uri();
    let local = matches!(
        config.public_url.host_str(),
        Some("localhost" | "127.0.0.1" | "[::1]")
    );
    if !config.public_url_explicit {
        report.add(Check::warn(
            "public URL",
            format!(
                "MAILWRIGHT_PUBLIC_URL is not set: links and the OAuth redirect URI follow the listening address ({redirect})"
            ),
            "set MAILWRIGHT_PUBLIC_URL to the address people open, e.g. https://mail.example.com",
        ));
    } else if !config.is_https() && !local {
        report.add(Check::warn(
            "public URL",
            format!(
                "{} is not HTTPS: sign-in cookies travel unprotected",
                config.public_url
            ),
            "serve Mailwright behind HTTPS and set MAILWRIGHT_PUBLIC_URL to the https:// address",
        ));
    } else {
        report.add(Check::ok(
            "public URL",
            format!("{}; OAuth redirect URI {redirect}", config.public_url),
        ));
    }
}

async fn google_client(report: &mut Report, config: &Config, google: Option<&GoogleOAuth>) {
    let Some(google) = google else {
        report.add(Check::warn(
            "Google OAuth client",
            "Google is not configured: nobody can connect Gmail",
            "set MAILWRIGHT_GOOGLE_CLIENT_ID and MAILWRIGHT_GOOGLE_CLIENT_SECRET (README: Running with a real Google project)",
        ));
        return;
    };
    let redirect = config.oauth_redirect_uri();
    let name = "Google OAuth client";
    report.add(match google.check_client(&redirect).await {
        ClientCheck::Accepted => Check::ok(
            name,
            format!("Google accepts the client, its secret and the redirect URI {redirect}"),
        ),
        ClientCheck::RedirectUriMismatch => Check::fail(
            name,
            format!("Google does not accept the redirect URI {redirect} for this client"),
            format!(
                "add {redirect} to the OAuth client's Authorized redirect URIs (Google Cloud console, APIs & Services, Credentials), or set MAILWRIGHT_PUBLIC_URL to the address registered there"
            ),
        ),
        ClientCheck::UnknownClient => Check::fail(
            name,
            "Google does not know the client id",
            "copy the client id of a Web application OAuth client into MAILWRIGHT_GOOGLE_CLIENT_ID",
        ),
        ClientCheck::WrongSecret => Check::fail(
            name,
            "Google refuses the client secret",
            "copy the client's current secret into MAILWRIGHT_GOOGLE_CLIENT_SECRET",
        ),
        ClientCheck::Unreachable(reason) => Check::fail(
            name,
            format!("Google's OAuth endpoints could not be reached ({reason})"),
            "check outbound HTTPS to accounts.google.com and oauth2.googleapis.com (proxy, firewall, DNS)",
        ),
        ClientCheck::Unexpected(reason) => Check::warn(
            name,
            format!("Google's answer was unexpected: {reason}"),
            "check MAILWRIGHT_GOOGLE_AUTH_URL and MAILWRIGHT_GOOGLE_TOKEN_URL (unset them for Google's own)",
        ),
    });
}

async fn push(report: &mut Report, config: &Config, http: &reqwest::Client) {
    let Some(topic) = &config.autodraft.pubsub_topic else {
        report.add(Check::ok(
            "Gmail push",
            format!(
                "no Pub/Sub topic: auto-draft finds new mail by polling every {} s",
                config.autodraft.poll_interval.as_secs()
            ),
        ));
        return;
    };
    if config.push_oidc.is_some() && config.push_token.is_some() {
        report.add(Check::warn(
            "Gmail push",
            "both Pub/Sub OIDC and the shared ?token= are accepted; anyone who learns the token can still push",
            "once the push subscription authenticates with OIDC, unset MAILWRIGHT_PUSH_TOKEN",
        ));
    }
    match (&config.push_oidc, &config.push_token) {
        (Some(oidc), _) => {
            let keys = async {
                let answer = http.get(oidc.certs_url.clone()).send().await.ok()?;
                let set: Value = answer.error_for_status().ok()?.json().await.ok()?;
                set["keys"].as_array().map(Vec::len)
            };
            report.add(match keys.await {
                Some(count) if count > 0 => Check::ok(
                    "Gmail push",
                    format!(
                        "topic {topic}; pushes must carry a Google-signed token for {} from {} ({count} signing keys fetched)",
                        oidc.audience, oidc.service_account
                    ),
                ),
                _ => Check::fail(
                    "Gmail push",
                    format!("the signing keys at {} could not be fetched", oidc.certs_url),
                    "allow outbound HTTPS to www.googleapis.com, or correct MAILWRIGHT_GOOGLE_CERTS_URL",
                )
                .runbook("push_refused"),
            });
        }
        (None, Some(_)) => report.add(Check::warn(
            "Gmail push",
            format!("topic {topic}; pushes are checked by the shared ?token= only"),
            "configure the push subscription with authentication and set MAILWRIGHT_PUSH_AUDIENCE and MAILWRIGHT_PUSH_SERVICE_ACCOUNT",
        )),
        (None, None) => report.add(
            Check::fail(
                "Gmail push",
                format!("topic {topic} is set, but /api/push/gmail accepts no push"),
                "set MAILWRIGHT_PUSH_AUDIENCE and MAILWRIGHT_PUSH_SERVICE_ACCOUNT to match the push subscription",
            )
            .runbook("push_refused"),
        ),
    }
}

async fn mail(report: &mut Report, config: &Config, http: &reqwest::Client) {
    let name = "system email";
    match &config.mail {
        MailConfig::Log => report.add(Check::warn(
            name,
            "system email (notices, invitations) is only logged, never delivered",
            "set MAILWRIGHT_SMTP_URL or MAILWRIGHT_SIDEMAIL_API_KEY",
        )),
        MailConfig::Smtp { url } => {
            let checked = match Smtp::new(
                secrecy::ExposeSecret::expose_secret(url),
                config.system_from.clone(),
            ) {
                Ok(smtp) => smtp.check().await,
                Err(problem) => Err(problem),
            };
            report.add(match checked {
                Ok(()) => Check::ok(name, "the SMTP server greets, and accepts the login"),
                Err(problem) => Check::fail(
                    name,
                    format!("SMTP: {problem}"),
                    "check MAILWRIGHT_SMTP_URL: host, port, TLS (smtps:// or ?tls=required) and credentials",
                )
                .runbook("system_email_failing"),
            });
        }
        MailConfig::Sidemail { api_url, api_key } => {
            let sidemail = Sidemail::new(
                api_url.clone(),
                api_key.clone(),
                config.system_from.clone(),
                http.clone(),
            );
            report.add(match sidemail.check_key().await {
                Ok(()) => Check::ok(name, "Sidemail accepts the API key"),
                Err(problem) => Check::fail(
                    name,
                    problem,
                    "check MAILWRIGHT_SIDEMAIL_API_KEY (Sidemail dashboard, Project settings, API key)",
                )
                .runbook("system_email_failing"),
            });
        }
    }
}

async fn llm(report: &mut Report, config: &Config, http: &reqwest::Client) {
    let Some(settings) = &config.llm else {
        report.add(Check::ok(
            "reply writer",
            "the built-in drafter writes replies (no MAILWRIGHT_LLM_URL)",
        ));
        return;
    };
    let drafter = ChatDrafter::new(settings.clone(), http.clone());
    report.add(match drafter.check().await {
        Ok(true) => Check::ok(
            "reply writer",
            format!("{} lists the model {}", settings.base_url, settings.model),
        ),
        Ok(false) => Check::warn(
            "reply writer",
            format!(
                "{} answers, but does not list the model {}",
                settings.base_url, settings.model
            ),
            "check MAILWRIGHT_LLM_MODEL against the endpoint's models",
        ),
        Err(problem) => Check::fail(
            "reply writer",
            format!("{}: {problem}", settings.base_url),
            "check MAILWRIGHT_LLM_URL and MAILWRIGHT_LLM_API_KEY; until then the built-in drafter writes replies",
        ),
    });
}

async fn database(report: &mut Report, config: &Config) -> Option<Store> {
    if let DatabaseUrl::Sqlite { path } = &config.database_url
        && !path.exists()
    {
        report.add(Check::warn(
            "database",
            format!("there is no database at {} yet", path.display()),
            "`mailwright serve` creates it; check MAILWRIGHT_DATA_DIR if one should be there",
        ));
        return None;
    }
    let store = match Store::connect_read_only(&config.database_url).await {
        Ok(store) => store,
        Err(_) => {
            report.add(
                Check::fail(
                    "database",
                    format!("cannot connect to {}", config.database_url),
                    "check MAILWRIGHT_DATABASE_URL, that the server runs and that the role may log in",
                )
                .runbook("database_unavailable"),
            );
            return None;
        }
    };
    match store.readiness().await {
        Ok(Readiness::Ready) => match store.integrity_problem_now().await {
            Ok(None) => {
                report.add(Check::ok(
                    "database",
                    format!("{}: reachable, migrations applied", config.database_url),
                ));
                Some(store)
            }
            Ok(Some(problem)) => {
                report.add(
                    Check::fail(
                        "database",
                        format!("the SQLite file is damaged ({problem})"),
                        "restore the data directory from a backup",
                    )
                    .runbook("database_unavailable"),
                );
                None
            }
            Err(_) => {
                report.add(Check::fail(
                    "database",
                    "the SQLite file's integrity check could not run",
                    "check the file's permissions and the disk",
                ));
                None
            }
        },
        Ok(Readiness::MigrationsPending(versions)) => {
            report.add(
                Check::warn(
                    "database",
                    format!("{} migration(s) not applied yet: {versions:?}", versions.len()),
                    "run `mailwright migrate` (or start `mailwright serve`, which applies them), then run doctor again",
                )
                .runbook("database_unavailable"),
            );
            None
        }
        Ok(Readiness::Damaged(problem)) => {
            report.add(
                Check::fail(
                    "database",
                    format!("the SQLite file is damaged ({problem})"),
                    "restore the data directory from a backup",
                )
                .runbook("database_unavailable"),
            );
            None
        }
        Err(_) => {
            report.add(
                Check::fail(
                    "database",
                    "the database answers, but not to queries",
                    "check the role's permissions on the database",
                )
                .runbook("database_unavailable"),
            );
            None
        }
    }
}

async fn encryption_key(
    report: &mut Report,
    config: &Config,
    store: &Store,
) -> Option<Arc<Keyring>> {
    let name = "encryption key";
    let keyring = match &config.encryption_keys {
        Some(keys) => Keyring::parse(secrecy::ExposeSecret::expose_secret(keys)).ok()?,
        None => {
            let path = config.data_dir.join("encryption.key");
            if !path.exists() {
                let holds_secrets = store.token_key_ids().await.map(|ids| !ids.is_empty());
                let checked = store.key_check_ids().await.map(|ids| !ids.is_empty());
                report.add(match (holds_secrets, checked) {
                    (Ok(false), Ok(false)) => Check::warn(
                        name,
                        format!("no key file at {} yet", path.display()),
                        "`mailwright serve` generates it on first start; back it up with the database",
                    ),
                    _ => Check::fail(
                        name,
                        format!(
                            "the key file {} is missing, but the database holds tokens encrypted with it",
                            path.display()
                        ),
                        "restore encryption.key from the backup taken with this database",
                    )
                    .runbook("encryption_key_mismatch"),
                });
                return None;
            }
            match Keyring::load_or_create_file(&path) {
                Ok((keyring, _)) => keyring,
                Err(problem) => {
                    report.add(Check::fail(
                        name,
                        format!("the key file {} cannot be read ({problem})", path.display()),
                        "restore encryption.key from the backup taken with this database",
                    ));
                    return None;
                }
            }
        }
    };
    match engine::keys::check(store, &keyring).await {
        Ok(unchecked) if unchecked.is_empty() => {
            report.add(Check::ok(name, "the key reads this database's tokens"))
        }
        Ok(unchecked) => report.add(Check::ok(
            name,
            format!(
                "the keys read this database's tokens; new key id(s) {} are recorded at the next start",
                unchecked.join(", ")
            ),
        )),
        Err(error) => {
            report.add(
                Check::fail(
                    name,
                    format!("{error:#}"),
                    "configure the key(s) that encrypted this database (MAILWRIGHT_ENCRYPTION_KEYS)",
                )
                .runbook("encryption_key_mismatch"),
            );
            return None;
        }
    }
    Some(Arc::new(keyring))
}

/// Each auto-draft mailbox's push: a Gmail watch, an Outlook mailbox's
/// Graph subscription.
async fn watches(
    report: &mut Report,
    config: &Config,
    store: &Store,
    integrations: &[Integration],
) {
    let Ok(mailboxes) = store
        .enabled_autodraft_mailboxes_everywhere(MOST_CONNECTIONS)
        .await
    else {
        return;
    };
    let gmail = config.autodraft.pubsub_topic.is_some();
    let outlook = config.microsoft.is_some();
    if !(gmail || outlook) || mailboxes.is_empty() {
        return;
    }
    let connected: HashMap<_, _> = integrations
        .iter()
        .map(|integration| (integration.id, integration))
        .collect();
    let now = store::now();
    for mailbox in mailboxes {
        let Some(integration) = connected.get(&mailbox.integration_id) else {
            continue;
        };
        let (pusher, announced) = match integration.integration_type {
            IntegrationType::Gmail => ("Gmail", gmail),
            IntegrationType::Outlook => ("Microsoft Graph", outlook),
            IntegrationType::Imap | IntegrationType::Calendar => continue,
        };
        if !announced {
            continue;
        }
        let name = format!("watch {}", integration.email);
        let watch = &mailbox.watch;
        report.add(match WatchStatus::of(true, true, watch, now) {
            WatchStatus::Active => Check::ok(
                name,
                format!(
                    "{pusher} pushes new mail until {}",
                    watch.expires_at.map(|at| at.to_rfc3339()).unwrap_or_default()
                ),
            ),
            WatchStatus::Off => Check::warn(
                name,
                "not watched yet; the poll finds its mail",
                "keep `mailwright serve` (or `worker`) running: it watches the mailbox within seconds",
            ),
            WatchStatus::Failing => match &watch.last_error {
                Some(error) => Check::fail(
                    name,
                    error.message.clone(),
                    match error.code.as_str() {
                        "watch_topic_refused" => "create the topic, and give gmail-api-push@system.gserviceaccount.com the Pub/Sub Publisher role on it",
                        "watch_topic_invalid" => "create the topic in the Google Cloud project of the OAuth client the mailbox was connected with, and name it in MAILWRIGHT_GMAIL_PUBSUB_TOPIC",
                        "subscription_refused" => "serve Mailwright at a public HTTPS address (MAILWRIGHT_PUBLIC_URL) whose /api/push/microsoft Microsoft can reach",
                        _ => "see the connection's check below",
                    },
                )
                .runbook("watch_failing"),
                None => Check::fail(
                    name,
                    "the watch lapsed and was not renewed",
                    "keep `mailwright serve` (or `worker`) running: it renews watches daily",
                )
                .runbook("watch_failing"),
            },
        });
    }
}

/// Each connection: its status, and whether Google would refresh it now.
async fn connections(
    report: &mut Report,
    config: &Config,
    vault: &Arc<Vault>,
    integrations: Vec<Integration>,
) {
    if integrations.is_empty() {
        report.add(Check::ok("connections", "no mailbox is connected yet"));
        return;
    }
    let reconnect = format!(
        "its owner reconnects it at {}",
        config.public_url_for("/integrations")
    );
    let limit = Arc::new(tokio::sync::Semaphore::new(PROBES_AT_ONCE));
    let mut probes = tokio::task::JoinSet::new();
    for (index, integration) in integrations.into_iter().enumerate() {
        let (vault, limit, reconnect) = (Arc::clone(vault), Arc::clone(&limit), reconnect.clone());
        probes.spawn(async move {
            let _permit = limit.acquire_owned().await;
            let checked =
                tokio::time::timeout(PROBE_TIMEOUT, connection(&vault, &integration, &reconnect))
                    .await;
            let check = checked.unwrap_or_else(|_| {
                Check::warn(
                    format!("connection {}", integration.email),
                    format!(
                        "the token refresh did not answer within {} s",
                        PROBE_TIMEOUT.as_secs()
                    ),
                    "run doctor again; if it persists, check outbound HTTPS to Google (or Clerk)",
                )
            });
            (index, check)
        });
    }
    let mut found = Vec::new();
    let deadline = tokio::time::Instant::now() + CONNECTIONS_DEADLINE;
    while let Ok(Some(done)) = tokio::time::timeout_at(deadline, probes.join_next()).await {
        if let Ok(done) = done {
            found.push(done);
        }
    }
    let unchecked = probes.len();
    probes.abort_all();
    found.sort_by_key(|(index, _)| *index);
    for (_, check) in found {
        report.add(check);
    }
    if unchecked > 0 {
        report.add(Check::warn(
            "connections",
            format!(
                "{unchecked} connection(s) were not checked within {} s",
                CONNECTIONS_DEADLINE.as_secs()
            ),
            "run doctor again; if Google is slow from here, check outbound HTTPS",
        ));
    }
}

async fn connection(vault: &Vault, integration: &Integration, reconnect: &str) -> Check {
    let name = format!(
        "connection {} ({})",
        integration.email,
        integration.integration_type.as_str()
    );
    let email = Some(integration.email.as_str());
    let missing = integration
        .granted_scopes
        .missing_for(integration.integration_type);
    match integration.status {
        IntegrationStatus::Disconnected => {
            return Check::ok(name, "disconnected by a person; nothing uses it");
        }
        IntegrationStatus::NeedsReauth | IntegrationStatus::MissingScopes => {
            let explanation = explain(integration.status, email, &missing);
            return Check::fail(name, explanation.problem, reconnect.to_owned())
                .runbook(explanation.code);
        }
        IntegrationStatus::Connected => {}
    }
    let last_error = integration
        .last_error
        .as_ref()
        .map(|error| {
            format!(
                " (last error, {}: {})",
                error.at.to_rfc3339(),
                error.message
            )
        })
        .unwrap_or_default();
    match vault.probe(integration).await {
        Ok(missing) if missing.is_empty() => Check::ok(
            name,
            format!("connected; its token refreshes; every scope granted{last_error}"),
        ),
        Ok(missing) => {
            let explanation = explain(IntegrationStatus::MissingScopes, email, &missing);
            Check::fail(name, explanation.problem, reconnect.to_owned()).runbook(explanation.code)
        }
        Err(VaultError::NeedsReauth) => Check::fail(
            name,
            format!(
                "{} refuses to refresh its token: the grant was revoked (or expired). Mailwright marks it at its next use or daily check.",
                integration.integration_type.provider_name()
            ),
            reconnect.to_owned(),
        )
        .runbook("needs_reauth"),
        Err(VaultError::Unavailable {
            service, reason, ..
        }) => Check::warn(
            name,
            format!("{service} did not answer the check ({reason})"),
            match integration.integration_type {
                IntegrationType::Outlook => {
                    "run doctor again; if it persists, check outbound HTTPS to login.microsoftonline.com and graph.microsoft.com"
                }
                _ => "run doctor again; if it persists, check outbound HTTPS to oauth2.googleapis.com",
            },
        )
        .runbook("provider_unavailable"),
        Err(VaultError::NotConfigured) => Check::fail(
            name,
            format!(
                "the connection's tokens come from {}, which is not configured on this server",
                match integration.token_source {
                    domain::scopes::TokenSource::Mailwright => {
                        integration.integration_type.provider_name()
                    }
                    domain::scopes::TokenSource::Clerk { .. } => "Clerk",
                }
            ),
            "set MAILWRIGHT_GOOGLE_CLIENT_ID and _SECRET (or, for Clerk, MAILWRIGHT_CLERK_SECRET_KEY) as when it was made",
        ),
        Err(error) => {
            let facing = error.user_facing(email);
            Check::fail(
                name,
                facing.problem,
                "check the Google OAuth client above; the token may be from another client",
            )
            .runbook(facing.code)
        }
    }
}
