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

use engine::autodraft::{
    AutoDraft, CheckOutcomes, DraftMessage, Generator, LearnStyle, SyncMailbox, WatchMailbox,
};
use engine::connections::{Connections, RedirectUris};
use engine::contacts::{Contacts, SyncContact};
use engine::health::ConnectionHealth;
use engine::keyring::Keyring;
use engine::notify::{DeliverSystemEmail, Notifier};
use engine::supervisor::Supervisor;
use engine::vault::Vault;
use engine::webhooks::{DELIVERY_TIMEOUT, DeliverWebhook, Webhooks};
use engine::worker::JobHandler;
use engine::worker::Worker;
use engine::workflows::{RunWorkflow, Scheduler, StartNewMailRuns, Workflows};
use providers::google::gmail::Gmail;
use providers::google::oauth::GoogleOAuth;
use providers::llm::ChatDrafter;
use providers::mail::sidemail::Sidemail;
use providers::mail::smtp::Smtp;
use providers::mail::{LogOnly, SystemMailer};
use providers::outbound::OutboundClient;
use secrecy::ExposeSecret;
use tokio::sync::watch;

use crate::auth::Authenticator;
use crate::auth::accounts::Accounts;
use crate::auth::jwt::JwtVerifier;
use crate::auth::push::PushVerifier;
use crate::auth::throttle::SigninThrottle;
use crate::config::{Config, MailConfig};
use crate::demo::Demo;
use crate::http::autodraft::MICROSOFT_PUSH_PATH;
use crate::{http, telemetry};

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub config: Arc<Config>,
    pub auth: Arc<Authenticator>,
    pub contacts: Arc<Contacts>,
    pub workflows: Arc<Workflows>,
    pub vault: Arc<Vault>,
    pub connections: Arc<Connections>,
    pub autodraft: Arc<AutoDraft>,
    pub notifier: Arc<Notifier>,
    pub webhooks: Arc<Webhooks>,
    pub accounts: Arc<Accounts>,
    /// Set by `mailwright demo` only: the in-process Google sandbox.
    pub demo: Option<Arc<Demo>>,
    /// The OpenAPI document, rendered once at start.
    pub openapi_json: Arc<String>,
    /// The background loops of this process (readiness asks about them).
    pub supervisor: Supervisor,
    /// Brute-force limits of the sign-in and setup forms.
    pub signin_throttle: Arc<SigninThrottle>,
    /// Checks Pub/Sub's OIDC tokens on `POST /api/push/gmail`, when configured.
    pub push_verifier: Option<Arc<PushVerifier>>,
}

/// Everything behind the API and the workers, built once from the
/// configuration: shared by `serve` and `worker`.
pub struct Services {
    pub workflows: Arc<Workflows>,
    pub scheduler: Arc<Scheduler>,
    pub health: Arc<ConnectionHealth>,
    pub auth: Arc<Authenticator>,
    pub contacts: Arc<Contacts>,
    pub vault: Arc<Vault>,
    pub connections: Arc<Connections>,
    pub autodraft: Arc<AutoDraft>,
    pub notifier: Arc<Notifier>,
    pub webhooks: Arc<Webhooks>,
    pub worker: Worker,
    pub push_verifier: Option<Arc<PushVerifier>>,
}

