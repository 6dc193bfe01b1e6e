//! The token vault: decrypts access tokens for use, refreshes them ahead of
//! expiry, and keeps each integration's status honest.
//!
//! One refresh at a time per integration: within a process callers queue on
//! a per-integration lock; across processes the first to take the row's
//! refresh lease (compare-and-set on the token version) refreshes while the
//! others wait for the version to change. No transaction is held open while
//! Google is called. `invalid_grant` means the person must reconnect: the
//! integration becomes `needs_reauth` and is not refreshed again until then.
//! Network trouble and 5xx are retried a little, then reported, without a
//! status change.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use domain::explain::explain;
use domain::scopes::{Capability, IntegrationStatus, TokenSource};
use domain::{IntegrationId, WorkspaceId};
use providers::clerk::{Clerk, ClerkError};
use providers::google::gmail::{Gmail, GmailError};
use providers::google::oauth::GoogleOAuth;
use providers::microsoft::identity::MicrosoftOAuth;
use providers::oauth2::{OAuthError, TokenResponse};
use secrecy::{ExposeSecret, SecretString};
use store::integrations::{Integration, Refreshed, StoredTokens};
use store::{Store, StoreError};
use uuid::Uuid;

use crate::keyring::Keyring;
use crate::notify::Notifier;

/// Refresh when the access token expires within this margin.
pub const REFRESH_MARGIN: chrono::Duration = chrono::Duration::minutes(5);
/// How long a refresh lease lasts: longer than a refresh can take (3 attempts
/// of up to 15 s each, plus pauses), so it never lapses mid-refresh.
const REFRESH_LEASE: chrono::Duration = chrono::Duration::seconds(90);
/// How long a caller waits for another process's refresh: beyond the lease.
const WAIT_FOR_OTHER_REFRESH: Duration = Duration::from_secs(100);
/// Attempts at a refresh when Google is unavailable, and the pause between.
const REFRESH_ATTEMPTS: u32 = 3;
const REFRESH_RETRY_PAUSE: Duration = Duration::from_millis(300);

pub const TOKEN_REFRESHES: &str = "mailwright_token_refreshes_total";
/// How long a token from Clerk is used when Clerk does not say when it
/// expires (longer than [`REFRESH_MARGIN`], or it would be asked for again
/// at every call).
const CLERK_TOKEN_REUSE: Duration = Duration::from_secs(15 * 60);
/// Bounds of how long a token from Clerk is kept, whatever Clerk says: at
/// least past [`REFRESH_MARGIN`] (or it would be asked for at every call),
/// at most under Google's hour.
const CLERK_TOKEN_SHORTEST: Duration = Duration::from_secs(6 * 60);
const CLERK_TOKEN_LONGEST: Duration = Duration::from_secs(55 * 60);

/// `last_used_at` is written at most this often per integration and process.
const TOUCH_INTERVAL: Duration = Duration::from_secs(30);

/// Why no token (or no Gmail answer) could be had, in terms callers act on.
#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    #[error("no such integration")]
    NotFound,
    #[error("the integration is disconnected")]
    Disconnected,
    #[error("the integration needs to be reconnected")]
    NeedsReauth,
    #[error("the integration lacks scopes: {}", .0.join(", "))]
    MissingScopes(Vec<String>),
    #[error("{service} is unavailable: {reason}")]
    Unavailable {
        /// Who did not answer, in the person's terms ("Gmail",
        /// "Microsoft Graph", "Google", "Microsoft").
        service: &'static str,
        reason: String,
        retry_after: Option<Duration>,
    },
    /// The mailbox no longer has the item (Gmail's 404, an IMAP message
    /// expunged or renumbered), or the history position. Not a fault of the
    /// connection, so nothing is recorded on it.
    #[error("the mailbox has no such item")]
    Gone,
    /// An IMAP or SMTP server did not answer or broke the connection: try
    /// again later.
    #[error("the mail server is unavailable: {0}")]
    ServerUnavailable(String),
    /// The SMTP server may or may not have taken a message: the connection
    /// broke after it was handed over. Not sent again (no duplicate);
    /// a person checks.
    #[error("the mail server may not have confirmed the message")]
    SendUnconfirmed,
    #[error("the provider refused the request: {0}")]
    Rejected(String),
    #[error("the provider is not configured on this server")]
    NotConfigured,
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<StoreError> for VaultError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::NotFound => VaultError::NotFound,
            other => VaultError::Internal(other.into()),
        }
    }
}

