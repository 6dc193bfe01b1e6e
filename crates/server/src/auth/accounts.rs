//! Accounts and their credentials: local users (the CLI's `mailwright admin
//! ...`, the first-run setup page), API keys (the CLI, the API and the
//! settings page create, list and revoke them here), and who a caller is.

use domain::{EmailAddress, UserId, WorkspaceId};
use engine::error::ServiceError;
use secrecy::SecretString;
pub use store::api_keys::ApiKey;
use store::sessions::Session;
use store::tenancy::{Role, User, Workspace};
use store::{Store, StoreError};

use crate::auth::{passwords, secrets};

#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("an account with this email already exists")]
    EmailTaken,
    #[error("the password {0}")]
    WeakPassword(String),
    #[error("{0} workspaces are named `{1}`; give the workspace id instead")]
    AmbiguousWorkspace(usize, String),
    #[error("no workspace has the id or name `{0}`")]
    NoSuchWorkspace(String),
    #[error(transparent)]
    Password(#[from] passwords::PasswordError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

/// A user who signs in with email and password, in `workspace_name` (joined
/// if it exists, created with them as owner if not) or, without one, in a
/// personal workspace of their own.
pub async fn create_local_user(
    store: &Store,
    email: &EmailAddress,
    password: &str,
    workspace_name: Option<&str>,
) -> Result<(User, Workspace), AccountError> {
    if let Some(problem) = passwords::password_problem(password) {
        return Err(AccountError::WeakPassword(problem));
    }
    let hash = passwords::hash_password(password.to_owned()).await?;
    let user = match store
        .create_local_account(email.as_str(), &hash, None)
        .await
    {
        Err(StoreError::Conflict(_)) => return Err(AccountError::EmailTaken),
        other => other?,
    };
    let (workspace, role) = match workspace_name
        .map(str::trim)
        .filter(|name| !name.is_empty())
    {
        None => (store.personal_workspace(&user).await?, Role::Owner),
        Some(name) => {
            let mut named = store.workspaces_named(name).await?;
            match named.len() {
                0 => (store.create_workspace(name).await?, Role::Owner),
                1 => (named.remove(0), Role::Member),
                many => return Err(AccountError::AmbiguousWorkspace(many, name.to_owned())),
            }
        }
    };
    store.add_member(workspace.id, user.id, role).await?;
    Ok((user, workspace))
}

/// The installation's owner, from the first-run setup: a local account
/// owning a new workspace (`workspace_name`, or a personal one). Only while
/// no user exists: of concurrent setups exactly one succeeds, and the
/// others, like any later one, get `Ok(None)` and join nothing.
pub async fn create_first_owner(
    store: &Store,
    email: &EmailAddress,
    password: &str,
    workspace_name: Option<&str>,
) -> Result<Option<(User, Workspace)>, AccountError> {
    if let Some(problem) = passwords::password_problem(password) {
        return Err(AccountError::WeakPassword(problem));
    }
    if store.user_count().await? > 0 {
        return Ok(None);
    }
    let hash = passwords::hash_password(password.to_owned()).await?;
    let workspace_name = workspace_name
        .map(str::trim)
        .filter(|name| !name.is_empty());
    Ok(store
        .create_first_owner(email.as_str(), &hash, workspace_name)
        .await?)
}

/// A new API key of `workspace` acting as `user`. The secret is returned once
/// and never stored.
pub async fn issue_api_key(
    store: &Store,
    workspace: WorkspaceId,
    user: UserId,
    name: &str,
) -> Result<(ApiKey, SecretString), StoreError> {
    let secret = format!("mw_{}", secrets::random_token(32));
    let prefix: String = secret.chars().take(11).collect();
    let key = store
        .create_api_key(
            workspace,
            user,
            name,
            &prefix,
            &secrets::sha256_hex(&secret),
        )
        .await?;
    Ok((key, SecretString::from(secret)))
}

/// The workspace a CLI argument names: its id, or its (unique) name.
pub async fn find_workspace(store: &Store, id_or_name: &str) -> Result<Workspace, AccountError> {
    if let Ok(id) = WorkspaceId::parse(id_or_name) {
        match store.workspace(id).await {
            Ok(workspace) => return Ok(workspace),
            Err(StoreError::NotFound) => {}
            Err(other) => return Err(other.into()),
        }
    }
    let mut named = store.workspaces_named(id_or_name).await?;
    match named.len() {
        0 => Err(AccountError::NoSuchWorkspace(id_or_name.to_owned())),
        1 => Ok(named.remove(0)),
        many => Err(AccountError::AmbiguousWorkspace(
            many,
            id_or_name.to_owned(),
        )),
    }
}

/// Whom a key made from the command line acts as: the workspace's first
/// owner, or (a workspace with no owner yet) a service user made for it.
pub async fn cli_key_principal(
    store: &Store,
    workspace: WorkspaceId,
    key_name: &str,
) -> Result<UserId, StoreError> {
    if let Some(owner) = store.first_owner(workspace).await? {
        return Ok(owner);
    }
    let service = store
        .create_user(None, Some(&format!("API key \"{key_name}\"")))
        .await?;
    store
        .add_member(workspace, service.id, Role::Member)
        .await?;
    Ok(service.id)
}

/// Longest API key name, in characters.
const KEY_NAME_MAX_CHARS: usize = 100;

/// Accounts for the API and the pages: who someone is, their sessions and
/// the workspace's API keys. (The CLI, at startup, uses the functions
/// above with the store directly.)
pub struct Accounts {
    store: Store,
}

impl Accounts {
    pub fn new(store: Store) -> Accounts {
        Accounts { store }
    }

    /// Whether anyone has an account yet (before that, the UI offers setup).
    pub async fn has_users(&self) -> Result<bool, ServiceError> {
        Ok(self.store.user_count().await? > 0)
    }

    /// The first owner, made by the setup page: `None` once anyone exists.
    pub async fn create_first_owner(
        &self,
        email: &EmailAddress,
        password: &str,
        workspace_name: Option<&str>,
    ) -> Result<Option<(User, Workspace)>, AccountError> {
        create_first_owner(&self.store, email, password, workspace_name).await
    }

    /// The local account with this (lower-cased) address, and its password
    /// hash.
    pub async fn local_account(&self, email: &str) -> Result<Option<(User, String)>, ServiceError> {
        Ok(self.store.local_account(email).await?)
    }

    /// The workspace `user` lands in when signing in: their first, else
    /// their personal one (made now if need be).
    pub async fn sign_in_workspace(&self, user: &User) -> Result<WorkspaceId, ServiceError> {
        Ok(match self.store.first_workspace_of(user.id).await? {
            Some(workspace) => workspace,
            None => self.store.personal_workspace(user).await?.id,
        })
    }

    /// A new session of `user` in `workspace` for `days`: the cookie's token
    /// (stored only as its hash).
    pub async fn start_session(
        &self,
        user: UserId,
        workspace: WorkspaceId,
        days: i64,
    ) -> Result<String, ServiceError> {
        let token = secrets::random_token(32);
        let session = Session {
            user,
            workspace,
            csrf_token: secrets::random_token(24),
            expires_at: store::now() + chrono::Duration::days(days),
        };
        self.store
            .create_session(&secrets::sha256_hex(&token), &session)
            .await?;
        Ok(token)
    }

    /// Forget the session whose cookie holds `token`.
    pub async fn end_session(&self, token: &str) -> Result<(), ServiceError> {
        Ok(self
            .store
            .delete_session(&secrets::sha256_hex(token))
            .await?)
    }

    /// Check the name and issue a key of `workspace` acting as `user`.
    pub async fn create_key(
        &self,
        workspace: WorkspaceId,
        user: UserId,
        name: &str,
    ) -> Result<(ApiKey, SecretString), ServiceError> {
        let name = name.trim();
        if name.is_empty()
            || name.chars().count() > KEY_NAME_MAX_CHARS
            || name.chars().any(char::is_control)
        {
            return Err(ServiceError::invalid(
                "name",
                "must be 1 to 100 characters without control characters",
            ));
        }
        Ok(issue_api_key(&self.store, workspace, user, name).await?)
    }

    /// The workspace's API keys, newest first.
    pub async fn api_keys(&self, workspace: WorkspaceId) -> Result<Vec<ApiKey>, ServiceError> {
        Ok(self.store.api_keys(workspace).await?)
    }

    /// Revoke key `id` (a malformed id is just another id that is not there).
    pub async fn revoke_api_key(
        &self,
        workspace: WorkspaceId,
        id: &str,
    ) -> Result<(), ServiceError> {
        let id = uuid::Uuid::try_parse(id).map_err(|_| ServiceError::NotFound)?;
        Ok(self.store.revoke_api_key(workspace, id).await?)
    }

    /// `user` as a member of `workspace`, and the workspace.
    pub async fn member(
        &self,
        workspace: WorkspaceId,
        user: UserId,
    ) -> Result<(User, Workspace), ServiceError> {
        let member = self.store.member(workspace, user).await?;
        let workspace = self.store.workspace(workspace).await?;
        Ok((member, workspace))
    }
}
