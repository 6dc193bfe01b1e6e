//! Connecting a Google or Microsoft account: the authorization URL
//! (server-side state, PKCE S256) and the callback (state checked and
//! consumed, code exchanged, account identified, integration and encrypted
//! tokens written in ONE transaction). Every failure is a code a UI can
//! explain; nothing is left half-written. The provider is the state's
//! integration type's: one flow, two identity providers.
//!
//! Who may finish a connection (decision 0013): one started in the web UI
//! only in the same signed-in browser; one started by an API client at once
//! in a browser signed in as its starter, and otherwise only after the
//! person confirms, on a Mailwright page naming the workspace and the
//! address, that this mailbox goes to that workspace. Until then nothing is
//! stored: the exchanged grant travels, encrypted, in the page's form.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use domain::return_to::ReturnTo;
use domain::scopes::{
    Capability, IntegrationStatus, IntegrationType, OPENID, ScopeSet, TokenSource, USERINFO_EMAIL,
};
use domain::{IntegrationId, UserId, WorkspaceId};
use providers::google::oauth::{TokenResponse, UserInfo};
use secrecy::ExposeSecret;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use store::integrations::{Grant, OAuthState, StateLookup};
pub use store::integrations::{Integration, StartedBy};
use store::{Store, StoreError};
use url::Url;

mod clerk;

use crate::autodraft::AutoDraft;
use crate::error::ServiceError;
use crate::secrets::{random_token, sha256_hex};
use crate::vault::{Vault, token_context};

/// How long a connection may take between leaving for Google and coming back.
pub const STATE_LIFETIME: chrono::Duration = chrono::Duration::minutes(10);
/// How long a confirmation page's form stays good.
pub const CONFIRMATION_LIFETIME: chrono::Duration = chrono::Duration::minutes(10);
const CONFIRMATION_CONTEXT: &str = "connections:pending-confirmation";

/// Why a callback did not connect anything. `code()` goes into the
/// `?error=` of the redirect, for the UI to explain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallbackError {
    /// The person clicked "Cancel" (or Google refused) on the consent screen.
    AccessDenied,
    /// Google reported another authorization error.
    AuthorizationFailed,
    /// The state is unknown, already used, or belongs to someone else (or
    /// a connection started in the UI came back to another browser).
    StateInvalid,
    StateExpired,
    /// The callback lacks `code` or `state`.
    InvalidRequest,
    /// Google did not accept the code (or could not be reached).
    ExchangeFailed,
    /// Google gave no refresh token and none is stored: offline access impossible.
    MissingRefreshToken,
    /// The account could not be identified.
    UserinfoFailed,
    NotConfigured,
    Internal,
}

impl CallbackError {
    pub fn code(self) -> &'static str {
        match self {
            CallbackError::AccessDenied => "access_denied",
            CallbackError::AuthorizationFailed => "authorization_failed",
            CallbackError::StateInvalid => "state_invalid",
            CallbackError::StateExpired => "state_expired",
            CallbackError::InvalidRequest => "invalid_request",
            CallbackError::ExchangeFailed => "exchange_failed",
            CallbackError::MissingRefreshToken => "missing_refresh_token",
            CallbackError::UserinfoFailed => "userinfo_failed",
            CallbackError::NotConfigured => "not_configured",
            CallbackError::Internal => "internal",
        }
    }
}

/// A callback's failure and where to send the browser with it.
#[derive(Debug)]
pub struct CallbackFailure {
    pub error: CallbackError,
    pub return_to: ReturnTo,
}

/// What Google sent back to the callback, unparsed. `Debug` leaves out the
/// code and the state: both are credentials until used.
#[derive(Default)]
pub struct CallbackParams {
    pub code: Option<String>,
    pub state: Option<String>,
    pub error: Option<String>,
}

impl std::fmt::Debug for CallbackParams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallbackParams")
            .field("code", &self.code.as_ref().map(|_| "[redacted]"))
            .field("state", &self.state.as_ref().map(|_| "[redacted]"))
            .field("error", &self.error)
            .finish()
    }
}

pub struct Connections {
    store: Store,
    events: crate::webhooks::Events,
    vault: Arc<Vault>,
    /// Disconnecting stops the mailbox's push watch.
    autodraft: Arc<AutoDraft>,
    redirect_uris: RedirectUris,
}