impl Services {
    /// The store must already be migrated.
    pub async fn build(config: &Config, store: &Store) -> anyhow::Result<Services> {
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
        let keyring = Arc::new(load_keyring(config, store).await?);
        let google = config.google.clone().map(|client| {
            GoogleOAuth::new(
                client.client_id,
                client.client_secret,
                config.google_endpoints.clone(),
                http_client.clone(),
            )
        });
        let gmail = Gmail::new(config.gmail_api_url.clone(), http_client.clone());
        let mut handlers: Vec<Arc<dyn JobHandler>> = Vec::new();
        let mailer: Arc<dyn SystemMailer> = match &config.mail {
            MailConfig::Log => Arc::new(LogOnly),
            MailConfig::Sidemail { api_url, api_key } => {
                let sidemail = Arc::new(Sidemail::new(
                    api_url.clone(),
                    api_key.clone(),
                    config.system_from.clone(),
                    http_client.clone(),
                ));
                handlers.push(Arc::new(SyncContact::new(
                    store.clone(),
                    Arc::clone(&sidemail),
                )));
                sidemail
            }
            MailConfig::Smtp { url } => Arc::new(
                Smtp::new(url.expose_secret(), config.system_from.clone())
                    .map_err(|problem| anyhow::anyhow!("MAILWRIGHT_SMTP_URL {problem}"))?,
            ),
        };
        let notifier = Arc::new(Notifier::new(
            store.clone(),
            config.public_url.as_str().to_owned(),
        ));
        let clerk = config.clerk_client(&http_client);
        let vault = Arc::new(
            Vault::new(
                store.clone(),
                Arc::clone(&keyring),
                google,
                gmail,
                Arc::clone(&notifier),
            )
            .with_clerk(clerk)
            .with_microsoft(config.microsoft_client(&http_client))
            .with_mail_network(providers::imap::Network {
                tls: config.mail_tls.clone(),
                allow_private: config.outbound_allow_private,
            }),
        );
        let generator = match &config.llm {
            Some(llm) => Generator::Llm(ChatDrafter::new(llm.clone(), http_client.clone())),
            None => Generator::Builtin,
        };
        let mut autodraft_settings = config.autodraft.clone();
        // Graph posts notifications to the public URL (bound by now).
        autodraft_settings.graph_notification_url = config
            .microsoft
            .is_some()
            .then(|| config.public_url_for(MICROSOFT_PUSH_PATH));
        let autodraft = Arc::new(AutoDraft::new(
            store.clone(),
            Arc::clone(&vault),
            Arc::clone(&notifier),
            generator,
            autodraft_settings,
        ));
        handlers.push(Arc::new(SyncMailbox(Arc::clone(&autodraft))));
        handlers.push(Arc::new(DraftMessage(Arc::clone(&autodraft))));
        handlers.push(Arc::new(WatchMailbox(Arc::clone(&autodraft))));
        handlers.push(Arc::new(CheckOutcomes(Arc::clone(&autodraft))));
        handlers.push(Arc::new(LearnStyle(Arc::clone(&autodraft))));
        let contacts = Arc::new(Contacts::new(
            store.clone(),
            matches!(config.mail, MailConfig::Sidemail { .. }),
        ));
        handlers.push(Arc::new(DeliverSystemEmail::new(store.clone(), mailer)));
        let outbound = OutboundClient::new(config.outbound_allow_private, DELIVERY_TIMEOUT)
            .context("cannot build the outbound HTTP client")?;
        handlers.push(Arc::new(
            RunWorkflow::new(
                store.clone(),
                Arc::clone(&vault),
                config.public_url.as_str().to_owned(),
                config.retry,
            )
            .with_outbound(outbound.clone()),
        ));
        handlers.push(Arc::new(DeliverWebhook::new(
            store.clone(),
            Arc::clone(&keyring),
            outbound,
            Arc::clone(&notifier),
            config.retry,
        )));
        let webhooks = Arc::new(Webhooks::new(
            store.clone(),
            Arc::clone(&keyring),
            config.outbound_allow_private,
        ));
        handlers.push(Arc::new(StartNewMailRuns::new(
            store.clone(),
            Arc::clone(&vault),
        )));
        let workflows = Arc::new(
            Workflows::new(store.clone(), Arc::clone(&keyring))
                .with_mailboxes(Arc::clone(&autodraft)),
        );
        let scheduler = Arc::new(Scheduler::new(store.clone(), Arc::clone(&workflows)));
        let health = Arc::new(ConnectionHealth::new(store.clone(), Arc::clone(&vault)));
        let worker = Worker::new(store.clone(), handlers)
            .with_policy(config.retry)
            .with_lease(config.job_lease);
        let auth = Arc::new(Authenticator::new(
            store.clone(),
            jwt,
            Arc::clone(&contacts),
        ));
        let connections = Arc::new(Connections::new(
            store.clone(),
            Arc::clone(&vault),
            Arc::clone(&autodraft),
            RedirectUris {
                google: config.oauth_redirect_uri(),
                microsoft: config.microsoft_redirect_uri(),
            },
        ));
        let push_verifier = config
            .push_oidc
            .clone()
            .map(|oidc| Arc::new(PushVerifier::new(oidc, http_client.clone())));
        Ok(Services {
            push_verifier,
            workflows,
            scheduler,
            health,
            auth,
            contacts,
            vault,
            connections,
            autodraft,
            notifier,
            webhooks,
            worker,
        })
    }
}

