//! The command line: `mailwright serve`, `worker`, `migrate`, `admin`,
//! `doctor`, `sandbox`, `demo`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use store::Store;

use crate::app::{Application, install_crypto_provider, shutdown_signal};
use crate::auth::accounts;
use crate::config::Config;
use crate::telemetry;

#[derive(Debug, Parser)]
#[command(
    name = "mailwright",
    version,
    about = "Self-hostable email automation: connected Gmail accounts, reply drafts, email workflows.",
    after_help = "To try it with no credentials: `mailwright demo`.\n\n\
Settings come from environment variables (MAILWRIGHT_DATABASE_URL, MAILWRIGHT_DATA_DIR, \
MAILWRIGHT_LISTEN, MAILWRIGHT_PUBLIC_URL, MAILWRIGHT_GOOGLE_CLIENT_ID, MAILWRIGHT_LLM_URL, ...; \
README.md lists them all) or the same keys in a TOML file given with --config; the environment wins. \
By default the database is SQLite at ./data/mailwright.db and the service listens on 127.0.0.1:8080."
)]
pub struct Cli {
    /// Read settings from this TOML file (`listen = "0.0.0.0:8080"`, ...)
    #[arg(long, global = true, env = "MAILWRIGHT_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the API, the web UI and the background workers in one process
    /// (migrations are applied first)
    Serve {
        /// Address to listen on (MAILWRIGHT_LISTEN; default 127.0.0.1:8080)
        #[arg(long, value_name = "ADDR")]
        listen: Option<std::net::SocketAddr>,
        #[command(flatten)]
        storage: StorageArgs,
    },
    /// Run the background workers only, no HTTP (to scale out on PostgreSQL)
    Worker {
        #[command(flatten)]
        storage: StorageArgs,
    },
    /// Apply pending database migrations, then exit
    Migrate {
        #[command(flatten)]
        storage: StorageArgs,
    },
    /// Manage accounts and keys from the command line
    #[command(subcommand)]
    Admin(AdminCommand),
    /// Check this deployment and say what to fix: configuration, database,
    /// encryption key, public URL and OAuth redirect URI, Google's OAuth
    /// client, Clerk, Gmail push (topic, signing keys, each mailbox's watch), each
    /// connection (status, scopes, token refresh), system email and the
    /// reply writer. Changes nothing. Exits 0 only when no check failed.
    Doctor {
        /// Print the checks as JSON instead of one line each
        #[arg(long)]
        json: bool,
    },
    /// Run the Google sandbox alone: an in-memory emulator of Google OAuth and
    /// the Gmail API, for developing clients without Google (no database)
    Sandbox(SandboxArgs),
    /// Try everything with no credentials: SQLite in the demo's own folder
    /// (kept between runs), the Google sandbox in-process, a demo account
    /// signed in by a link printed at start, and a sandbox inbox to send test
    /// mail to
    Demo(DemoArgs),
}

/// Where the data lives, as a flag (the same as the setting).
#[derive(Debug, Clone, clap::Args)]
pub struct StorageArgs {
    /// Folder of the SQLite database and the generated key file
    /// (MAILWRIGHT_DATA_DIR; default ./data)
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
}

impl Command {
    /// The settings the command's flags give (they win over the
    /// environment and the file).
    fn setting_flags(&self) -> Vec<(String, String)> {
        let mut flags = Vec::new();
        let storage = match self {
            Command::Serve { listen, storage } => {
                if let Some(listen) = listen {
                    flags.push(("MAILWRIGHT_LISTEN".to_owned(), listen.to_string()));
                }
                Some(storage)
            }
            Command::Worker { storage } | Command::Migrate { storage } => Some(storage),
            _ => None,
        };
        if let Some(dir) = storage.and_then(|storage| storage.data_dir.as_ref()) {
            flags.push(("MAILWRIGHT_DATA_DIR".to_owned(), dir.display().to_string()));
        }
        flags
    }
}

#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Keep the demo's database here (default: $XDG_DATA_HOME/mailwright/demo,
    /// else ~/.local/share/mailwright/demo; kept between runs, delete it to
    /// start over)
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Address to listen on
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: std::net::SocketAddr,
}