/// Where each identity provider sends the browser back (registered with it).
#[derive(Debug, Clone)]
pub struct RedirectUris {
    pub google: String,
    pub microsoft: String,
}

impl RedirectUris {
    fn for_provider(&self, provider: &str) -> &str {
        match provider {
            "microsoft" => &self.microsoft,
            _ => &self.google,
        }
    }
}

impl Connections {
    pub fn new(
        store: Store,
        vault: Arc<Vault>,
        autodraft: Arc<AutoDraft>,
        redirect_uris: RedirectUris,
    ) -> Connections {
        Connections {
            events: crate::webhooks::Events::new(store.clone()),
            store,
            vault,
            autodraft,
            redirect_uris,
        }
    }

    /// Whether a workflow of the connection's workspace adds or removes
    /// labels through it.
    async fn has_label_steps(&self, integration: &Integration) -> Result<bool, StoreError> {
        let workflows = self.store.workflows(integration.workspace).await?;
        let id = integration.id.to_string();
        Ok(workflows.iter().any(|workflow| {
            serde_json::from_value::<Vec<domain::workflows::Step>>(workflow.steps.clone())
                .unwrap_or_default()
                .iter()
                .any(|step| step.action.is_label() && step.integration_id.as_deref() == Some(&id))
        }))
    }