/// A bound, ready-to-run Mailwright server.
pub struct Application {
    listener: TcpListener,
    router: Router,
    store: Store,
    /// The database URL without credentials, for the start-up log line.
    database: String,
    vault: Arc<Vault>,
    worker: Worker,
    scheduler: Arc<Scheduler>,
    autodraft: Arc<AutoDraft>,
    health: Arc<ConnectionHealth>,
    supervisor: Supervisor,
    /// Background workers to run beside the HTTP server (0 in tests, which
    /// drain the queue themselves).
    background_workers: usize,
    started: Instant,
}

impl Application {
    /// Bind the listen address (port 0 picks a free port) and assemble the
    /// router. The store must already be migrated.
    pub async fn build(config: Config, store: Store) -> anyhow::Result<Application> {
        Application::build_with(config, store, None).await
    }

    /// As [`Application::build`], for `mailwright demo`: the sandbox is
    /// mounted and the demo pages answer.
    pub async fn build_demo(
        config: Config,
        store: Store,
        demo: Arc<Demo>,
    ) -> anyhow::Result<Application> {
        Application::build_with(config, store, Some(demo)).await
    }

    async fn build_with(
        config: Config,
        store: Store,
        demo: Option<Arc<Demo>>,
    ) -> anyhow::Result<Application> {
        let started = Instant::now();
        let listener = TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("cannot listen on {} (MAILWRIGHT_LISTEN)", config.listen))?;
        let mut config = config;
        if !config.public_url_explicit {
            // Listening on port 0: the public URL (and so the OAuth redirect
            // URI) is the address actually bound.
            let bound = listener.local_addr()?;
            config.public_url = url::Url::parse(&format!("http://{bound}"))
                .context("the bound address as a URL")?;
        }
        let Services {
            workflows,
            scheduler,
            health,
            auth,
            contacts,
            vault,
            connections,
            autodraft,
            notifier,
            webhooks,
            worker,
            push_verifier,
        } = Services::build(&config, &store).await?;
        let database = config.database_url.redacted();
        let supervisor = Supervisor::new();
        let signin_throttle = SigninThrottle::new(config.signin);
        let router = http::router(AppState {
            store: store.clone(),
            signin_throttle,
            config: Arc::new(config),
            auth,
            contacts,
            workflows,
            vault: Arc::clone(&vault),
            connections,
            autodraft: Arc::clone(&autodraft),
            notifier,
            webhooks,
            accounts: Arc::new(Accounts::new(store.clone())),
            demo,
            openapi_json: Arc::default(),
            supervisor: supervisor.clone(),
            push_verifier,
        });
        Ok(Application {
            listener,
            router,
            store,
            database,
            vault,
            worker,
            scheduler,
            autodraft,
            health,
            supervisor,
            background_workers: 2,
            started,
        })
    }

    /// A worker for the job queue (tests call `run_next`/`drain` on it).
    pub fn worker(&self) -> Worker {
        self.worker.clone()
    }

    /// The scheduler of scheduled workflows (tests call `tick`).
    pub fn scheduler(&self) -> Arc<Scheduler> {
        Arc::clone(&self.scheduler)
    }

    /// Auto-draft (tests call `poll_tick`).
    pub fn autodraft(&self) -> Arc<AutoDraft> {
        Arc::clone(&self.autodraft)
    }

    /// How many background workers `run_until` starts (default 2; with 0,
    /// the scheduler does not run either).
    pub fn with_background_workers(mut self, count: usize) -> Application {
        self.background_workers = count;
        self
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
        let (stop_workers, workers_stop) = watch::channel(false);
        let workers = spawn_background_loops(
            &self.supervisor,
            &self.store,
            &self.worker,
            self.background_workers,
            Periodic {
                scheduler: Arc::clone(&self.scheduler),
                autodraft: Arc::clone(&self.autodraft),
                health: Arc::clone(&self.health),
            },
            &workers_stop,
        );
        // The peer address feeds the sign-in limits (`ClientAddress`).
        let served = axum::serve(
            self.listener,
            self.router
                .into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async move {
            shutdown.await;
            tracing::info!("shutting down: finishing requests and jobs in flight");
        })
        .await;
        let _ = stop_workers.send(true);
        for worker in workers {
            let _ = worker.await;
        }
        upkeep.abort();
        self.store.close().await;
        served.context("the HTTP server failed")?;
        tracing::info!("shutdown complete");
        Ok(())
    }
}

/// How often scheduled workflows are checked.
pub const SCHEDULER_INTERVAL: Duration = Duration::from_secs(15);

/// Workers that deliver webhooks, beside the other job workers.
const WEBHOOK_WORKERS: usize = 2;