/// What a vault error means for the person who sees it: a code, a
/// sentence, and whether trying again later may help. The one translation
/// of [`VaultError`] for runs, auto-draft and the API.
#[derive(Debug)]
pub struct UserFacing {
    /// `missing_scopes`, `needs_reauth`, `disconnected`, `provider_error`,
    /// `provider_unavailable`, `send_unconfirmed` or `internal`.
    pub code: &'static str,
    /// What went wrong, as a sentence.
    pub problem: String,
    /// What fixes it, as a sentence (empty when nothing a person does
    /// will: an outage, a refusal).
    pub remedy: &'static str,
    /// `Some`: an outage that may pass; retry (no sooner than the delay
    /// Google asked for, if any). `None`: final.
    pub retry: Option<Option<Duration>>,
}

impl UserFacing {
    /// The problem and its remedy, one after the other.
    pub fn message(&self) -> String {
        if self.remedy.is_empty() {
            self.problem.clone()
        } else {
            format!("{} {}", self.problem, self.remedy)
        }
    }
}

impl VaultError {
    /// This error for a person, about the connection to `email` (`None`:
    /// "this mailbox"). An internal error is logged here with its cause;
    /// its sentence only says that something broke.
    pub fn user_facing(self, email: Option<&str>) -> UserFacing {
        let connection = |status: IntegrationStatus, missing: &[String]| {
            let explanation = explain(status, email, missing);
            UserFacing {
                code: explanation.code,
                problem: explanation.problem,
                remedy: explanation.remedy,
                retry: None,
            }
        };
        let provider_error = |problem: String| UserFacing {
            code: "provider_error",
            problem,
            remedy: "",
            retry: None,
        };
        match self {
            VaultError::MissingScopes(scopes) => {
                connection(IntegrationStatus::MissingScopes, &scopes)
            }
            VaultError::NeedsReauth => connection(IntegrationStatus::NeedsReauth, &[]),
            VaultError::Disconnected | VaultError::NotFound => {
                connection(IntegrationStatus::Disconnected, &[])
            }
            VaultError::Unavailable {
                service,
                reason,
                retry_after,
            } => UserFacing {
                code: "provider_unavailable",
                problem: format!("{service} did not answer ({reason})."),
                remedy: "",
                retry: Some(retry_after),
            },
            VaultError::Gone => {
                provider_error("The mailbox answered that the item no longer exists.".into())
            }
            VaultError::ServerUnavailable(reason) => UserFacing {
                code: "provider_unavailable",
                problem: format!("The mail server did not answer ({reason})."),
                remedy: "",
                retry: Some(None),
            },
            VaultError::SendUnconfirmed => UserFacing {
                code: "send_unconfirmed",
                problem: "The connection broke after the message was handed over, so it may have been sent; Mailwright did not send it again, to avoid a duplicate (an IMAP mailbox's copy in Sent is flagged $MailwrightUnconfirmed; an Outlook draft stays in Drafts).".into(),
                remedy: "Check with the recipient or in your Sent folder, and re-run the workflow if it did not arrive.",
                retry: None,
            },
            VaultError::Rejected(reason) if reason.ends_with('.') => provider_error(reason),
            VaultError::Rejected(reason) => {
                provider_error(format!("The mailbox refused the request ({reason})."))
            }
            VaultError::NotConfigured => provider_error(
                "The mailbox's provider (Google or Microsoft) is not configured on this server."
                    .into(),
            ),
            VaultError::Internal(error) => {
                tracing::error!(
                    error = format!("{error:#}"),
                    "internal error behind a Gmail call"
                );
                UserFacing {
                    code: "internal",
                    problem: "Mailwright hit an internal error (details in the server log).".into(),
                    remedy: "",
                    retry: Some(None),
                }
            }
        }
    }
}

/// The associated data that binds a token ciphertext to its row and field.
pub fn token_context(id: IntegrationId, field: &str) -> String {
    format!("oauth_tokens:{id}:{field}")
}

/// A probe's failure, as the vault reports it (`service`: who answered).
fn probe_failure(error: OAuthError, service: &'static str) -> VaultError {
    match error {
        OAuthError::InvalidGrant { .. } => VaultError::NeedsReauth,
        OAuthError::Unavailable(reason) => VaultError::Unavailable {
            service,
            reason,
            retry_after: None,
        },
        OAuthError::Rejected(reason) => VaultError::Rejected(reason),
    }
}

