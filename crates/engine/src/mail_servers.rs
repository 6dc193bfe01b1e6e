//! Mailboxes connected by password (IMAP and SMTP): connecting one (both
//! servers tried before anything is stored; the password sealed and written
//! with the servers in one transaction), opening one for a job, and a
//! refused password turning the connection `needs_reauth` with one notice,
//! like a revoked Google grant.

use domain::email::EmailAddress;
use domain::mail_server::ServerEndpoint;
use domain::scopes::{IntegrationStatus, IntegrationType, ScopeSet, TokenSource};
use domain::{IntegrationId, UserId, WorkspaceId};
use providers::imap::{self, ConnectError, ImapError, ImapSession, ServerAccount};
use secrecy::{ExposeSecret, SecretString};
use store::StoreError;
use store::integrations::{Grant, Integration, MailServers, password_never_expires};

use crate::vault::{Vault, VaultError, token_context};

/// What a person gives to connect a mailbox by password, parsed.
pub struct MailServerConnect {
    pub user: UserId,
    pub email: EmailAddress,
    pub imap: ServerEndpoint,
    pub smtp: ServerEndpoint,
    pub username: String,
    pub password: SecretString,
}

/// Why connecting failed: the servers' answer, or Mailwright's own trouble.
#[derive(Debug, thiserror::Error)]
pub enum MailServerConnectError {
    #[error(transparent)]
    Servers(#[from] ConnectError),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Too many connects are being tried at once on this server.
    #[error("too many mailboxes are being connected right now")]
    Busy,
    /// The workspace tried more connects than [`CONNECTS_PER_WINDOW`]
    /// lately (each makes outbound connections, and the answers tell a
    /// password or a port apart).
    #[error("too many connects from this workspace lately")]
    TooOften,
}

/// Connects one workspace may try per [`CONNECT_WINDOW`].
pub const CONNECTS_PER_WINDOW: usize = 20;
pub const CONNECT_WINDOW: std::time::Duration = std::time::Duration::from_secs(600);

/// Connects tried at once per process: each may hold two outbound
/// connections for up to a minute, and a tenant chooses where they go.
pub const CONCURRENT_CONNECTS: usize = 8;
/// How long a connect waits for its turn before it is refused as busy.
const CONNECT_QUEUE_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// The one account key of a mailbox connected by password: reconnecting
/// the same login on the same server updates its connection.
fn account_key(imap: &ServerEndpoint, username: &str) -> String {
    format!("{imap}/{username}")
}

impl Vault {
    /// Try both servers with the login and, if they accept it, store the
    /// connection (or update the one this login already has).
    pub async fn connect_mail_server(
        &self,
        workspace: WorkspaceId,
        request: MailServerConnect,
    ) -> Result<Integration, MailServerConnectError> {
        let account = ServerAccount {
            imap: request.imap.clone(),
            smtp: request.smtp.clone(),
            username: request.username.clone(),
            password: request.password.clone(),
        };
        if !self.connect_allowed(workspace) {
            return Err(MailServerConnectError::TooOften);
        }
        let _turn =
            match tokio::time::timeout(CONNECT_QUEUE_WAIT, self.connect_turns().acquire()).await {
                Ok(Ok(turn)) => turn,
                _ => return Err(MailServerConnectError::Busy),
            };
        imap::check_account(&account, self.mail_network()).await?;
        let key = account_key(&request.imap, &request.username);
        let servers = MailServers {
            imap: request.imap,
            smtp: request.smtp,
            username: request.username,
        };
        // A concurrent connect of the same login may create the row first:
        // then write over it with its id.
        for _ in 0..2 {
            let id = self
                .store()
                .integration_id_for_account(workspace, IntegrationType::Imap, &key)
                .await?
                .unwrap_or_else(IntegrationId::new);
            let grant = Grant {
                user: request.user,
                integration_type: IntegrationType::Imap,
                provider_account_id: key.clone(),
                email: request.email.as_str().to_owned(),
                display_name: None,
                granted_scopes: ScopeSet::default(),
                access_token: self.keyring().seal(
                    request.password.expose_secret().as_bytes(),
                    &token_context(id, "access"),
                ),
                refresh_token: None,
                expires_at: password_never_expires(),
                token_source: TokenSource::Mailwright,
            };
            match self
                .store()
                .save_mail_server_connection(workspace, id, &grant, &servers)
                .await
            {
                Err(StoreError::Conflict(_)) => continue,
                result => return Ok(result?),
            }
        }
        Err(StoreError::Conflict("the mailbox was connected concurrently".into()).into())
    }

    /// Whether `workspace` may try one more connect now (and count it).
    fn connect_allowed(&self, workspace: WorkspaceId) -> bool {
        let now = std::time::Instant::now();
        let mut recent = self
            .connect_attempts()
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        // Forget workspaces whose attempts all lie outside the window.
        recent.retain(|_, attempts| {
            attempts.retain(|at| now.duration_since(*at) < CONNECT_WINDOW);
            !attempts.is_empty()
        });
        let attempts = recent.entry(workspace).or_default();
        if attempts.len() >= CONNECTS_PER_WINDOW {
            return false;
        }
        attempts.push(now);
        true
    }