#[derive(Debug, clap::Args)]
pub struct SandboxArgs {
    /// Address to listen on (port 0 picks a free port)
    #[arg(long, default_value = "127.0.0.1:8090")]
    pub listen: std::net::SocketAddr,
    /// OAuth client id the sandbox accepts
    #[arg(long, default_value = "sandbox-client-id")]
    pub client_id: String,
    /// That client's secret
    #[arg(long, default_value = "sandbox-client-secret")]
    pub client_secret: String,
    /// A redirect URI registered for the client (repeat for several)
    #[arg(
        long = "redirect-uri",
        default_value = "http://127.0.0.1:8080/api/auth/oauth/google/callback"
    )]
    pub redirect_uris: Vec<String>,
    /// A mailbox that exists from the start (repeat for several)
    #[arg(long = "account", default_value = "demo@sandbox.mailwright.test")]
    pub accounts: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Create a local account (reads the password from standard input)
    CreateUser {
        /// The email the person signs in with
        #[arg(long)]
        email: String,
        /// Read the password from standard input (required: passwords are
        /// never taken from the command line, where other users can see them)
        #[arg(long, required = true)]
        password_stdin: bool,
        /// Join this workspace (created, with the user as owner, if no
        /// workspace has this name); default: a personal workspace
        #[arg(long, value_name = "NAME")]
        workspace: Option<String>,
    },
    /// Re-encrypt every stored token under the first key of
    /// MAILWRIGHT_ENCRYPTION_KEYS (then older keys can be removed)
    RotateKeys,
    /// Create a workspace API key and print it once on standard output
    CreateApiKey {
        /// The workspace, by id or by name
        #[arg(long, value_name = "ID_OR_NAME")]
        workspace: String,
        /// What the key is for
        #[arg(long, default_value = "command line")]
        name: String,
    },
}

/// Parse the command line, load the configuration and run the command.
/// A configuration error exits with status 2 after one line on stderr;
/// a failure while running exits with 1.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Command::Doctor { json } = cli.command {
        return doctor(json, cli.config.as_deref());
    }
    let mut env: Vec<(String, String)> = std::env::vars().collect();
    env.extend(cli.command.setting_flags());
    let (config, warnings) = match Config::load(env, cli.config.as_deref()) {
        Ok(loaded) => loaded,
        Err(error) => {
            eprintln!("{error}");
            return ExitCode::from(2);
        }
    };
    let log_target = match cli.command {
        Command::Admin(_) | Command::Doctor { .. } => telemetry::LogTarget::Stderr,
        Command::Serve { .. }
        | Command::Worker { .. }
        | Command::Migrate { .. }
        | Command::Sandbox(_)
        | Command::Demo(_) => telemetry::LogTarget::Stdout,
    };
    telemetry::init_logging(&config, log_target);
    for warning in warnings {
        tracing::warn!("{warning}");
    }

    install_crypto_provider();
    let Some(runtime) = runtime() else {
        return ExitCode::FAILURE;
    };
    match runtime.block_on(run(cli.command, config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // One line, whole cause chain; never a secret (URLs are redacted at the source).
            tracing::error!(error = format!("{error:#}"), "mailwright stopped");
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// The multi-threaded Tokio runtime the commands run on; `None` (after a
/// line on stderr) when it cannot start.
fn runtime() -> Option<tokio::runtime::Runtime> {
    match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => Some(runtime),
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            None
        }
    }
}