pub struct Vault {
    store: Store,
    events: crate::webhooks::Events,
    keyring: Arc<Keyring>,
    google: Option<GoogleOAuth>,
    /// The Microsoft identity platform app, for Outlook connections.
    microsoft: Option<MicrosoftOAuth>,
    gmail: Gmail,
    notifier: Arc<Notifier>,
    /// Clerk's Backend API, for connections whose Google grant Clerk holds.
    clerk: Option<Clerk>,
    /// When this process last wrote `last_used_at` of each integration: the
    /// column is for people ("used 2 minutes ago"), not worth a write per call.
    touched: Mutex<HashMap<IntegrationId, Instant>>,
    /// Per-integration locks: callers in this process wait for one refresh.
    refreshing: Mutex<HashMap<IntegrationId, Arc<tokio::sync::Mutex<()>>>>,
    /// How IMAP and SMTP servers are reached (set at start; the system's
    /// roots and no private networks by default, loaded when first used).
    mail_network: std::sync::OnceLock<providers::imap::Network>,
    /// Turns of mailbox connects ([`crate::mail_servers::CONCURRENT_CONNECTS`]).
    connect_turns: tokio::sync::Semaphore,
    /// Each workspace's recent connects ([`crate::mail_servers::CONNECTS_PER_WINDOW`]).
    connect_attempts: Mutex<HashMap<WorkspaceId, Vec<Instant>>>,
}

impl Vault {
    pub fn new(
        store: Store,
        keyring: Arc<Keyring>,
        google: Option<GoogleOAuth>,
        gmail: Gmail,
        notifier: Arc<Notifier>,
    ) -> Vault {
        Vault {
            events: crate::webhooks::Events::new(store.clone()),
            store,
            keyring,
            google,
            microsoft: None,
            gmail,
            notifier,
            clerk: None,
            touched: Mutex::new(HashMap::new()),
            refreshing: Mutex::new(HashMap::new()),
            mail_network: std::sync::OnceLock::new(),
            connect_turns: tokio::sync::Semaphore::new(crate::mail_servers::CONCURRENT_CONNECTS),
            connect_attempts: Mutex::new(HashMap::new()),
        }
    }

    pub(crate) fn connect_attempts(&self) -> &Mutex<HashMap<WorkspaceId, Vec<Instant>>> {
        &self.connect_attempts
    }

    pub(crate) fn connect_turns(&self) -> &tokio::sync::Semaphore {
        &self.connect_turns
    }

    /// Reach IMAP and SMTP servers through `network`.
    pub fn with_mail_network(self, network: providers::imap::Network) -> Vault {
        let _ = self.mail_network.set(network);
        self
    }

    pub fn mail_network(&self) -> &providers::imap::Network {
        self.mail_network.get_or_init(|| providers::imap::Network {
            tls: providers::imap::MailTls::load(None)
                .or_else(|_| providers::imap::MailTls::with_roots(Vec::new()))
                .expect("TLS settings without roots always build"),
            allow_private: false,
        })
    }

    pub(crate) fn store(&self) -> &Store {
        &self.store
    }

    /// Take tokens of Clerk-held connections from `clerk`.
    pub fn with_clerk(mut self, clerk: Option<Clerk>) -> Vault {
        self.clerk = clerk;
        self
    }

    pub fn clerk(&self) -> Option<&Clerk> {
        self.clerk.as_ref()
    }

    /// Connect and refresh Outlook connections through `microsoft`.
    pub fn with_microsoft(mut self, microsoft: Option<MicrosoftOAuth>) -> Vault {
        self.microsoft = microsoft;
        self
    }

    pub fn microsoft(&self) -> Option<&MicrosoftOAuth> {
        self.microsoft.as_ref()
    }

    /// Whether tokens for `integration` can be had at all on this server.
    fn token_source_configured(&self, integration: &Integration) -> bool {
        match integration.token_source {
            TokenSource::Clerk { .. } => self.clerk.is_some(),
            TokenSource::Mailwright => match integration.integration_type.provider() {
                "microsoft" => self.microsoft.is_some(),
                "google" => self.google.is_some(),
                // A password needs no client.
                _ => true,
            },
        }
    }

    pub fn keyring(&self) -> &Keyring {
        &self.keyring
    }

    pub fn google(&self) -> Option<&GoogleOAuth> {
        self.google.as_ref()
    }

    pub fn gmail(&self) -> &Gmail {
        &self.gmail
    }

    /// A usable access token for the integration.
    pub async fn access_token(
        &self,
        workspace: WorkspaceId,
        id: IntegrationId,
    ) -> Result<SecretString, VaultError> {
        Ok(self.gmail_connection(workspace, id).await?.token)
    }