    /// The Google or Microsoft consent URL for a new connection, or (with
    /// `reconnect`) one asking again for what an existing connection lacks.
    pub async fn authorization_url(
        &self,
        workspace: WorkspaceId,
        user: UserId,
        integration_type: IntegrationType,
        return_to: ReturnTo,
        reconnect: Option<&Integration>,
        started_by: StartedBy,
    ) -> Result<Url, ConnectError> {
        let provider = integration_type.provider();
        let client = match provider {
            "google" => self.vault.google().map(IdentityProvider::Google),
            "microsoft" => self.vault.microsoft().map(IdentityProvider::Microsoft),
            _ => return Err(ConnectError::ByPassword),
        }
        .ok_or(ConnectError::NotConfigured { provider })?;
        let scopes: Vec<String> = match reconnect {
            // Microsoft's consent is incremental by itself: asking for the
            // whole list shows only what was not consented yet.
            Some(_) if provider == "microsoft" => integration_type
                .requested_scopes()
                .into_iter()
                .map(str::to_owned)
                .collect(),
            // Incremental authorization: ask for what is missing (and who
            // this is); Google adds the earlier grant.
            Some(existing) => {
                let mut scopes = existing
                    .granted_scopes
                    .missing_for(existing.integration_type);
                // Label steps need more than a mailbox connection asks for
                // by default: ask for it when a workflow has one.
                if !existing.allows(Capability::Labels) && self.has_label_steps(existing).await? {
                    scopes.push(Capability::Labels.preferred_scope().to_owned());
                }
                for identity in [OPENID, USERINFO_EMAIL] {
                    if !scopes.iter().any(|scope| scope == identity) {
                        scopes.insert(0, identity.to_owned());
                    }
                }
                scopes
            }
            None => integration_type
                .requested_scopes()
                .into_iter()
                .map(str::to_owned)
                .collect(),
        };
        let state = random_token(32);
        let code_verifier = random_token(48);
        let code_challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(code_verifier.as_bytes()));
        self.store
            .create_oauth_state(
                &sha256_hex(&state),
                &OAuthState {
                    workspace,
                    user,
                    integration_type,
                    code_verifier,
                    requested_scopes: scopes.join(" "),
                    return_to: return_to.as_str().to_owned(),
                    expires_at: store::now() + STATE_LIFETIME,
                    started_by,
                },
            )
            .await?;
        let scope_refs: Vec<&str> = scopes.iter().map(String::as_str).collect();
        let redirect_uri = self.redirect_uris.for_provider(provider);
        let login_hint = reconnect.map(|existing| existing.email.as_str());
        Ok(match client {
            IdentityProvider::Google(google) => google.authorization_url(
                redirect_uri,
                &scope_refs,
                &state,
                &code_challenge,
                login_hint,
            ),
            IdentityProvider::Microsoft(microsoft) => microsoft.authorization_url(
                redirect_uri,
                &scope_refs,
                &state,
                &code_challenge,
                login_hint,
            ),
        })
    }

    /// Finish a connection from the redirect to `provider`'s callback.
    /// `signed_in` is the browser's session, if it has one: a state issued
    /// to someone else is refused, and one started in the UI needs its
    /// starter's session. A state issued for another provider is refused.
    pub async fn complete(
        &self,
        provider: &str,
        params: CallbackParams,
        signed_in: Option<(UserId, WorkspaceId)>,
    ) -> Result<Completed, CallbackFailure> {
        let fail = |error: CallbackError, return_to: &ReturnTo| CallbackFailure {
            error,
            return_to: return_to.clone(),
        };
        let unknown_return = ReturnTo::default();
        let Some(state_value) = params
            .state
            .as_deref()
            .filter(|state| !state.is_empty() && state.len() <= 256)
        else {
            return Err(fail(CallbackError::InvalidRequest, &unknown_return));
        };
        let lookup = self
            .store
            .consume_oauth_state(&sha256_hex(state_value))
            .await
            .map_err(|error| {
                tracing::error!(error = format!("{error:#}"), "cannot look up OAuth state");
                fail(CallbackError::Internal, &unknown_return)
            })?;
        let state = match lookup {
            StateLookup::Fresh(state) => state,
            StateLookup::Expired(state) => {
                let return_to = ReturnTo::parse(&state.return_to).unwrap_or_default();
                return Err(fail(CallbackError::StateExpired, &return_to));
            }
            StateLookup::AlreadyUsed | StateLookup::Unknown => {
                return Err(fail(CallbackError::StateInvalid, &unknown_return));
            }
        };
        let return_to = ReturnTo::parse(&state.return_to).unwrap_or_default();
        if state.integration_type.provider() != provider {
            tracing::warn!("an OAuth callback with a state issued for another provider");
            return Err(fail(CallbackError::StateInvalid, &return_to));
        }
        let starter_signed_in = signed_in == Some((state.user, state.workspace));
        if signed_in.is_some() && !starter_signed_in {
            tracing::warn!("OAuth callback with a state issued to another user or workspace");
            return Err(fail(CallbackError::StateInvalid, &return_to));
        }
        if state.started_by == StartedBy::Session && !starter_signed_in {
            tracing::warn!(
                "a connection started in the web UI came back to a browser without its session"
            );
            return Err(fail(CallbackError::StateInvalid, &return_to));
        }
        if let Some(error) = params.error.as_deref() {
            let error = if error == "access_denied" {
                CallbackError::AccessDenied
            } else {
                CallbackError::AuthorizationFailed
            };
            return Err(fail(error, &return_to));
        }
        let Some(code) = params.code.as_deref().filter(|code| !code.is_empty()) else {
            return Err(fail(CallbackError::InvalidRequest, &return_to));
        };
        let exchanged = match self.exchange(&state, code).await {
            Ok(exchanged) => exchanged,
            Err(error) => return Err(fail(error, &return_to)),
        };
        if !starter_signed_in {
            return self
                .pending(&state, exchanged, return_to.clone())
                .await
                .map(Completed::NeedsConfirmation)
                .map_err(|error| fail(error, &return_to));
        }
        match self.save(&state, exchanged).await {
            Ok(integration) => Ok(Completed::Connected {
                integration: Box::new(integration),
                return_to,
            }),
            Err(error) => Err(fail(error, &return_to)),
        }
    }

    /// The person's answer on the confirmation page: `accept` stores the
    /// connection the form carries; otherwise nothing is stored.
    pub async fn confirm(
        &self,
        confirmation: &str,
        accept: bool,
    ) -> Result<(Integration, ReturnTo), CallbackFailure> {
        let invalid = CallbackFailure {
            error: CallbackError::StateInvalid,
            return_to: ReturnTo::default(),
        };
        let Some(pending) = self.open_confirmation(confirmation) else {
            return Err(invalid);
        };
        let return_to = ReturnTo::parse(&pending.return_to).unwrap_or_default();
        let fail = |error: CallbackError| CallbackFailure {
            error,
            return_to: return_to.clone(),
        };
        if pending.valid_until <= store::now() {
            return Err(fail(CallbackError::StateExpired));
        }
        let Some(integration_type) = IntegrationType::parse(&pending.integration_type) else {
            return Err(fail(CallbackError::StateInvalid));
        };
        if !accept {
            // The person said no: give the grant back to Google too (best
            // effort), so it does not linger in their account's app list.
            // Microsoft has no endpoint that revokes one grant.
            if let Some(google) = self
                .vault
                .google()
                .filter(|_| integration_type.provider() == "google")
            {
                let token = SecretString::from(
                    pending
                        .refresh_token
                        .clone()
                        .unwrap_or_else(|| pending.access_token.clone()),
                );
                if let Err(error) = google.revoke(&token).await {
                    tracing::warn!(error = %error, "revoking a declined connection's grant failed");
                }
            }
            return Err(fail(CallbackError::AccessDenied));
        }
        let state = OAuthState {
            workspace: WorkspaceId::from_uuid(pending.workspace),
            user: UserId::from_uuid(pending.user),
            integration_type,
            code_verifier: String::new(),
            requested_scopes: pending.requested_scopes.clone(),
            return_to: pending.return_to.clone(),
            expires_at: pending.valid_until,
            started_by: StartedBy::Api,
        };
        let exchanged = Exchanged {
            tokens: TokenResponse {
                access_token: SecretString::from(pending.access_token),
                refresh_token: pending.refresh_token.map(SecretString::from),
                expires_in: std::time::Duration::from_secs(pending.token_expires_in_seconds),
                scope: pending.scope,
            },
            account: UserInfo {
                sub: pending.account_id,
                email: Some(pending.email.clone()),
                name: pending.display_name,
            },
            email: pending.email,
        };
        let integration = self.save(&state, exchanged).await.map_err(fail)?;
        Ok((integration, return_to))
    }

    /// The grant, sealed into a form field for the confirmation page.
    async fn pending(
        &self,
        state: &OAuthState,
        exchanged: Exchanged,
        return_to: ReturnTo,
    ) -> Result<PendingConnection, CallbackError> {
        let workspace = self
            .store
            .workspace(state.workspace)
            .await
            .map_err(internal)?;
        let requested_by = self
            .store
            .user(state.user)
            .await
            .ok()
            .and_then(|user| user.email);
        let carried = PendingGrant {
            workspace: state.workspace.as_uuid(),
            user: state.user.as_uuid(),
            integration_type: state.integration_type.as_str().to_owned(),
            requested_scopes: state.requested_scopes.clone(),
            return_to: return_to.as_str().to_owned(),
            valid_until: store::now() + CONFIRMATION_LIFETIME,
            access_token: exchanged.tokens.access_token.expose_secret().to_owned(),
            refresh_token: exchanged
                .tokens
                .refresh_token
                .as_ref()
                .map(|token| token.expose_secret().to_owned()),
            token_expires_in_seconds: exchanged.tokens.expires_in.as_secs(),
            scope: exchanged.tokens.scope.clone(),
            account_id: exchanged.account.sub.clone(),
            email: exchanged.email.clone(),
            display_name: exchanged.account.name.clone(),
        };
        let plaintext = serde_json::to_vec(&carried).map_err(|error| {
            tracing::error!(error = %error, "cannot write a pending connection");
            CallbackError::Internal
        })?;
        let sealed = self.vault.keyring().seal(&plaintext, CONFIRMATION_CONTEXT);
        Ok(PendingConnection {
            workspace_name: workspace.name,
            requested_by,
            email: exchanged.email,
            integration_type: state.integration_type,
            confirmation: format!(
                "{}.{}",
                sealed.key_id,
                URL_SAFE_NO_PAD.encode(&sealed.bytes)
            ),
        })
    }

    fn open_confirmation(&self, confirmation: &str) -> Option<PendingGrant> {
        let (key_id, bytes) = confirmation.split_once('.')?;
        let sealed = crate::keyring::Sealed {
            key_id: key_id.to_owned(),
            bytes: URL_SAFE_NO_PAD.decode(bytes).ok()?,
        };
        let plaintext = self
            .vault
            .keyring()
            .open(&sealed, CONFIRMATION_CONTEXT)
            .ok()?;
        serde_json::from_slice(&plaintext).ok()
    }

    /// The code exchanged for tokens, and the account they are for.
    async fn exchange(&self, state: &OAuthState, code: &str) -> Result<Exchanged, CallbackError> {
        if state.integration_type.provider() == "microsoft" {
            return self.exchange_with_microsoft(state, code).await;
        }
        let google = self.vault.google().ok_or(CallbackError::NotConfigured)?;
        let tokens = google
            .exchange_code(code, &state.code_verifier, &self.redirect_uris.google)
            .await
            .map_err(|error| {
                tracing::warn!(error = %error, "the authorization code exchange failed");
                CallbackError::ExchangeFailed
            })?;
        let account = google
            .userinfo(&tokens.access_token)
            .await
            .map_err(|error| {
                tracing::warn!(error = %error, "userinfo failed after the code exchange");
                CallbackError::UserinfoFailed
            })?;
        let Some(email) = account.email.clone() else {
            tracing::warn!("Google's userinfo has no email: the email scope was not granted");
            return Err(CallbackError::UserinfoFailed);
        };
        Ok(Exchanged {
            tokens,
            account,
            email,
        })
    }

    /// Microsoft's exchange: the token answer names the granted scopes, and
    /// Graph's `/me` the account (its object id, which outlives a change of
    /// address).
    async fn exchange_with_microsoft(
        &self,
        state: &OAuthState,
        code: &str,
    ) -> Result<Exchanged, CallbackError> {
        let microsoft = self.vault.microsoft().ok_or(CallbackError::NotConfigured)?;
        let scopes: Vec<&str> = state.requested_scopes.split_whitespace().collect();
        let tokens = microsoft
            .exchange_code(
                code,
                &state.code_verifier,
                &self.redirect_uris.microsoft,
                &scopes,
            )
            .await
            .map_err(|error| {
                tracing::warn!(error = %error, "the authorization code exchange with Microsoft failed");
                CallbackError::ExchangeFailed
            })?;
        let user = microsoft.me(&tokens.access_token).await.map_err(|error| {
            tracing::warn!(error = %error, "Graph's /me failed after the code exchange");
            CallbackError::UserinfoFailed
        })?;
        let Some(email) = user.email.clone() else {
            tracing::warn!("Graph's /me names no address for the account");
            return Err(CallbackError::UserinfoFailed);
        };
        Ok(Exchanged {
            tokens,
            account: UserInfo {
                sub: user.id,
                email: user.email,
                name: user.display_name,
            },
            email,
        })
    }

    /// Store the grant ([`Connections::store_grant`]), announce the
    /// connection's status, and resume the sync its workflows wait on.
    async fn save(
        &self,
        state: &OAuthState,
        exchanged: Exchanged,
    ) -> Result<Integration, CallbackError> {
        let integration = self.store_grant(state, exchanged).await?;
        if integration.status == IntegrationStatus::Connected {
            self.autodraft.resume_workflow_sync(&integration).await;
        }
        self.events
            .emit(
                integration.workspace,
                domain::webhooks::EventType::IntegrationStatusChanged,
                crate::webhooks::integration_status_data(&integration, None),
            )
            .await;
        Ok(integration)
    }

    async fn store_grant(
        &self,
        state: &OAuthState,
        exchanged: Exchanged,
    ) -> Result<Integration, CallbackError> {
        let Exchanged {
            tokens,
            account,
            email,
        } = exchanged;
        let granted = state.integration_type.parse_scopes(
            tokens
                .scope
                .as_deref()
                .unwrap_or(state.requested_scopes.as_str()),
        );
        let keyring = self.vault.keyring();
        // A concurrent connect of the same account can create the row first;
        // then start over with its id (the ciphertexts are bound to the id).
        for _ in 0..3 {
            let existing = self
                .store
                .integration_id_for_account(state.workspace, state.integration_type, &account.sub)
                .await
                .map_err(internal)?;
            // Offline access needs a refresh token: Google's (new) one, or the
            // one still stored for this account (a disconnect deletes it).
            let stored_refresh = match existing {
                Some(id) => self
                    .store
                    .tokens(state.workspace, id)
                    .await
                    .map_err(internal)?
                    .and_then(|tokens| tokens.refresh_token),
                None => None,
            };
            if tokens.refresh_token.is_none() && stored_refresh.is_none() {
                return Err(CallbackError::MissingRefreshToken);
            }
            let id = existing.unwrap_or_else(IntegrationId::new);
            let grant = Grant {
                user: state.user,
                integration_type: state.integration_type,
                provider_account_id: account.sub.clone(),
                email: email.clone(),
                display_name: account.name.clone(),
                granted_scopes: granted.clone(),
                access_token: keyring.seal(
                    tokens.access_token.expose_secret().as_bytes(),
                    &token_context(id, "access"),
                ),
                refresh_token: tokens.refresh_token.as_ref().map(|token| {
                    keyring.seal(
                        token.expose_secret().as_bytes(),
                        &token_context(id, "refresh"),
                    )
                }),
                expires_at: store::now()
                    + chrono::Duration::from_std(tokens.expires_in)
                        .unwrap_or(chrono::Duration::hours(1)),
                token_source: TokenSource::Mailwright,
            };
            match self
                .store
                .save_connection(state.workspace, id, &grant)
                .await
            {
                Ok(integration) => {
                    tracing::info!(integration = %integration.id, provider = state.integration_type.provider(), status = integration.status.as_str(), "connected an account");
                    return Ok(integration);
                }
                Err(StoreError::Conflict(_)) => continue,
                Err(other) => return Err(internal(other)),
            }
        }
        Err(CallbackError::Internal)
    }

    /// How many connections, across all workspaces, are in each status
    /// (every status listed, zero included): for `/metrics`.
    pub async fn counts_by_status(&self) -> Result<Vec<(IntegrationStatus, i64)>, ServiceError> {
        let counts = self.store.integration_counts().await?;
        Ok([
            IntegrationStatus::Connected,
            IntegrationStatus::MissingScopes,
            IntegrationStatus::NeedsReauth,
            IntegrationStatus::Disconnected,
        ]
        .into_iter()
        .map(|status| {
            let count = counts
                .iter()
                .find(|(name, _)| name == status.as_str())
                .map_or(0, |(_, count)| *count);
            (status, count)
        })
        .collect())
    }

    /// The workspace's connections, newest first.
    pub async fn list(&self, workspace: WorkspaceId) -> Result<Vec<Integration>, ServiceError> {
        Ok(self.store.integrations(workspace).await?)
    }

    pub async fn get(
        &self,
        workspace: WorkspaceId,
        id: IntegrationId,
    ) -> Result<Integration, ServiceError> {
        Ok(self.store.integration(workspace, id).await?)
    }

    /// `user`'s most recent connection of `integration_type`, if any.
    pub async fn latest(
        &self,
        workspace: WorkspaceId,
        user: UserId,
        integration_type: IntegrationType,
    ) -> Result<Option<Integration>, ServiceError> {
        Ok(self
            .store
            .latest_integration(workspace, user, integration_type)
            .await?)
    }

    /// The consent URL that repairs connection `id`: a broken or
    /// disconnected grant is asked for again in full, a partial one only for
    /// what it lacks.
    pub async fn reconnect_url(
        &self,
        workspace: WorkspaceId,
        user: UserId,
        id: IntegrationId,
        return_to: ReturnTo,
        started_by: StartedBy,
    ) -> Result<Reconnect, ConnectError> {
        let integration = self.store.integration(workspace, id).await?;
        if integration.integration_type.provider() == "imap" {
            return Ok(Reconnect::WithPassword);
        }
        if let TokenSource::Clerk { user_id } = &integration.token_source {
            return Ok(self.reconnect_with_clerk(&integration, user_id).await);
        }
        // Connected, but a label step needs more than was granted: ask for
        // it on top of the grant.
        let needs_labels =
            !integration.allows(Capability::Labels) && self.has_label_steps(&integration).await?;
        let incremental = integration.status == IntegrationStatus::MissingScopes || needs_labels;
        self.authorization_url(
            workspace,
            user,
            integration.integration_type,
            return_to,
            incremental.then_some(&integration),
            started_by,
        )
        .await
        .map(Reconnect::Consent)
    }

    /// Stop the mailbox's push watch and revoke at Google (both best
    /// effort: a failure is logged, not fatal), then forget the tokens and
    /// mark the integration disconnected. Microsoft has no endpoint that
    /// revokes one app's grant: its tokens are only deleted (the person
    /// removes the app's consent in their Microsoft account, as the
    /// connections page says).
    pub async fn disconnect(
        &self,
        workspace: WorkspaceId,
        id: IntegrationId,
    ) -> Result<(), ConnectError> {
        let integration = self.store.integration(workspace, id).await?;
        // While the token still works.
        self.autodraft.stop_watch(&integration).await;
        // A grant Clerk holds is Clerk's (the person signs in with it):
        // revoking it would break their sign-in, so it is only forgotten.
        // An IMAP password has nobody to revoke it: it is only deleted.
        let revocable = integration.token_source == TokenSource::Mailwright
            && integration.integration_type.provider() == "google";
        if let (true, Some(google), Some(tokens)) = (
            revocable,
            self.vault.google(),
            self.store.tokens(workspace, id).await?,
        ) {
            let keyring = self.vault.keyring();
            let token = match &tokens.refresh_token {
                Some(sealed) => keyring.open_secret(sealed, &token_context(id, "refresh")),
                None => keyring.open_secret(&tokens.access_token, &token_context(id, "access")),
            };
            match token {
                Ok(token) => {
                    if let Err(error) = google.revoke(&token).await {
                        tracing::warn!(integration = %integration.id, error = %error, "revoking at Google failed; deleting the tokens anyway");
                    }
                }
                Err(error) => {
                    tracing::warn!(integration = %integration.id, error = %error, "cannot decrypt the token to revoke it")
                }
            }
        }
        self.store.disconnect_integration(workspace, id).await?;
        if let Ok(integration) = self.store.integration(workspace, id).await {
            self.events
                .emit(
                    workspace,
                    domain::webhooks::EventType::IntegrationStatusChanged,
                    crate::webhooks::integration_status_data(&integration, None),
                )
                .await;
        }
        Ok(())
    }
}

