//! Building and running the application: the tests start exactly this, on
//! port 0, against a fresh database.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use axum::Router;
use store::Store;
use tokio::net::TcpListener;

use engine::connections::Connections;
use engine::keyring::Keyring;
use engine::vault::Vault;
use providers::google::gmail::Gmail;
use providers::google::oauth::GoogleOAuth;

use crate::auth::Authenticator;
use crate::auth::jwt::JwtVerifier;
use crate::config::Config;
use crate::{http, telemetry};

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub config: Arc<Config>,
    pub auth: Arc<Authenticator>,
    pub vault: Arc<Vault>,
    pub connections: Arc<Connections>,
    /// The OpenAPI document, rendered once at start.
    pub openapi_json: Arc<String>,
}

/// A bound, ready-to-run Mailwright server.
pub struct Application {
    listener: TcpListener,
    router: Router,
    store: Store,
    /// The database URL without credentials, for the start-up log line.
    database: String,
    vault: Arc<Vault>,
    started: Instant,
}

impl Application {
    /// Bind the listen address (port 0 picks a free port) and assemble the
    /// router. The store must already be migrated.
    pub async fn build(config: Config, store: Store) -> anyhow::Result<Application> {
        let started = Instant::now();
        let listener = TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("cannot listen on {} (MAILWRIGHT_LISTEN)", config.listen))?;
        telemetry::metrics();
        install_crypto_provider();
        if store.bypasses_row_security().await? {
            tracing::warn!(
                "the database role is a superuser or has BYPASSRLS: PostgreSQL row-level security, \
                 the second wall between workspaces, does not apply; connect as an ordinary role that owns the database"
            );
        }
        let http_client = reqwest::Client::builder()
            .user_agent(concat!("mailwright/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(5))
            .build()
            .context("cannot build the HTTP client")?;
        let jwt = config
            .jwt
            .clone()
            .map(|jwt| JwtVerifier::new(jwt, http_client.clone()));
        let auth = Arc::new(Authenticator::new(store.clone(), jwt));
        let keyring = Arc::new(load_keyring(&config, &store).await?);

        let mut config = config;
        if !config.public_url_explicit {
            // Listening on port 0: the public URL (and so the OAuth redirect
            // URI) is the address actually bound.
            let bound = listener.local_addr()?;
            config.public_url = url::Url::parse(&format!("http://{bound}"))
                .context("the bound address as a URL")?;
        }
        let google = config.google.clone().map(|client| {
            GoogleOAuth::new(
                client.client_id,
                client.client_secret,
                config.google_endpoints.clone(),
                http_client.clone(),
            )
        });
        let gmail = Gmail::new(config.gmail_api_url.clone(), http_client.clone());
        let vault = Arc::new(Vault::new(store.clone(), keyring, google, gmail));
        let connections = Arc::new(Connections::new(
            store.clone(),
            Arc::clone(&vault),
            config.oauth_redirect_uri(),
        ));

        let database = config.database_url.redacted();
        let router = http::router(AppState {
            store: store.clone(),
            config: Arc::new(config),
            auth,
            vault: Arc::clone(&vault),
            connections,
            openapi_json: Arc::default(),
        });
        Ok(Application {
            listener,
            router,
            store,
            database,
            vault,
            started,
        })
    }

    /// The token vault (for tests and tools that use Google directly).
    pub fn vault(&self) -> Arc<Vault> {
        Arc::clone(&self.vault)
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound TCP listener has an address")
    }

    /// Serve until `shutdown` completes, then stop accepting connections, let
    /// requests in flight finish, and close the database.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let address = self.local_addr();
        tracing::info!(
            %address,
            version = env!("CARGO_PKG_VERSION"),
            database = %self.database,
            startup_ms = self.started.elapsed().as_millis() as u64,
            "listening"
        );
        let upkeep = tokio::spawn(async {
            let mut tick = tokio::time::interval(Duration::from_secs(5));
            loop {
                tick.tick().await;
                telemetry::metrics().run_upkeep();
            }
        });
        let served = axum::serve(self.listener, self.router)
            .with_graceful_shutdown(async move {
                shutdown.await;
                tracing::info!("shutting down: finishing requests in flight");
            })
            .await;
        upkeep.abort();
        self.store.close().await;
        served.context("the HTTP server failed")?;
        tracing::info!("shutdown complete");
        Ok(())
    }
}

/// The token encryption keys: configured, or (SQLite without configured
/// keys) generated once into `<data dir>/encryption.key`; then checked
/// against what the database holds, so a wrong key stops the start.
pub async fn load_keyring(config: &Config, store: &Store) -> anyhow::Result<Keyring> {
    let keyring = match &config.encryption_keys {
        Some(keys) => Keyring::parse(secrecy::ExposeSecret::expose_secret(keys))
            .map_err(|problem| anyhow::anyhow!("MAILWRIGHT_ENCRYPTION_KEYS: {problem}"))?,
        None => {
            let path = config.data_dir.join("encryption.key");
            let (keyring, created) = Keyring::load_or_create_file(&path).map_err(|problem| {
                anyhow::anyhow!("the generated encryption key file: {problem}")
            })?;
            if created {
                tracing::info!(
                    path = %path.display(),
                    "generated the token encryption key; back it up with the database (without it, stored Google tokens cannot be read)"
                );
            }
            keyring
        }
    };
    engine::keys::verify(store, &keyring).await?;
    Ok(keyring)
}

/// TLS (JWKS, Google, Sidemail) uses rustls with the ring provider; install it
/// once per process before any client is built.
pub fn install_crypto_provider() {
    // Err only means it is installed already.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM (what orchestrators send).
pub async fn shutdown_signal() {
    let interrupt = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {},
        () = terminate => {},
    }
}
