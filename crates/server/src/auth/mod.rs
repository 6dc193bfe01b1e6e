//! Who is calling: one path for every credential.
//!
//! `Authorization: Bearer mw_...` is a workspace API key; any other bearer
//! token is a JWT verified against the configured JWKS; without an
//! `Authorization` header, the UI's session cookie. Each failure is a 401
//! that says which check failed (never echoing the credential); a known
//! caller who may not do something gets 403.

pub mod accounts;
pub mod cookies;
pub mod jwt;
pub mod passwords;
pub mod push;
pub use engine::secrets;
pub mod throttle;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{Method, header};
use domain::{UserId, WorkspaceId};
use engine::contacts::Contacts;
use store::Store;
use store::tenancy::Role;

use crate::app::AppState;
use crate::http::ApiError;
use jwt::{JwtError, JwtIdentity, JwtVerifier};

pub const CSRF_HEADER: &str = "x-csrf-token";
/// `last_used_at` of an API key is written at most this often (a write per
/// request would serialise every request on SQLite).
const API_KEY_TOUCH_INTERVAL: chrono::Duration = chrono::Duration::seconds(60);
/// How long a JWT identity's user and workspace ids are remembered, so
/// repeated requests do not look them up (or re-create them) every time.
const IDENTITY_CACHE_TTL: Duration = Duration::from_secs(300);
const IDENTITY_CACHE_CAPACITY: usize = 10_000;

/// An authenticated caller, and the workspace every query of theirs is scoped to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthUser {
    pub user: UserId,
    pub workspace: WorkspaceId,
    pub method: AuthMethod,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthMethod {
    /// A bearer JWT; `subject` is its `sub` (with Clerk, the Clerk user id).
    Jwt {
        subject: String,
    },
    ApiKey,
    Session,
}

/// A caller who may be signed out (for pages that work either way). A bad or
/// expired session is the same as none.
#[derive(Debug, Clone)]
pub struct MaybeAuthUser(pub Option<SessionUser>);

/// Someone signed in to the UI, with the CSRF token their forms must carry.
#[derive(Debug, Clone)]
pub struct SessionUser {
    pub user: UserId,
    pub workspace: WorkspaceId,
    pub csrf_token: String,
}

type IdentityKey = (String, String, Option<String>);

pub struct Authenticator {
    store: Store,
    contacts: Arc<Contacts>,
    jwt: Option<JwtVerifier>,
    identities: Mutex<HashMap<IdentityKey, (UserId, WorkspaceId, Instant)>>,
}

fn unauthorized(reason: &'static str, detail: impl Into<String>) -> ApiError {
    ApiError::Unauthorized {
        reason,
        detail: detail.into(),
    }
}

impl Authenticator {
    pub fn new(store: Store, jwt: Option<JwtVerifier>, contacts: Arc<Contacts>) -> Authenticator {
        Authenticator {
            store,
            contacts,
            jwt,
            identities: Mutex::new(HashMap::new()),
        }
    }

