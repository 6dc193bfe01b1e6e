//! Following IMAP mailboxes by IDLE (RFC 2177): one connection per
//! mailbox waits for the server to announce new mail, and each announcement
//! asks for a sync (the same sync polling runs, so nothing is drafted
//! twice). Polling stays on as the safety net.
//!
//! Each process follows at most a configured number of mailboxes (others
//! are polled), each under a lease in the database, so several replicas
//! never IDLE on the same mailbox twice. A connection that breaks (the
//! server restarted) is opened again with a growing delay, and a sync is
//! asked for when it is back, for what arrived meanwhile; a refused password
//! ends it (the connection turns `needs_reauth`, once).

use std::collections::HashMap;
use std::time::Duration;

use providers::imap::{IdleEnd, ImapSession};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::*;

/// How often a process looks for mailboxes to follow.
pub const IDLE_TICK: Duration = Duration::from_secs(5);
/// One IDLE lasts at most this long; then the lease is renewed (RFC 2177
/// asks for a new IDLE within 29 minutes; this is far inside it).
const IDLE_ROUND: Duration = Duration::from_secs(30);
/// A lease outlives the longest step between renewals (opening a session,
/// a round and its DONE, each under its own deadlines); a dead holder's
/// lapses after it and another process takes the mailbox over.
const IDLE_LEASE: chrono::Duration = chrono::Duration::seconds(300);
/// Opening a session (connect, TLS, login, SELECT) may take at most this.
const OPEN_DEADLINE: Duration = Duration::from_secs(90);
const FIRST_RECONNECT_DELAY: Duration = Duration::from_secs(1);
const LONGEST_RECONNECT_DELAY: Duration = Duration::from_secs(60);

const IDLE_CONNECTIONS: &str = "mailwright_imap_idle_connections";
/// Why a mailbox cannot be followed: its server has no IDLE.
const NO_IDLE: &str = "the IMAP server does not offer IDLE";
const IDLE_EVENTS: &str = "mailwright_imap_idle_events_total";

/// This process's IDLE connections.
pub struct ImapIdle {
    autodraft: Arc<AutoDraft>,
    /// This process, as the holder of leases.
    owner: Uuid,
    max_connections: usize,
    followed: std::sync::Mutex<HashMap<IntegrationId, JoinHandle<()>>>,
    /// Mailboxes whose server has no IDLE: polled, not tried again by this
    /// process.
    without_idle: std::sync::Mutex<std::collections::HashSet<IntegrationId>>,
}

impl ImapIdle {
    /// Follow at most the configured number of mailboxes (0: none, all
    /// polled).
    pub fn new(autodraft: Arc<AutoDraft>) -> ImapIdle {
        ImapIdle {
            max_connections: autodraft.settings.imap_idle_connections,
            autodraft,
            owner: Uuid::new_v4(),
            followed: std::sync::Mutex::new(HashMap::new()),
            without_idle: std::sync::Mutex::new(std::collections::HashSet::new()),
        }
    }

    /// Look for mailboxes to follow every [`IDLE_TICK`] until `shutdown`.
    pub async fn run(self: Arc<Self>, shutdown: watch::Receiver<bool>) {
        let stop = shutdown.clone();
        crate::supervisor::every(IDLE_TICK, shutdown, "IMAP IDLE", || {
            Arc::clone(&self).tick(stop.clone())
        })
        .await;
        // The connections end on the same signal and give their leases back,
        // so the next process need not wait for them to lapse.
        let tasks: Vec<JoinHandle<()>> = self
            .followed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain()
            .map(|(_, task)| task)
            .collect();
        let _ = tokio::time::timeout(
            Duration::from_secs(5),
            futures_util::future::join_all(tasks),
        )
        .await;
    }

    /// Start following the mailboxes this process may take now; how many.
    pub async fn tick(
        self: Arc<Self>,
        shutdown: watch::Receiver<bool>,
    ) -> Result<usize, StoreError> {
        let (running, room) = {
            let mut followed = self.followed.lock().unwrap_or_else(|e| e.into_inner());
            // A task that ended (mailbox switched off, password refused,
            // lease lost, a panic) makes room; its mailbox may come back.
            followed.retain(|_, task| !task.is_finished());
            metrics::gauge!(IDLE_CONNECTIONS).set(followed.len() as f64);
            (
                followed.keys().copied().collect::<Vec<_>>(),
                self.max_connections.saturating_sub(followed.len()),
            )
        };
        if room == 0 {
            return Ok(0);
        }
        let limit = i64::try_from(room + running.len()).unwrap_or(i64::MAX);
        let store = &self.autodraft.store;
        let mut started = 0;
        let without_idle = self
            .without_idle
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let limit = limit.saturating_add(i64::try_from(without_idle.len()).unwrap_or(0));
        for (workspace, id) in store
            .idle_candidates(self.owner, store::now(), limit)
            .await?
        {
            if started == room || running.contains(&id) || without_idle.contains(&id) {
                continue;
            }
            if !store
                .hold_idle_lease(workspace, id, self.owner, store::now() + IDLE_LEASE)
                .await?
            {
                continue;
            }
            let task = tokio::spawn(Arc::clone(&self).follow(workspace, id, shutdown.clone()));
            self.followed
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(id, task);
            started += 1;
        }
        Ok(started)
    }