    /// The integration, as read together with its usable access token.
    pub(crate) async fn gmail_connection(
        &self,
        workspace: WorkspaceId,
        id: IntegrationId,
    ) -> Result<GmailConnection, VaultError> {
        let give_up = Instant::now() + WAIT_FOR_OTHER_REFRESH;
        loop {
            // Checked on every pass and again after the lock: a refresh that
            // ended in invalid_grant while we waited must stop us too (one
            // call to Google, not N).
            if let Freshness::Fresh(connection) = self.fresh_or_stale(workspace, id).await? {
                return Ok(connection);
            }
            let lock = self.local_lock(id);
            let _one_refresh_in_this_process = lock.lock().await;
            // Someone in this process may have refreshed (or failed) meanwhile.
            let (integration, tokens) = match self.fresh_or_stale(workspace, id).await? {
                Freshness::Fresh(connection) => return Ok(connection),
                Freshness::Stale(integration, tokens) => (integration, tokens),
            };
            let lease = Uuid::new_v4();
            let until = store::now() + REFRESH_LEASE;
            if self
                .store
                .lease_token_refresh(workspace, id, tokens.version, lease, until)
                .await?
            {
                if let Some((token, version)) = self
                    .refresh_under_lease(&integration, &tokens, lease)
                    .await?
                {
                    return Ok(GmailConnection {
                        integration: *integration,
                        token,
                        version,
                    });
                }
                // Lease lost mid-refresh: read again.
                continue;
            }
            // Another process holds the lease: wait for its result.
            self.wait_for_other_refresh(workspace, id, tokens.version, give_up)
                .await?;
        }
    }

    /// The integration must be usable; then its access token is either fresh
    /// (decrypted) or due for refresh.
    async fn fresh_or_stale(
        &self,
        workspace: WorkspaceId,
        id: IntegrationId,
    ) -> Result<Freshness, VaultError> {
        let (integration, tokens) = self.store.integration_with_tokens(workspace, id).await?;
        match integration.status {
            IntegrationStatus::NeedsReauth => return Err(VaultError::NeedsReauth),
            IntegrationStatus::Disconnected => return Err(VaultError::Disconnected),
            IntegrationStatus::Connected | IntegrationStatus::MissingScopes => {}
        }
        let tokens = tokens.ok_or(VaultError::Disconnected)?;
        Ok(if is_fresh(&tokens) {
            Freshness::Fresh(GmailConnection {
                token: self.decrypt_access(id, &tokens)?,
                version: tokens.version,
                integration,
            })
        } else {
            Freshness::Stale(Box::new(integration), tokens)
        })
    }

