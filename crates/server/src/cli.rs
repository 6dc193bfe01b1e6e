//! The command line: `mailwright serve`, `mailwright migrate`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use store::Store;

use crate::app::{Application, shutdown_signal};
use crate::config::Config;
use crate::telemetry;

#[derive(Debug, Parser)]
#[command(
    name = "mailwright",
    version,
    about = "Self-hostable email automation: connected Gmail accounts, reply drafts, email workflows.",
    after_help = "Settings come from environment variables (MAILWRIGHT_DATABASE_URL, MAILWRIGHT_DATA_DIR, \
MAILWRIGHT_LISTEN, MAILWRIGHT_PUBLIC_URL, MAILWRIGHT_LOG_FORMAT, RUST_LOG) or the same keys in a \
TOML file given with --config; the environment wins. By default the database is SQLite at \
./data/mailwright.db and the service listens on 127.0.0.1:8080. See README.md."
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
    Serve,
    /// Apply pending database migrations, then exit
    Migrate,
}

/// Parse the command line, load the configuration and run the command.
/// A configuration error exits with status 2 after one line on stderr;
/// a failure while running exits with 1.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let (config, warnings) = match Config::from_env(cli.config.as_deref()) {
        Ok(loaded) => loaded,
        Err(error) => {
            eprintln!("{error}");
            return ExitCode::from(2);
        }
    };
    telemetry::init_logging(&config);
    for warning in warnings {
        tracing::warn!("{warning}");
    }

    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
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

async fn run(command: Command, config: Config) -> anyhow::Result<()> {
    let store = Store::connect(&config.database_url)
        .await
        .with_context(|| format!("cannot open the database {}", config.database_url))?;
    match command {
        Command::Migrate => {
            store.migrate().await.context("cannot apply migrations")?;
            tracing::info!(database = %config.database_url, "migrations applied");
            store.close().await;
            Ok(())
        }
        Command::Serve => {
            store.migrate().await.context("cannot apply migrations")?;
            let application = Application::build(config, store).await?;
            application.run_until(shutdown_signal()).await
        }
    }
}