    /// Hold an IDLE connection on one mailbox while the lease is ours.
    async fn follow(
        self: Arc<Self>,
        workspace: WorkspaceId,
        id: IntegrationId,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let store = &self.autodraft.store;
        let mut session: Option<ImapSession> = None;
        let mut delay = FIRST_RECONNECT_DELAY;
        loop {
            if *shutdown.borrow() {
                break;
            }
            match store
                .hold_idle_lease(workspace, id, self.owner, store::now() + IDLE_LEASE)
                .await
            {
                Ok(true) => {}
                // Switched off, broken, or another process holds it.
                Ok(false) => break,
                Err(error) => {
                    tracing::warn!(integration = %id, error = format!("{error:#}"), "cannot renew the IDLE lease; trying again");
                    if wait(&mut shutdown, FIRST_RECONNECT_DELAY).await {
                        break;
                    }
                    continue;
                }
            }
            let Some(open) = session.as_mut() else {
                match self.open(workspace, id).await {
                    Ok(opened) => {
                        session = Some(opened);
                        delay = FIRST_RECONNECT_DELAY;
                        metrics::counter!(IDLE_EVENTS, "event" => "connected").increment(1);
                        // Mail that came while nobody listened.
                        self.request_sync(workspace, id).await;
                    }
                    Err(
                        VaultError::NeedsReauth | VaultError::Disconnected | VaultError::NotFound,
                    ) => {
                        break;
                    }
                    Err(VaultError::Rejected(reason)) if reason == NO_IDLE => {
                        tracing::info!(integration = %id, "the IMAP server has no IDLE: the mailbox is polled");
                        self.without_idle
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .insert(id);
                        break;
                    }
                    Err(error) => {
                        tracing::warn!(integration = %id, error = %error, retry_in_s = delay.as_secs(), "cannot open the IMAP IDLE connection; trying again");
                        if wait(&mut shutdown, delay).await {
                            break;
                        }
                        delay = (delay * 2).min(LONGEST_RECONNECT_DELAY);
                    }
                }
                continue;
            };
            let ended = tokio::select! {
                ended = open.idle(IDLE_ROUND) => ended,
                _ = shutdown.changed() => break,
            };
            match ended {
                Ok(IdleEnd::Changed) => {
                    metrics::counter!(IDLE_EVENTS, "event" => "new_mail").increment(1);
                    self.request_sync(workspace, id).await;
                }
                Ok(IdleEnd::Quiet) => {}
                Err(error) => {
                    metrics::counter!(IDLE_EVENTS, "event" => "dropped").increment(1);
                    tracing::warn!(integration = %id, error = %error, retry_in_s = delay.as_secs(), "the IMAP IDLE connection broke; opening it again");
                    session = None;
                    if wait(&mut shutdown, delay).await {
                        break;
                    }
                    delay = (delay * 2).min(LONGEST_RECONNECT_DELAY);
                }
            }
        }
        // A session cut off mid-IDLE is simply dropped: the server ends it.
        drop(session);
        if let Err(error) = store.release_idle_lease(workspace, id, self.owner).await {
            tracing::warn!(integration = %id, error = format!("{error:#}"), "cannot release the IDLE lease; it lapses by itself");
        }
    }

    /// Log in and select the inbox, within [`OPEN_DEADLINE`]; a server
    /// without IDLE is [`NO_IDLE`].
    async fn open(
        &self,
        workspace: WorkspaceId,
        id: IntegrationId,
    ) -> Result<ImapSession, VaultError> {
        let vault = &self.autodraft.vault;
        let open = async {
            let (integration, account) = vault.mail_server_account(workspace, id).await?;
            let mut session = vault.open_imap(&integration, &account).await?;
            if !session.has_capability("IDLE") {
                return Err(VaultError::Rejected(NO_IDLE.into()));
            }
            session
                .select("INBOX")
                .await
                .map_err(|error| vault.imap_failed(&integration, error))?;
            Ok(session)
        };
        match tokio::time::timeout(OPEN_DEADLINE, open).await {
            Ok(opened) => opened,
            Err(_) => Err(VaultError::ServerUnavailable(
                "the IMAP server took too long to open a session".into(),
            )),
        }
    }

    async fn request_sync(&self, workspace: WorkspaceId, id: IntegrationId) {
        if let Err(error) = self
            .autodraft
            .store
            .request_autodraft_sync(workspace, id, &AutoDraft::sync_job(workspace, id))
            .await
        {
            tracing::warn!(integration = %id, error = format!("{error:#}"), "cannot ask for a sync; the next poll finds the mail");
        }
    }
}

/// Sleep `delay` unless `shutdown` turns true first (then `true`).
async fn wait(shutdown: &mut watch::Receiver<bool>, delay: Duration) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(delay) => *shutdown.borrow(),
        _ = shutdown.changed() => true,
    }
}