    /// Connection `id`'s servers and login, if it is a usable mailbox
    /// connected by password (any other is not found).
    pub async fn mail_server_account(
        &self,
        workspace: WorkspaceId,
        id: IntegrationId,
    ) -> Result<(Integration, ServerAccount), VaultError> {
        let (integration, tokens) = self.store().integration_with_tokens(workspace, id).await?;
        if integration.integration_type != IntegrationType::Imap {
            return Err(VaultError::NotFound);
        }
        match integration.status {
            IntegrationStatus::NeedsReauth => return Err(VaultError::NeedsReauth),
            IntegrationStatus::Disconnected => return Err(VaultError::Disconnected),
            IntegrationStatus::Connected | IntegrationStatus::MissingScopes => {}
        }
        let tokens = tokens.ok_or(VaultError::Disconnected)?;
        let password = self
            .keyring()
            .open_secret(&tokens.access_token, &token_context(id, "access"))
            .map_err(|error| {
                VaultError::Internal(anyhow::anyhow!(
                    "cannot decrypt the password of {id}: {error}"
                ))
            })?;
        let account = self
            .mail_server_account_with(&integration, password)
            .await?;
        Ok((integration, account))
    }

    /// `integration`'s servers, with its `password` already decrypted.
    pub(crate) async fn mail_server_account_with(
        &self,
        integration: &Integration,
        password: SecretString,
    ) -> Result<ServerAccount, VaultError> {
        let servers = self
            .store()
            .mail_servers(integration.workspace, integration.id)
            .await?;
        Ok(ServerAccount {
            imap: servers.imap,
            smtp: servers.smtp,
            username: servers.username,
            password,
        })
    }

    /// Log in to connection `id`'s IMAP server: whether the password still
    /// works (the daily check). A refusal turns it `needs_reauth`.
    pub(crate) async fn check_mail_server(
        &self,
        workspace: WorkspaceId,
        id: IntegrationId,
    ) -> Result<(), VaultError> {
        let (integration, account) = self.mail_server_account(workspace, id).await?;
        let session = self.open_imap(&integration, &account).await?;
        session.logout().await;
        Ok(())
    }

    /// Connect and log in to `account`'s IMAP server; a refused login is
    /// recorded on the connection (`needs_reauth`, one notice).
    pub async fn open_imap(
        &self,
        integration: &Integration,
        account: &ServerAccount,
    ) -> Result<ImapSession, VaultError> {
        let mut session =
            ImapSession::connect(&account.imap, self.mail_network(), imap::EXCHANGE_TIMEOUT)
                .await
                .map_err(|error| self.imap_failed(integration, error))?;
        if let Err(error) = session.login(&account.username, &account.password).await {
            return Err(self.imap_refused_or_failed(integration, error).await);
        }
        Ok(session)
    }

    /// An IMAP failure after login, for the caller's retry logic.
    pub fn imap_failed(&self, integration: &Integration, error: ImapError) -> VaultError {
        match error {
            // The server's trouble for now (RFC 5530): tried again later.
            ImapError::Refused(status)
                if matches!(
                    status.code_name(),
                    Some("UNAVAILABLE" | "INUSE" | "LIMIT" | "SERVERBUG" | "OVERQUOTA")
                ) =>
            {
                tracing::info!(integration = %integration.id, server = %status.text, "the IMAP server cannot serve a command now");
                VaultError::ServerUnavailable(format!(
                    "{}: the IMAP server is busy or unavailable",
                    integration.email
                ))
            }
            ImapError::Refused(status) => {
                tracing::info!(integration = %integration.id, server = %status.text, "the IMAP server refused a command");
                VaultError::Rejected(
                    "The IMAP server refused a command (its words are in Mailwright's log); if it keeps happening, check the mailbox's folders in your mail client.".into(),
                )
            }
            other => VaultError::ServerUnavailable(format!("{}: {other}", integration.email)),
        }
    }

    /// A login failure: a refused password is the connection's
    /// (`needs_reauth`); anything else passes.
    pub async fn imap_refused_or_failed(
        &self,
        integration: &Integration,
        error: ImapError,
    ) -> VaultError {
        match error {
            ImapError::AuthFailed(_) => self.password_refused(integration).await,
            other => self.imap_failed(integration, other),
        }
    }

    /// The server refused the saved password: `needs_reauth`, and its owner
    /// told once.
    pub async fn password_refused(&self, integration: &Integration) -> VaultError {
        let message = format!(
            "The mail server refused the saved password for {} (it was changed, or the app password revoked). Reconnect it with the current password to resume.",
            integration.email
        );
        self.transition(
            integration.workspace,
            integration.id,
            IntegrationStatus::NeedsReauth,
            &message,
            None,
        )
        .await;
        VaultError::NeedsReauth
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_login_on_one_server_is_one_account() {
        let imap = ServerEndpoint::parse("IMAP.example.com", 993, "tls").unwrap();
        assert_eq!(
            account_key(&imap, "Ada@example.com"),
            "imap.example.com:993/Ada@example.com"
        );
    }
}
