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
        let database = config.database_url.redacted();
        let router = http::router(store.clone(), Arc::new(config), auth);
        Ok(Application {
            listener,
            router,
            store,
            database,
            started,
        })
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
