//! Connecting a Google account: the authorization URL (server-side state,
//! PKCE S256) and the callback (state checked and consumed, code exchanged,
//! account identified, integration and encrypted tokens written in ONE
//! transaction). Every failure is a code a UI can explain; nothing is left
//! half-written.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use domain::return_to::ReturnTo;
use domain::scopes::{IntegrationType, OPENID, ScopeSet, USERINFO_EMAIL};
use domain::{IntegrationId, UserId, WorkspaceId};
use rand::RngCore;
use secrecy::ExposeSecret;
use sha2::{Digest, Sha256};
use store::integrations::{Grant, Integration, OAuthState, StateLookup};
use store::{Store, StoreError};
use url::Url;

use crate::vault::{Vault, token_context};

/// How long a connection may take between leaving for Google and coming back.
pub const STATE_LIFETIME: chrono::Duration = chrono::Duration::minutes(10);

/// Why a callback did not connect anything. `code()` goes into the
/// `?error=` of the redirect, for the UI to explain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallbackError {
    /// The person clicked "Cancel" (or Google refused) on the consent screen.
    AccessDenied,
    /// Google reported another authorization error.
    AuthorizationFailed,
    /// The state is unknown, already used, or belongs to someone else.
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
    vault: Arc<Vault>,
    redirect_uri: String,
}

fn random_text(bytes: usize) -> String {
    let mut buffer = vec![0u8; bytes];
    rand::rngs::OsRng.fill_bytes(&mut buffer);
    URL_SAFE_NO_PAD.encode(buffer)
}

fn sha256_hex(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

impl Connections {
    pub fn new(store: Store, vault: Arc<Vault>, redirect_uri: String) -> Connections {
        Connections {
            store,
            vault,
            redirect_uri,
        }
    }

    pub fn redirect_uri(&self) -> &str {
        &self.redirect_uri
    }

    /// The Google consent URL for a new connection, or (with `reconnect`) one
    /// asking again for what an existing connection lacks.
    pub async fn authorization_url(
        &self,
        workspace: WorkspaceId,
        user: UserId,
        integration_type: IntegrationType,
        return_to: ReturnTo,
        reconnect: Option<&Integration>,
    ) -> Result<Url, ConnectError> {
        let google = self.vault.google().ok_or(ConnectError::NotConfigured)?;
        let scopes: Vec<String> = match reconnect {
            // Incremental authorization: ask for what is missing (and who
            // this is); Google adds the earlier grant.
            Some(existing) => {
                let mut scopes = existing
                    .granted_scopes
                    .missing_for(existing.integration_type);
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
        let state = random_text(32);
        let code_verifier = random_text(48);
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
                },
            )
            .await?;
        let scope_refs: Vec<&str> = scopes.iter().map(String::as_str).collect();
        Ok(google.authorization_url(
            &self.redirect_uri,
            &scope_refs,
            &state,
            &code_challenge,
            reconnect.map(|existing| existing.email.as_str()),
        ))
    }

    /// Finish a connection from Google's redirect. `signed_in` is the
    /// browser's session, if it has one: a state issued to someone else is
    /// refused.
    pub async fn complete(
        &self,
        params: CallbackParams,
        signed_in: Option<(UserId, WorkspaceId)>,
    ) -> Result<(Integration, ReturnTo), CallbackFailure> {
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
        if signed_in.is_some_and(|session| session != (state.user, state.workspace)) {
            tracing::warn!("OAuth callback with a state issued to another user or workspace");
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
        match self.connect(&state, code).await {
            Ok(integration) => Ok((integration, return_to)),
            Err(error) => Err(fail(error, &return_to)),
        }
    }

    async fn connect(&self, state: &OAuthState, code: &str) -> Result<Integration, CallbackError> {
        let google = self.vault.google().ok_or(CallbackError::NotConfigured)?;
        let tokens = google
            .exchange_code(code, &state.code_verifier, &self.redirect_uri)
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
        let granted = tokens
            .scope
            .as_deref()
            .map(ScopeSet::parse)
            .unwrap_or_else(|| ScopeSet::parse(&state.requested_scopes));
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
            };
            match self
                .store
                .save_connection(state.workspace, id, &grant)
                .await
            {
                Ok(integration) => {
                    tracing::info!(integration = %integration.id, status = integration.status.as_str(), "connected a Google account");
                    return Ok(integration);
                }
                Err(StoreError::Conflict(_)) => continue,
                Err(other) => return Err(internal(other)),
            }
        }
        Err(CallbackError::Internal)
    }

    /// Revoke at Google (best effort: a failure is logged, not fatal), then
    /// forget the tokens and mark the integration disconnected.
    pub async fn disconnect(
        &self,
        workspace: WorkspaceId,
        id: IntegrationId,
    ) -> Result<(), ConnectError> {
        let integration = self.store.integration(workspace, id).await?;
        if let (Some(google), Some(tokens)) =
            (self.vault.google(), self.store.tokens(workspace, id).await?)
        {
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
        Ok(())
    }
}

fn internal(error: StoreError) -> CallbackError {
    tracing::error!(error = format!("{error:#}"), "storing a connection failed");
    CallbackError::Internal
}

#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("Google is not configured on this server")]
    NotConfigured,
    #[error(transparent)]
    Store(#[from] StoreError),
}