    fn local_lock(&self, id: IntegrationId) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.refreshing.lock().expect("refresh lock map");
        Arc::clone(locks.entry(id).or_default())
    }

    fn decrypt_access(
        &self,
        id: IntegrationId,
        tokens: &StoredTokens,
    ) -> Result<SecretString, VaultError> {
        self.keyring
            .open_secret(&tokens.access_token, &token_context(id, "access"))
            .map_err(|error| {
                VaultError::Internal(anyhow::anyhow!(
                    "cannot decrypt the access token of {id}: {error}"
                ))
            })
    }

    async fn wait_for_other_refresh(
        &self,
        workspace: WorkspaceId,
        id: IntegrationId,
        version: i32,
        give_up: Instant,
    ) -> Result<(), VaultError> {
        loop {
            let tokens = self
                .store
                .tokens(workspace, id)
                .await?
                .ok_or(VaultError::Disconnected)?;
            let lease_over = tokens
                .refresh_lease_until
                .is_none_or(|until| until < store::now());
            if tokens.version != version || lease_over {
                return Ok(());
            }
            if Instant::now() > give_up {
                return Err(VaultError::Unavailable {
                    service: "Another process refreshing this token",
                    reason: "its refresh did not finish in time".into(),
                    retry_after: None,
                });
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Refresh with the lease held. `Ok(None)`: the lease was lost.
    async fn refresh_under_lease(
        &self,
        integration: &Integration,
        tokens: &StoredTokens,
        lease: Uuid,
    ) -> Result<Option<(SecretString, i32)>, VaultError> {
        let (workspace, id) = (integration.workspace, integration.id);
        if !self.token_source_configured(integration) {
            self.store
                .release_token_refresh(workspace, id, lease)
                .await?;
            return Err(VaultError::NotConfigured);
        }
        let outcome = self.refresh_grant(integration, tokens).await;
        let response = match outcome {
            Ok(response) => response,
            Err(error) => {
                // Status first, lease second: a caller waiting on the lease
                // must find `needs_reauth` when it wakes, not try again.
                let failure = self.refresh_failed(integration, error).await;
                self.store
                    .release_token_refresh(workspace, id, lease)
                    .await?;
                return Err(failure);
            }
        };
        let refreshed = Refreshed {
            access_token: self.keyring.seal(
                response.access_token.expose_secret().as_bytes(),
                &token_context(id, "access"),
            ),
            refresh_token: response.refresh_token.as_ref().map(|token| {
                self.keyring.seal(
                    token.expose_secret().as_bytes(),
                    &token_context(id, "refresh"),
                )
            }),
            expires_at: store::now()
                + chrono::Duration::from_std(response.expires_in)
                    .unwrap_or(chrono::Duration::hours(1)),
            granted_scopes: response.scope.as_deref().map(|scope| {
                let granted = integration.integration_type.parse_scopes(scope);
                let status = IntegrationStatus::for_grant(&granted, integration.integration_type);
                (granted, status)
            }),
        };
        if !self
            .store
            .store_refreshed_tokens(workspace, id, lease, &refreshed)
            .await?
        {
            return Ok(None);
        }
        metrics::counter!(TOKEN_REFRESHES, "outcome" => "success").increment(1);
        Ok(Some((response.access_token, tokens.version + 1)))
    }

    /// A new access token from whoever holds the grant: Google or
    /// Microsoft (with the stored refresh token; Microsoft's answer carries
    /// the refresh token that replaces it, stored in the same write as the
    /// access token) or Clerk.
    async fn refresh_grant(
        &self,
        integration: &Integration,
        tokens: &StoredTokens,
    ) -> Result<TokenResponse, OAuthError> {
        if let TokenSource::Clerk { user_id } = &integration.token_source {
            return self.token_from_clerk(user_id).await;
        }
        let Some(sealed) = &tokens.refresh_token else {
            return Err(OAuthError::InvalidGrant {
                detail: "no refresh token is stored".into(),
            });
        };
        let refresh_token = self
            .keyring
            .open_secret(sealed, &token_context(integration.id, "refresh"))
            .map_err(|error| {
                OAuthError::Rejected(format!("cannot decrypt the refresh token: {error}"))
            })?;
        let mut attempt = 1;
        loop {
            let answer = match integration.integration_type.provider() {
                "microsoft" => {
                    let microsoft = self.microsoft.as_ref().ok_or_else(|| {
                        OAuthError::Rejected("Microsoft is not configured".into())
                    })?;
                    // What was granted: asking for more than the grant has
                    // is refused as if consent were withdrawn.
                    let mut scopes: Vec<&str> = vec![domain::scopes::MS_OFFLINE_ACCESS];
                    scopes.extend(integration.granted_scopes.iter());
                    microsoft.refresh(&refresh_token, &scopes).await
                }
                _ => {
                    let google = self
                        .google
                        .as_ref()
                        .ok_or_else(|| OAuthError::Rejected("Google is not configured".into()))?;
                    google.refresh(&refresh_token).await
                }
            };
            match answer {
                Err(OAuthError::Unavailable(reason)) if attempt < REFRESH_ATTEMPTS => {
                    tracing::info!(integration = %integration.id, attempt, reason, "the identity provider is unavailable while refreshing; retrying");
                    tokio::time::sleep(REFRESH_RETRY_PAUSE * attempt).await;
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    /// The Google token Clerk holds for `user_id`, as a token answer: no
    /// token at Clerk reads as a refused grant (the person re-authorises in
    /// Clerk), a refused secret key as a refusal, an outage as one.
    pub async fn token_from_clerk(&self, user_id: &str) -> Result<TokenResponse, OAuthError> {
        let clerk = self
            .clerk
            .as_ref()
            .ok_or_else(|| OAuthError::Rejected("Clerk is not configured".into()))?;
        match clerk.google_token(user_id).await {
            Ok(token) => Ok(TokenResponse {
                access_token: token.token,
                refresh_token: None,
                // Asked again when Clerk says it expires, or after a few
                // minutes when it does not say (Clerk refreshes it).
                // Bounded: a past or far-future `expires_at` is not
                // trusted to keep an expired token in use.
                expires_in: token
                    .expires_at
                    .and_then(|at| (at - store::now()).to_std().ok())
                    .unwrap_or(CLERK_TOKEN_REUSE)
                    .clamp(CLERK_TOKEN_SHORTEST, CLERK_TOKEN_LONGEST),
                scope: Some(token.scopes.join(" ")),
            }),
            Err(ClerkError::NoToken) => Err(OAuthError::InvalidGrant {
                detail: "Clerk holds no Google token for the user".into(),
            }),
            Err(ClerkError::Rejected(reason)) => {
                Err(OAuthError::Rejected(format!("Clerk: {reason}")))
            }
            Err(ClerkError::Unavailable(reason)) => {
                Err(OAuthError::Unavailable(format!("Clerk: {reason}")))
            }
        }
    }

    async fn refresh_failed(&self, integration: &Integration, error: OAuthError) -> VaultError {
        let (workspace, id) = (integration.workspace, integration.id);
        match error {
            OAuthError::InvalidGrant { detail } => {
                metrics::counter!(TOKEN_REFRESHES, "outcome" => "invalid_grant").increment(1);
                let message = explain(
                    IntegrationStatus::NeedsReauth,
                    Some(&integration.email),
                    &[],
                )
                .message();
                tracing::info!(integration = %id, provider = integration.integration_type.provider(), reason = %detail, "the identity provider refused the refresh token");
                self.transition(
                    workspace,
                    id,
                    IntegrationStatus::NeedsReauth,
                    &message,
                    None,
                )
                .await;
                VaultError::NeedsReauth
            }
            OAuthError::Unavailable(reason) => {
                metrics::counter!(TOKEN_REFRESHES, "outcome" => "unavailable").increment(1);
                let _ = self
                    .store
                    .record_integration_error(
                        workspace,
                        id,
                        "provider_unavailable",
                        &format!(
                            "{} did not answer while Mailwright refreshed access; it will try again.",
                            integration.integration_type.provider_name()
                        ),
                    )
                    .await;
                VaultError::Unavailable {
                    service: integration.integration_type.provider_name(),
                    reason,
                    retry_after: None,
                }
            }
            OAuthError::Rejected(reason) => {
                metrics::counter!(TOKEN_REFRESHES, "outcome" => "rejected").increment(1);
                let provider = integration.integration_type.provider_name();
                tracing::error!(integration = %id, reason, provider, "the identity provider refused a token refresh");
                let message = format!(
                    "{provider} refused to refresh access; the operator should check the {provider} client settings."
                );
                let _ = self
                    .store
                    .record_integration_error(workspace, id, "provider_error", &message)
                    .await;
                VaultError::Rejected(reason)
            }
        }
    }

    /// Whether Google would still refresh `integration`'s token, and which
    /// scopes the grant lacks, without writing anything: the new token is
    /// thrown away, the status is left as it is (`mailwright doctor`).
    pub async fn probe(&self, integration: &Integration) -> Result<Vec<String>, VaultError> {
        if !self.token_source_configured(integration) {
            return Err(VaultError::NotConfigured);
        }
        if integration.integration_type.provider() == "microsoft" {
            // Microsoft rotates the refresh token at each refresh: one
            // thrown away would leave the stored one dead. So the stored
            // access token is used (refreshed and stored the usual way when
            // due) and Graph asked who it belongs to.
            let microsoft = self.microsoft.as_ref().ok_or(VaultError::NotConfigured)?;
            let connection = self
                .gmail_connection(integration.workspace, integration.id)
                .await?;
            return match microsoft.me(&connection.token).await {
                Ok(_) => Ok(connection.integration.missing_scopes()),
                Err(error) => Err(probe_failure(error, "Microsoft Graph")),
            };
        }
        let tokens = self
            .store
            .tokens(integration.workspace, integration.id)
            .await?
            .ok_or(VaultError::Disconnected)?;
        match self.refresh_grant(integration, &tokens).await {
            Ok(response) => Ok(response
                .scope
                .as_deref()
                .map(|scope| {
                    integration
                        .integration_type
                        .parse_scopes(scope)
                        .missing_for(integration.integration_type)
                })
                .unwrap_or_default()),
            Err(error) => Err(probe_failure(
                error,
                integration.integration_type.provider_name(),
            )),
        }
    }

    /// Check that connection `id` still works. An IMAP mailbox logs in to
    /// its server ([`Vault::check_mail_server`]). For Google, its access token
    /// is refreshed now, whatever its age, through the usual refresh (one
    /// refresh across processes, status and notice on failure). A revoked
    /// grant turns it `needs_reauth`; a grant with fewer scopes,
    /// `missing_scopes`.
    pub async fn check(&self, workspace: WorkspaceId, id: IntegrationId) -> Result<(), VaultError> {
        let integration = self.store.integration(workspace, id).await?;
        if integration.integration_type == domain::scopes::IntegrationType::Imap {
            return self.check_mail_server(workspace, id).await;
        }
        let connection = self.gmail_connection(workspace, id).await?;
        self.store
            .expire_access_token(workspace, id, connection.version)
            .await?;
        self.gmail_connection(workspace, id).await?;
        Ok(())
    }

    /// Open connection `id` for the Gmail calls of one job: the
    /// integration and a usable token, read once.
    pub async fn gmail_session(
        &self,
        workspace: WorkspaceId,
        id: IntegrationId,
    ) -> Result<GmailSession, VaultError> {
        let connection = self.gmail_connection(workspace, id).await?;
        Ok(GmailSession {
            token: Mutex::new((connection.token, connection.version)),
            integration: connection.integration,
        })
    }

    /// [`Vault::call`] in a session of its own, for a lone call.
    pub async fn with_gmail<T, F, Fut>(
        &self,
        workspace: WorkspaceId,
        id: IntegrationId,
        needs: Capability,
        call: F,
    ) -> Result<T, VaultError>
    where
        F: Fn(SecretString) -> Fut,
        Fut: Future<Output = Result<T, GmailError>>,
    {
        let session = self.gmail_session(workspace, id).await?;
        self.call(&session, needs, call).await
    }

    /// Run a Gmail call in `session`, keeping the connection's status,
    /// `last_used_at` and `last_error` current: a 401 refreshes the token
    /// (for the session's later calls too) and retries once; a 403 for
    /// missing scopes marks the integration `missing_scopes` at once
    /// (`needs` names what the call was for).
    pub async fn call<T, F, Fut>(
        &self,
        session: &GmailSession,
        needs: Capability,
        call: F,
    ) -> Result<T, VaultError>
    where
        F: Fn(SecretString) -> Fut,
        Fut: Future<Output = Result<T, GmailError>>,
    {
        self.call_recording(session, needs, call, true).await
    }

    /// [`Vault::call`] for a call whose refusal says nothing about the
    /// connection (a watch refused for its Pub/Sub topic): a refusal or a
    /// 404 is returned without being written as the connection's last error.
    /// A token or scope problem is still the connection's.
    pub async fn call_without_recording_refusals<T, F, Fut>(
        &self,
        session: &GmailSession,
        needs: Capability,
        call: F,
    ) -> Result<T, VaultError>
    where
        F: Fn(SecretString) -> Fut,
        Fut: Future<Output = Result<T, GmailError>>,
    {
        self.call_recording(session, needs, call, false).await
    }

    async fn call_recording<T, F, Fut>(
        &self,
        session: &GmailSession,
        needs: Capability,
        call: F,
        record_refusals: bool,
    ) -> Result<T, VaultError>
    where
        F: Fn(SecretString) -> Fut,
        Fut: Future<Output = Result<T, GmailError>>,
    {
        let (workspace, id) = (session.integration.workspace, session.integration.id);
        let (token, version) = session.token();
        let result = match call(token).await {
            Err(GmailError::Unauthorized) => {
                self.store
                    .expire_access_token(workspace, id, version)
                    .await?;
                let fresh = self.gmail_connection(workspace, id).await?;
                let token = copy(&fresh.token);
                *session.token.lock().expect("session token") = (fresh.token, fresh.version);
                call(token).await
            }
            other => other,
        };
        match result {
            Ok(value) => {
                let due = {
                    let mut touched = self.touched.lock().expect("touch map");
                    let due = touched
                        .get(&id)
                        .is_none_or(|at| at.elapsed() >= TOUCH_INTERVAL);
                    if due {
                        touched.insert(id, Instant::now());
                    }
                    due
                };
                if due {
                    self.store.touch_integration(workspace, id).await?;
                }
                Ok(value)
            }
            Err(GmailError::Rejected { status, reason }) if !record_refusals => {
                Err(VaultError::Rejected(format!("HTTP {status} {reason}")))
            }
            Err(error) => Err(self
                .gmail_failed(
                    workspace,
                    id,
                    session.integration.integration_type,
                    needs,
                    error,
                )
                .await),
        }
    }

    /// A mailbox call's failure (Gmail's, or Graph's in Gmail's terms):
    /// recorded on the connection in the provider's name.
    async fn gmail_failed(
        &self,
        workspace: WorkspaceId,
        id: IntegrationId,
        integration_type: domain::scopes::IntegrationType,
        needs: Capability,
        error: GmailError,
    ) -> VaultError {
        let provider = integration_type.provider_name();
        let api = match integration_type {
            domain::scopes::IntegrationType::Outlook => "Microsoft Graph",
            _ => "Gmail",
        };
        let record = |code: &'static str, message: String| async move {
            if let Err(error) = self
                .store
                .record_integration_error(workspace, id, code, &message)
                .await
            {
                tracing::error!(integration = %id, error = format!("{error:#}"), "cannot record a Gmail error");
            }
        };
        match error {
            GmailError::InsufficientPermissions => {
                let scope = integration_type.preferred_scope(needs);
                let message = format!(
                    "{provider} refused because Mailwright may not {} in this mailbox. Reconnect and allow it.",
                    needs.describe()
                );
                self.transition(
                    workspace,
                    id,
                    IntegrationStatus::MissingScopes,
                    &message,
                    Some(scope),
                )
                .await;
                VaultError::MissingScopes(vec![scope.to_owned()])
            }
            GmailError::Unauthorized => {
                record(
                    "provider_error",
                    format!("{provider} rejected a freshly refreshed access token."),
                )
                .await;
                VaultError::Rejected(format!("{api} rejected a freshly refreshed access token."))
            }
            GmailError::Unavailable {
                reason,
                retry_after,
            } => {
                record(
                    "provider_unavailable",
                    format!("{api} did not answer ({reason}); Mailwright will try again."),
                )
                .await;
                VaultError::Unavailable {
                    service: api,
                    reason,
                    retry_after,
                }
            }
            GmailError::NotFound => VaultError::Gone,
            GmailError::Rejected { status, reason } => {
                record(
                    "provider_error",
                    format!("{api} refused the request (HTTP {status}, {reason})."),
                )
                .await;
                VaultError::Rejected(format!(
                    "{api} refused the request (HTTP {status}, {reason})."
                ))
            }
        }
    }
}

impl Vault {
    /// Move the integration to a broken status; the one caller that makes
    /// the transition logs it and tells the owner (once per episode).
    pub(crate) async fn transition(
        &self,
        workspace: WorkspaceId,
        id: IntegrationId,
        status: IntegrationStatus,
        message: &str,
        missing_scope: Option<&str>,
    ) {
        let code = status.as_str();
        match self
            .store
            .set_integration_status(workspace, id, status, Some((code, message)), missing_scope)
            .await
        {
            Ok(Some(at)) => {
                tracing::warn!(integration = %id, event = %format!("integration_{code}"), "{message}");
                match self.store.integration(workspace, id).await {
                    Ok(integration) => {
                        self.events
                            .emit(
                                workspace,
                                domain::webhooks::EventType::IntegrationStatusChanged,
                                crate::webhooks::integration_status_data(&integration, Some(code)),
                            )
                            .await;
                        self.notifier
                            .integration_broke(&integration, status, at)
                            .await
                    }
                    Err(error) => {
                        tracing::error!(integration = %id, error = format!("{error:#}"), "cannot read the integration to notify")
                    }
                }
            }
            Ok(None) => {}
            Err(error) => {
                tracing::error!(integration = %id, error = format!("{error:#}"), "cannot record the status {code}")
            }
        }
    }
}

/// An integration that can be used now, and its decrypted access token.
pub(crate) struct GmailConnection {
    integration: Integration,
    token: SecretString,
    /// The token's version, to expire exactly this one if Google rejects it.
    version: i32,
}

/// A connection opened for the calls of one job ([`Vault::gmail_session`]):
/// its integration and token, read once; a refresh replaces the token.
pub struct GmailSession {
    integration: Integration,
    token: Mutex<(SecretString, i32)>,
}

impl GmailSession {
    pub fn integration(&self) -> &Integration {
        &self.integration
    }

    pub(crate) fn token(&self) -> (SecretString, i32) {
        let guard = self.token.lock().expect("session token");
        (copy(&guard.0), guard.1)
    }
}

impl std::fmt::Debug for GmailSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GmailSession")
            .field("integration", &self.integration.id)
            .finish_non_exhaustive()
    }
}

/// A second copy of a token, for a call that takes its own.
fn copy(token: &SecretString) -> SecretString {
    SecretString::from(token.expose_secret().to_owned())
}

enum Freshness {
    Fresh(GmailConnection),
    Stale(Box<Integration>, StoredTokens),
}

fn is_fresh(tokens: &StoredTokens) -> bool {
    tokens.expires_at > store::now() + REFRESH_MARGIN
}