/// `mailwright doctor`: it reads the configuration itself, so that a bad
/// setting is one finding among the others rather than the end of the run.
fn doctor(json: bool, config_file: Option<&std::path::Path>) -> ExitCode {
    install_crypto_provider();
    let Some(runtime) = runtime() else {
        return ExitCode::FAILURE;
    };
    let report = runtime.block_on(crate::doctor::run(std::env::vars().collect(), config_file));
    if json {
        println!("{:#}", report.to_json());
    } else {
        print!("{}", report.to_text());
    }
    if report.failed() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

async fn run(command: Command, config: Config) -> anyhow::Result<()> {
    match command {
        Command::Sandbox(args) => return run_sandbox(args).await,
        Command::Demo(args) => return run_demo(args).await,
        _ => {}
    }
    let store = Store::connect(&config.database_url)
        .await
        .with_context(|| format!("cannot open the database {}", config.database_url))?;
    match command {
        Command::Migrate { .. } => {
            store.migrate().await.context("cannot apply migrations")?;
            tracing::info!(database = %config.database_url, "migrations applied");
            store.close().await;
            Ok(())
        }
        Command::Serve { .. } => {
            store.migrate().await.context("cannot apply migrations")?;
            let explicit_public_url = config
                .public_url_explicit
                .then(|| config.public_url.as_str().trim_end_matches('/').to_owned());
            let google_configured = config.google.is_some();
            let first_start = store.user_count().await? == 0;
            let application = Application::build(config, store).await?;
            let public_url = explicit_public_url
                .unwrap_or_else(|| format!("http://{}", application.local_addr()));
            if first_start {
                tracing::info!(
                    "no account yet: open {public_url}/setup to create the owner account"
                );
            }
            if !google_configured {
                tracing::warn!(
                    "Google is not configured (MAILWRIGHT_GOOGLE_CLIENT_ID and _SECRET): nobody can connect Gmail yet; `mailwright demo` shows everything with an emulated Google"
                );
            }
            application.run_until(shutdown_signal()).await
        }
        Command::Worker { .. } => {
            store.migrate().await.context("cannot apply migrations")?;
            let services = crate::app::Services::build(&config, &store).await?;
            let worker = services.worker;
            tracing::info!(kinds = ?worker.kinds(), "worker started");
            let (stop, stopped) = tokio::sync::watch::channel(false);
            let supervisor = engine::supervisor::Supervisor::new();
            let loops = crate::app::spawn_background_loops(
                &supervisor,
                &store,
                &worker,
                1,
                crate::app::Periodic {
                    scheduler: services.scheduler,
                    autodraft: services.autodraft,
                    health: services.health,
                },
                &stopped,
            );
            shutdown_signal().await;
            tracing::info!("shutting down: finishing the job in progress");
            let _ = stop.send(true);
            for running in loops {
                let _ = running.await;
            }
            tracing::info!("shutdown complete");
            Ok(())
        }
        Command::Admin(admin) => {
            store.migrate().await.context("cannot apply migrations")?;
            let result = run_admin(admin, &store, &config).await;
            store.close().await;
            result
        }
        Command::Sandbox(_) | Command::Demo(_) | Command::Doctor { .. } => {
            unreachable!("handled before the database is opened")
        }
    }
}

async fn run_demo(args: DemoArgs) -> anyhow::Result<()> {
    use crate::demo::{self, Demo};

    let data_dir = args.data_dir.unwrap_or_else(|| {
        demo::default_data_dir(std::env::var_os("XDG_DATA_HOME"), std::env::var_os("HOME"))
    });
    let mut listen = args.listen;
    if listen.port() == 0 {
        // The sandbox's URLs name the port, so it must be known up front.
        listen = std::net::TcpListener::bind(listen)
            .with_context(|| format!("cannot listen on {listen}"))?
            .local_addr()?;
    }
    let host = if listen.ip().is_unspecified() {
        "127.0.0.1".to_owned()
    } else {
        listen.ip().to_string()
    };
    let public = format!("http://{host}:{}", listen.port());
    let mut env: Vec<(String, String)> = [
        ("MAILWRIGHT_DATA_DIR", data_dir.display().to_string()),
        ("MAILWRIGHT_LISTEN", listen.to_string()),
        ("MAILWRIGHT_PUBLIC_URL", public.clone()),
        // Push finds new mail; the poll is the safety net.
        ("MAILWRIGHT_AUTODRAFT_POLL_SECONDS", "300".to_owned()),
        // Webhooks may go to a receiver on this machine (a tryout's).
        (
            "MAILWRIGHT_OUTBOUND_ALLOW_PRIVATE_NETWORKS",
            "true".to_owned(),
        ),
    ]
    .into_iter()
    .map(|(name, value)| (name.to_owned(), value))
    .collect();
    env.extend(
        demo::sandbox_settings(&public)
            .into_iter()
            .map(|(name, value)| (name.to_owned(), value)),
    );
    // The local IMAP mailbox, when Dovecot is installed: its CA is trusted
    // like one named in SSL_CERT_FILE.
    let local_mailbox = crate::demo_mailbox::LocalMailbox::start().await;
    if let Ok(mailbox) = &local_mailbox {
        env.push((
            "SSL_CERT_FILE".to_owned(),
            mailbox.ca().display().to_string(),
        ));
    }
    let (config, _) = Config::load(env, None).map_err(|error| anyhow::anyhow!("{error}"))?;
    let store = Store::connect(&config.database_url)
        .await
        .with_context(|| format!("cannot open the database {}", config.database_url))?;
    store.migrate().await.context("cannot apply migrations")?;

    let sandbox = demo::sandbox(&config);
    let email = domain::EmailAddress::parse(demo::USER_EMAIL).expect("a valid demo address");
    // Nobody signs in with this password: the printed link does.
    let password = crate::auth::secrets::random_token(24);
    let (user, workspace) =
        match accounts::create_local_user(&store, &email, &password, Some("Demo")).await {
            Ok((user, workspace)) => (user.id, workspace.id),
            Err(accounts::AccountError::EmailTaken) => {
                // A kept --data-dir: the demo account is already there.
                let (user, _) = store
                    .local_account(email.as_str())
                    .await?
                    .context("the demo account exists but cannot be read")?;
                let workspace = store
                    .first_workspace_of(user.id)
                    .await?
                    .context("the demo account has no workspace")?;
                (user.id, workspace)
            }
            Err(error) => return Err(error.into()),
        };
    sandbox.set_push_subscription(demo::push_subscription(&public));
    let imap_line = match &local_mailbox {
        Ok(_) => format!(
            "A local IMAP mailbox ({}, Dovecot) is running too: connect it on {public}/integrations.",
            crate::demo_mailbox::ADDRESS
        ),
        Err(reason) => reason.clone(),
    };
    let (demo, token) = Demo::new(sandbox, user, workspace);
    let demo = demo.with_local_mailbox(local_mailbox);
    let application = Application::build_demo(config, store, std::sync::Arc::new(demo)).await?;
    let link = format!("{public}/demo/signin?token={token}");
    tracing::info!(data_dir = %data_dir.display(), "demo ready: open the sign-in link printed below (it works until the demo stops)");
    println!(
        "\nMailwright demo (Google is emulated; data kept in {}, delete the folder to start over):\n\n  Sign in:        {link}\n  Sandbox inbox:  {public}/sandbox/inbox\n\nConnect Gmail (or Outlook), switch auto-draft on, then send an email from the sandbox inbox.\nThe emulated Google and Microsoft start empty each run: a connection from an earlier run asks to be reconnected.\n{imap_line}\n",
        data_dir.display()
    );
    application.run_until(shutdown_signal()).await
}

async fn run_sandbox(args: SandboxArgs) -> anyhow::Result<()> {
    use sandbox::{AccountSpec, OAuthClient, Sandbox, SandboxConfig};
    let mut config = SandboxConfig::default().with_client(OAuthClient::new(
        args.client_id.clone(),
        args.client_secret,
        args.redirect_uris.clone(),
    ));
    for email in &args.accounts {
        let name = email.split('@').next().unwrap_or(email).to_owned();
        config = config.with_account(AccountSpec::new(email.clone(), name));
    }
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let address = listener.local_addr()?;
    tracing::info!(
        %address,
        client_id = %args.client_id,
        redirect_uris = ?args.redirect_uris,
        accounts = ?args.accounts,
        "listening: Google sandbox (OAuth at /o/oauth2/v2/auth, /token; Gmail at /gmail/v1; controls at /_sandbox)"
    );
    axum::serve(listener, Sandbox::new(config).router())
        .with_graceful_shutdown(shutdown_signal())
        .await
        .context("the sandbox server failed")?;
    tracing::info!("shutdown complete");
    Ok(())
}

async fn run_admin(command: AdminCommand, store: &Store, config: &Config) -> anyhow::Result<()> {
    match command {
        AdminCommand::RotateKeys => {
            let keyring = crate::app::load_keyring(config, store).await?;
            let rewritten = engine::keys::rotate(store, &keyring).await?;
            let primary = keyring.primary_key_id();
            println!(
                "re-encrypted the tokens of {rewritten} integration(s) under key `{primary}`; \
                 keys other than `{primary}` can now be removed from MAILWRIGHT_ENCRYPTION_KEYS"
            );
            Ok(())
        }
        AdminCommand::CreateUser {
            email, workspace, ..
        } => {
            let email = domain::EmailAddress::parse(&email)
                .map_err(|problem| anyhow::anyhow!("--email {problem}"))?;
            let mut password = String::new();
            std::io::stdin()
                .read_line(&mut password)
                .context("cannot read the password from standard input")?;
            let password = password.trim_end_matches(['\r', '\n']);
            let (user, workspace) =
                accounts::create_local_user(store, &email, password, workspace.as_deref()).await?;
            let sidemail = matches!(config.mail, crate::config::MailConfig::Sidemail { .. });
            engine::contacts::Contacts::new(store.clone(), sidemail)
                .user_changed(user.id)
                .await;
            println!(
                "created user {} ({email}) in workspace {} ({})",
                user.id, workspace.id, workspace.name
            );
            Ok(())
        }
        AdminCommand::CreateApiKey { workspace, name } => {
            let workspace = accounts::find_workspace(store, &workspace).await?;
            let principal = accounts::cli_key_principal(store, workspace.id, &name).await?;
            let (key, secret) =
                accounts::issue_api_key(store, workspace.id, principal, &name).await?;
            eprintln!(
                "created API key {} (\"{}\") for workspace {} ({}); it is shown once:",
                key.id, key.name, workspace.id, workspace.name
            );
            println!("{}", secrecy::ExposeSecret::expose_secret(&secret));
            Ok(())
        }
    }
}