/// What a callback ends with.
#[derive(Debug)]
pub enum Completed {
    Connected {
        integration: Box<Integration>,
        return_to: ReturnTo,
    },
    /// Started by an API client and finished in a browser not signed in as
    /// its starter: the person confirms on a Mailwright page first.
    NeedsConfirmation(PendingConnection),
}

/// What the confirmation page shows, and the form field that carries the
/// (encrypted) grant.
pub struct PendingConnection {
    pub workspace_name: String,
    /// The address of the account that started the connection, if known.
    pub requested_by: Option<String>,
    /// The mailbox being connected.
    pub email: String,
    pub integration_type: IntegrationType,
    pub confirmation: String,
}

impl std::fmt::Debug for PendingConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingConnection")
            .field("workspace_name", &self.workspace_name)
            .field("email", &self.email)
            .field("confirmation", &"[redacted]")
            .finish()
    }
}

/// A code exchanged: the provider's tokens and the account.
struct Exchanged {
    tokens: TokenResponse,
    account: UserInfo,
    email: String,
}

/// What the confirmation form carries, sealed with the token keyring.
#[derive(Serialize, Deserialize)]
struct PendingGrant {
    workspace: uuid::Uuid,
    user: uuid::Uuid,
    integration_type: String,
    requested_scopes: String,
    return_to: String,
    valid_until: chrono::DateTime<chrono::Utc>,
    access_token: String,
    refresh_token: Option<String>,
    token_expires_in_seconds: u64,
    scope: Option<String>,
    account_id: String,
    email: String,
    display_name: Option<String>,
}