/// What runs on a timer beside the job workers.
pub struct Periodic {
    pub scheduler: Arc<Scheduler>,
    pub autodraft: Arc<AutoDraft>,
    pub health: Arc<ConnectionHealth>,
}

/// `workers` job workers, (with at least one) two webhook delivery workers,
/// the scheduler, the auto-draft poller, the IMAP IDLE connections and
/// housekeeping, each restarted by `supervisor` if it panics.
pub fn spawn_background_loops(
    supervisor: &Supervisor,
    store: &Store,
    worker: &Worker,
    workers: usize,
    periodic: Periodic,
    stop: &watch::Receiver<bool>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let Periodic {
        scheduler,
        autodraft,
        health,
    } = periodic;
    // Webhook deliveries wait on tenants' servers (up to 10 s each): they
    // have their own workers, so slow endpoints delay only other
    // deliveries, never drafts, runs or system email.
    let is_delivery = |kind: &str| kind == engine::webhooks::DELIVER_WEBHOOK;
    let core = worker.lane(|kind| !is_delivery(kind));
    let deliveries = worker.lane(is_delivery);
    let delivery_workers = if workers > 0 { WEBHOOK_WORKERS } else { 0 };
    let mut loops: Vec<_> = (0..workers)
        .map(|index| (format!("worker-{index}"), core.clone()))
        .chain(
            (0..delivery_workers)
                .map(|index| (format!("webhook-worker-{index}"), deliveries.clone())),
        )
        .map(|(name, worker)| {
            let stop = stop.clone();
            supervisor.spawn(name, stop.clone(), move || worker.clone().run(stop.clone()))
        })
        .collect();
    if workers > 0 {
        let (scheduler, scheduler_stop) = (Arc::clone(&scheduler), stop.clone());
        loops.push(supervisor.spawn("scheduler", stop.clone(), move || {
            Arc::clone(&scheduler).run(SCHEDULER_INTERVAL, scheduler_stop.clone())
        }));
        let idle = Arc::new(engine::autodraft::ImapIdle::new(Arc::clone(&autodraft)));
        let (autodraft, poller_stop) = (Arc::clone(&autodraft), stop.clone());
        loops.push(supervisor.spawn("autodraft-poller", stop.clone(), move || {
            Arc::clone(&autodraft).run_poller(poller_stop.clone())
        }));
        let idle_stop = stop.clone();
        loops.push(supervisor.spawn("imap-idle", stop.clone(), move || {
            Arc::clone(&idle).run(idle_stop.clone())
        }));
        let health_stop = stop.clone();
        loops.push(
            supervisor.spawn("connection-health", stop.clone(), move || {
                Arc::clone(&health).run(engine::health::TICK, health_stop.clone())
            }),
        );
        let (store, housekeeping_stop) = (store.clone(), stop.clone());
        loops.push(supervisor.spawn("housekeeping", stop.clone(), move || {
            engine::housekeeping::run(
                store.clone(),
                engine::housekeeping::PURGE_INTERVAL,
                housekeeping_stop.clone(),
            )
        }));
    }
    loops
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
            if !path.exists() {
                refuse_to_replace_a_lost_key_file(store, &path).await?;
            } else {
                warn_if_readable_by_others(&path);
            }
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

/// A database that already holds secrets (or key checks) without the key
/// file that wrote them lost its key: generating a new one would only fail
/// later with a misleading "wrong key", and leave that wrong file behind.
async fn refuse_to_replace_a_lost_key_file(
    store: &Store,
    path: &std::path::Path,
) -> anyhow::Result<()> {
    let mut used = store.token_key_ids().await?;
    used.extend(store.key_check_ids().await?);
    used.sort();
    used.dedup();
    if used.is_empty() {
        return Ok(());
    }
    anyhow::bail!(
        "the token encryption key file {} is missing, but this database was written with key {}; \
         restore encryption.key from the backup taken with the database (or set MAILWRIGHT_ENCRYPTION_KEYS to that key); \
         no new key was generated",
        path.display(),
        used.join(", ")
    )
}

/// The key file should be readable by its owner only.
fn warn_if_readable_by_others(path: &std::path::Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(metadata) = std::fs::metadata(path)
            && metadata.permissions().mode() & 0o077 != 0
        {
            tracing::warn!(
                path = %path.display(),
                mode = format!("{:o}", metadata.permissions().mode() & 0o777),
                "the token encryption key file is readable by other users; make it private: chmod 600"
            );
        }
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