    pub async fn authenticate(&self, parts: &Parts) -> Result<AuthUser, ApiError> {
        if let Some(value) = parts.headers.get(header::AUTHORIZATION) {
            let token = value
                .to_str()
                .ok()
                .and_then(|text| {
                    text.strip_prefix("Bearer ")
                        .or_else(|| text.strip_prefix("bearer "))
                })
                .map(str::trim)
                .filter(|token| !token.is_empty())
                .ok_or_else(|| {
                    unauthorized(
                        "malformed_authorization",
                        "The Authorization header must be `Bearer <API key or JWT>`.",
                    )
                })?;
            return if token.starts_with("mw_") {
                self.api_key(token).await
            } else {
                self.jwt(token).await
            };
        }
        if let Some(session) = self.session(parts).await? {
            let safe = matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS);
            let sent = parts
                .headers
                .get(CSRF_HEADER)
                .map(|value| value.as_bytes())
                .unwrap_or_default();
            if !safe && !secrets::constant_time_eq(sent, session.csrf_token.as_bytes()) {
                return Err(ApiError::Forbidden(
                    "Requests signed in with the session cookie must send the session's X-CSRF-Token header.".into(),
                ));
            }
            return Ok(AuthUser {
                user: session.user,
                workspace: session.workspace,
                method: AuthMethod::Session,
            });
        }
        if cookies::get(&parts.headers, cookies::SESSION).is_some() {
            return Err(unauthorized(
                "session_expired",
                "Your session has expired or you signed out; sign in again.",
            ));
        }
        Err(unauthorized(
            "missing_credentials",
            "Sign in, or send `Authorization: Bearer <API key or JWT>`.",
        ))
    }

    /// The signed-in UI session, if the request carries a valid one.
    pub async fn session(&self, parts: &Parts) -> Result<Option<SessionUser>, ApiError> {
        let Some(token) = cookies::get(&parts.headers, cookies::SESSION) else {
            return Ok(None);
        };
        let session = self.store.session(&secrets::sha256_hex(&token)).await?;
        Ok(session.map(|session| SessionUser {
            user: session.user,
            workspace: session.workspace,
            csrf_token: session.csrf_token,
        }))
    }

    async fn api_key(&self, token: &str) -> Result<AuthUser, ApiError> {
        let key = self
            .store
            .api_key_by_secret_hash(&secrets::sha256_hex(token))
            .await?
            .ok_or_else(|| unauthorized("unknown_api_key", "This API key is not known."))?;
        if key.revoked_at.is_some() {
            return Err(unauthorized(
                "revoked_api_key",
                "This API key has been revoked; create a new one.",
            ));
        }
        let now = store::now();
        if key
            .last_used_at
            .is_none_or(|used| now - used > API_KEY_TOUCH_INTERVAL)
            && let Err(error) = self.store.touch_api_key(key.workspace, key.id, now).await
        {
            // Bookkeeping only: the request itself is fine.
            tracing::warn!(error = format!("{error:#}"), "cannot record API key use");
        }
        Ok(AuthUser {
            user: key.user,
            workspace: key.workspace,
            method: AuthMethod::ApiKey,
        })
    }

    async fn jwt(&self, token: &str) -> Result<AuthUser, ApiError> {
        let verifier = self.jwt.as_ref().ok_or_else(|| {
            unauthorized(
                "jwt_not_configured",
                "This server does not accept JWTs (MAILWRIGHT_AUTH_JWKS_URL is not set); use an API key.",
            )
        })?;
        let identity = verifier.verify(token).await.map_err(|error| match error {
            JwtError::KeysUnavailable => ApiError::ProviderUnavailable(
                "The identity provider's signing keys cannot be fetched right now; try again shortly.".into(),
            ),
            other => unauthorized(other.reason(), other.to_string()),
        })?;
        let subject = identity.subject.clone();
        let (user, workspace) = self.user_and_workspace(identity).await?;
        Ok(AuthUser {
            user,
            workspace,
            method: AuthMethod::Jwt { subject },
        })
    }

    /// The user and workspace a token names, created on first sight: one
    /// `sub` with two workspace claims is one user in two workspaces.
    async fn user_and_workspace(
        &self,
        identity: JwtIdentity,
    ) -> Result<(UserId, WorkspaceId), ApiError> {
        let key = (
            identity.issuer.clone(),
            identity.subject.clone(),
            identity.workspace.clone(),
        );
        if let Some((user, workspace, at)) = self
            .identities
            .lock()
            .expect("identity cache lock")
            .get(&key)
            && at.elapsed() < IDENTITY_CACHE_TTL
        {
            return Ok((*user, *workspace));
        }
        let (user, changed) = self
            .store
            .user_for_external_identity(
                &identity.issuer,
                &identity.subject,
                identity.email.as_deref(),
            )
            .await?;
        if changed {
            self.contacts.user_changed(user.id).await;
        }
        let (workspace, role) = match &identity.workspace {
            Some(external_id) => (
                self.store.workspace_for_external_id(external_id).await?,
                Role::Member,
            ),
            None => (self.store.personal_workspace(&user).await?, Role::Owner),
        };
        self.store.add_member(workspace.id, user.id, role).await?;
        let mut cache = self.identities.lock().expect("identity cache lock");
        if cache.len() >= IDENTITY_CACHE_CAPACITY {
            cache.clear();
        }
        cache.insert(key, (user.id, workspace.id, Instant::now()));
        Ok((user.id, workspace.id))
    }
}

impl FromRequestParts<AppState> for AuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        state.auth.authenticate(parts).await
    }
}

impl FromRequestParts<AppState> for MaybeAuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        Ok(MaybeAuthUser(state.auth.session(parts).await?))
    }
}

/// The store's errors as the API answers them (authentication and startup
/// are the parts of `server` that use the store directly).
impl From<store::StoreError> for ApiError {
    fn from(error: store::StoreError) -> Self {
        engine::error::ServiceError::from(error).into()
    }
}