fn internal(error: StoreError) -> CallbackError {
    tracing::error!(error = format!("{error:#}"), "storing a connection failed");
    CallbackError::Internal
}

/// Where repairing a connection leads.
#[derive(Debug)]
pub enum Reconnect {
    /// Google's consent screen.
    Consent(Url),
    /// Clerk holds a usable token again: the connection is repaired.
    Repaired(Box<Integration>),
    /// Clerk holds no token with the scopes needed: the person re-authorises
    /// Google in the app they sign in to through Clerk, then tries again.
    InClerk,
    /// A mailbox connected by password: the person gives the current
    /// password (the connections page, its servers filled in).
    WithPassword,
}

/// The identity provider a connection goes through.
enum IdentityProvider<'a> {
    Google(&'a providers::google::oauth::GoogleOAuth),
    Microsoft(&'a providers::microsoft::identity::MicrosoftOAuth),
}

#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// `provider` (`google`, `microsoft`) has no OAuth client on this server.
    #[error("{provider} is not configured on this server")]
    NotConfigured { provider: &'static str },
    /// A mailbox connected by password is (re)connected with its password,
    /// never through an identity provider.
    #[error("connected by password, not through an identity provider")]
    ByPassword,
    #[error(transparent)]
    Store(#[from] StoreError),
}
