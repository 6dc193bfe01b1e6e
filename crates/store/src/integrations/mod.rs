//! Connected accounts (integrations), their encrypted OAuth tokens, and the
//! OAuth `state` rows of connections in progress. Tokens reach this module
//! already encrypted ([`Sealed`]); the store never sees a token in clear.

use chrono::{DateTime, Utc};
use domain::scopes::{IntegrationStatus, IntegrationType, ScopeSet, TokenSource};
use domain::{IntegrationId, UserId, WorkspaceId};
use uuid::Uuid;

use crate::{
    Backend, Store, StoreError, across_workspaces, in_workspace, in_workspace_tx, now, on_pool,
};

mod checks;
mod mail_servers;
mod oauth_states;
mod tokens;

pub use checks::DueCheck;
pub use mail_servers::{MailServers, password_never_expires};

/// An encrypted value and the id of the key that encrypted it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealed {
    pub key_id: String,
    /// Nonce followed by ciphertext and tag.
    pub bytes: Vec<u8>,
}

/// The last thing that went wrong with a connection, for people to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastError {
    pub code: String,
    pub message: String,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Integration {
    pub id: IntegrationId,
    pub workspace: WorkspaceId,
    pub user: UserId,
    pub provider: String,
    pub integration_type: IntegrationType,
    pub provider_account_id: String,
    pub email: String,
    pub display_name: Option<String>,
    pub status: IntegrationStatus,
    pub granted_scopes: ScopeSet,
    pub last_error: Option<LastError>,
    pub connected_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
    pub token_source: TokenSource,
}

impl Integration {
    /// Whether the connection allows `capability` (by its scopes, or by its
    /// kind: a mailbox connected by password).
    pub fn allows(&self, capability: domain::scopes::Capability) -> bool {
        self.integration_type
            .allows(&self.granted_scopes, capability)
    }

    /// The capabilities its type needs that the grant lacks, as scopes.
    pub fn missing_scopes(&self) -> Vec<String> {
        self.granted_scopes.missing_for(self.integration_type)
    }
}

#[derive(sqlx::FromRow)]
struct IntegrationRow {
    id: Uuid,
    workspace_id: Uuid,
    user_id: Uuid,
    provider: String,
    integration_type: String,
    provider_account_id: String,
    email: String,
    display_name: Option<String>,
    status: String,
    granted_scopes: String,
    last_error_code: Option<String>,
    last_error_message: Option<String>,
    last_error_at: Option<DateTime<Utc>>,
    connected_at: DateTime<Utc>,
    last_used_at: Option<DateTime<Utc>>,
    updated_at: DateTime<Utc>,
    token_source: String,
    clerk_user_id: Option<String>,
}

const INTEGRATION_COLUMNS: &str = "id, workspace_id, user_id, provider, integration_type, provider_account_id, email, \
     display_name, status, granted_scopes, last_error_code, last_error_message, last_error_at, connected_at, \
     last_used_at, updated_at, token_source, clerk_user_id";

const TOKEN_COLUMNS: &str = "access_key_id, access_token, refresh_key_id, refresh_token, \
     token_expires_at, version, refresh_lease_until";

fn integration_with_tokens_sql(backend: Backend) -> String {
    match backend {
        Backend::Postgres => format!(
            "SELECT {INTEGRATION_COLUMNS}, {TOKEN_COLUMNS} FROM mailwright_integration_with_tokens($1, $2)"
        ),
        Backend::Sqlite => {
            let columns = INTEGRATION_COLUMNS
                .split(", ")
                .map(|column| format!("i.{}", column.trim()))
                .collect::<Vec<_>>()
                .join(", ");
            format!(
                "SELECT {columns}, t.access_key_id, t.access_token, t.refresh_key_id, t.refresh_token, \
                        t.expires_at AS token_expires_at, t.version, t.refresh_lease_until \
                 FROM integrations i LEFT JOIN oauth_tokens t ON t.integration_id = i.id AND t.workspace_id = i.workspace_id \
                 WHERE i.workspace_id = $1 AND i.id = $2"
            )
        }
    }
}

impl TryFrom<IntegrationRow> for Integration {
    type Error = StoreError;

    fn try_from(row: IntegrationRow) -> Result<Self, StoreError> {
        let corrupt = |what: &str, value: &str| {
            StoreError::Other(format!("integration {}: unknown {what} `{value}`", row.id).into())
        };
        let integration_type = IntegrationType::parse(&row.integration_type)
            .ok_or_else(|| corrupt("type", &row.integration_type))?;
        Ok(Integration {
            id: IntegrationId::from_uuid(row.id),
            workspace: WorkspaceId::from_uuid(row.workspace_id),
            user: UserId::from_uuid(row.user_id),
            integration_type,
            status: IntegrationStatus::parse(&row.status)
                .ok_or_else(|| corrupt("status", &row.status))?,
            token_source: TokenSource::parse(&row.token_source, row.clerk_user_id)
                .ok_or_else(|| corrupt("token source", &row.token_source))?,
            granted_scopes: integration_type.parse_scopes(&row.granted_scopes),
            last_error: match (
                row.last_error_code,
                row.last_error_message,
                row.last_error_at,
            ) {
                (Some(code), Some(message), Some(at)) => Some(LastError { code, message, at }),
                _ => None,
            },
            provider: row.provider,
            provider_account_id: row.provider_account_id,
            email: row.email,
            display_name: row.display_name,
            connected_at: row.connected_at,
            last_used_at: row.last_used_at,
            updated_at: row.updated_at,
        })
    }
}

/// A connection being started: what the callback must find again. `Debug`
/// leaves out the PKCE verifier.
#[derive(Clone)]
pub struct OAuthState {
    pub workspace: WorkspaceId,
    pub user: UserId,
    pub integration_type: IntegrationType,
    pub code_verifier: String,
    pub requested_scopes: String,
    pub return_to: String,
    pub expires_at: DateTime<Utc>,
    pub started_by: StartedBy,
}

/// How a connection was started, which decides who may finish it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartedBy {
    /// From a signed-in browser: only that person's session may finish it.
    Session,
    /// By an API client (API key, JWT): someone who is not signed in as the
    /// starter confirms on a Mailwright page first.
    Api,
}

impl StartedBy {
    pub fn as_str(self) -> &'static str {
        match self {
            StartedBy::Session => "session",
            StartedBy::Api => "api",
        }
    }

    fn parse(text: &str) -> StartedBy {
        // Anything unexpected is the stricter reading.
        if text == "api" {
            StartedBy::Api
        } else {
            StartedBy::Session
        }
    }
}

impl std::fmt::Debug for OAuthState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuthState")
            .field("workspace", &self.workspace)
            .field("user", &self.user)
            .field("integration_type", &self.integration_type)
            .field("code_verifier", &"[redacted]")
            .field("requested_scopes", &self.requested_scopes)
            .field("return_to", &self.return_to)
            .field("expires_at", &self.expires_at)
            .field("started_by", &self.started_by)
            .finish()
    }
}

#[derive(sqlx::FromRow)]
struct OAuthStateRow {
    workspace_id: Uuid,
    user_id: Uuid,
    integration_type: String,
    code_verifier: String,
    requested_scopes: String,
    return_to: String,
    expires_at: DateTime<Utc>,
    started_by: String,
}

/// What a `state` from a callback turned out to be.
#[derive(Debug, Clone)]
pub enum StateLookup {
    /// Valid until now; consumed by this lookup.
    Fresh(OAuthState),
    /// Known, but expired (consumed by this lookup all the same).
    Expired(OAuthState),
    /// Already used by an earlier callback: a replay.
    AlreadyUsed,
    /// Never issued (forged or mistyped).
    Unknown,
}

/// Everything a successful code exchange yields, tokens already encrypted.
#[derive(Debug, Clone)]
pub struct Grant {
    pub user: UserId,
    pub integration_type: IntegrationType,
    pub provider_account_id: String,
    pub email: String,
    pub display_name: Option<String>,
    pub granted_scopes: ScopeSet,
    pub access_token: Sealed,
    /// `None` when Google sent none (a re-consent): the stored one is kept.
    pub refresh_token: Option<Sealed>,
    pub expires_at: DateTime<Utc>,
    pub token_source: TokenSource,
}

/// The encrypted tokens of an integration.
#[derive(Debug, Clone)]
pub struct StoredTokens {
    pub access_token: Sealed,
    pub refresh_token: Option<Sealed>,
    pub expires_at: DateTime<Utc>,
    pub version: i32,
    pub refresh_lease_until: Option<DateTime<Utc>>,
}

#[derive(sqlx::FromRow)]
struct TokenRow {
    access_key_id: String,
    access_token: Vec<u8>,
    refresh_key_id: Option<String>,
    refresh_token: Option<Vec<u8>>,
    expires_at: DateTime<Utc>,
    version: i32,
    refresh_lease_until: Option<DateTime<Utc>>,
}

impl From<TokenRow> for StoredTokens {
    fn from(row: TokenRow) -> Self {
        StoredTokens {
            access_token: Sealed {
                key_id: row.access_key_id,
                bytes: row.access_token,
            },
            refresh_token: match (row.refresh_key_id, row.refresh_token) {
                (Some(key_id), Some(bytes)) => Some(Sealed { key_id, bytes }),
                _ => None,
            },
            expires_at: row.expires_at,
            version: row.version,
            refresh_lease_until: row.refresh_lease_until,
        }
    }
}

/// A refreshed access token (and, when Google rotated it, refresh token).
#[derive(Debug, Clone)]
pub struct Refreshed {
    pub access_token: Sealed,
    pub refresh_token: Option<Sealed>,
    pub expires_at: DateTime<Utc>,
    /// The grant's scopes when Google reported them.
    pub granted_scopes: Option<(ScopeSet, IntegrationStatus)>,
}

impl Store {
    /// The id of the workspace's integration for this account (Google's
    /// `sub`, or an IMAP login), if any.
    pub async fn integration_id_for_account(
        &self,
        workspace: WorkspaceId,
        integration_type: IntegrationType,
        provider_account_id: &str,
    ) -> Result<Option<IntegrationId>, StoreError> {
        let id: Option<Uuid> = in_workspace!(self, workspace, conn => {
            sqlx::query_scalar(
                "SELECT id FROM integrations WHERE workspace_id = $1 AND provider = $4 \
                 AND integration_type = $2 AND provider_account_id = $3",
            )
            .bind(workspace.as_uuid())
            .bind(integration_type.as_str())
            .bind(provider_account_id)
            .bind(integration_type.provider())
            .fetch_optional(&mut *conn)
            .await?
        });
        Ok(id.map(IntegrationId::from_uuid))
    }

    /// Write the integration and its tokens in ONE transaction: either both
    /// exist afterwards or neither changed. `id` must be the id
    /// [`integration_id_for_account`](Self::integration_id_for_account) gave
    /// (or a new one); if a concurrent connect created the row meanwhile,
    /// this is a `Conflict` and the caller starts over.
    pub async fn save_connection(
        &self,
        workspace: WorkspaceId,
        id: IntegrationId,
        grant: &Grant,
    ) -> Result<Integration, StoreError> {
        self.save_connection_with_servers(workspace, id, grant, None)
            .await
    }

    /// [`save_connection`](Self::save_connection), with the mail servers of
    /// a mailbox connected by password written in the same transaction.
    pub(crate) async fn save_connection_with_servers(
        &self,
        workspace: WorkspaceId,
        id: IntegrationId,
        grant: &Grant,
        servers: Option<&MailServers>,
    ) -> Result<Integration, StoreError> {
        let at = now();
        let status = IntegrationStatus::for_grant(&grant.granted_scopes, grant.integration_type);
        let sql = format!(
            "INSERT INTO integrations (id, workspace_id, user_id, provider, integration_type, provider_account_id, \
                                       email, display_name, status, granted_scopes, connected_at, updated_at, \
                                       token_source, clerk_user_id) \
             VALUES ($1, $2, $3, $13, $4, $5, $6, $7, $8, $9, $10, $10, $11, $12) \
             ON CONFLICT (workspace_id, provider, integration_type, provider_account_id) DO UPDATE SET \
                 user_id = excluded.user_id, email = excluded.email, display_name = excluded.display_name, \
                 status = excluded.status, granted_scopes = excluded.granted_scopes, \
                 token_source = excluded.token_source, clerk_user_id = excluded.clerk_user_id, \
                 last_error_code = NULL, last_error_message = NULL, last_error_at = NULL, \
                 connected_at = excluded.connected_at, updated_at = excluded.updated_at \
             RETURNING {INTEGRATION_COLUMNS}"
        );
        let row: IntegrationRow = in_workspace_tx!(self, workspace, conn => {
            let row: IntegrationRow = sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str()))
                .bind(id.as_uuid())
                .bind(workspace.as_uuid())
                .bind(grant.user.as_uuid())
                .bind(grant.integration_type.as_str())
                .bind(&grant.provider_account_id)
                .bind(&grant.email)
                .bind(&grant.display_name)
                .bind(status.as_str())
                .bind(grant.granted_scopes.to_space_delimited())
                .bind(at)
                .bind(grant.token_source.as_str())
                .bind(grant.token_source.clerk_user_id())
                .bind(grant.integration_type.provider())
                .fetch_one(&mut *conn)
                .await?;
            if row.id != id.as_uuid() {
                // Returning drops the transaction: the integration is rolled back too.
                return Err(StoreError::Conflict("integration created concurrently".into()));
            }
            sqlx::query(
                "INSERT INTO oauth_tokens (integration_id, workspace_id, access_key_id, access_token, refresh_key_id, \
                                           refresh_token, expires_at, version, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, 1, $8) \
                 ON CONFLICT (integration_id) DO UPDATE SET \
                     access_key_id = excluded.access_key_id, access_token = excluded.access_token, \
                     refresh_key_id = CASE WHEN $9 THEN NULL \
                         ELSE COALESCE(excluded.refresh_key_id, oauth_tokens.refresh_key_id) END, \
                     refresh_token = CASE WHEN $9 THEN NULL \
                         ELSE COALESCE(excluded.refresh_token, oauth_tokens.refresh_token) END, \
                     expires_at = excluded.expires_at, version = oauth_tokens.version + 1, \
                     refresh_lease_token = NULL, refresh_lease_until = NULL, updated_at = excluded.updated_at",
            )
            .bind(id.as_uuid())
            .bind(workspace.as_uuid())
            .bind(&grant.access_token.key_id)
            .bind(&grant.access_token.bytes)
            .bind(grant.refresh_token.as_ref().map(|sealed| sealed.key_id.clone()))
            .bind(grant.refresh_token.as_ref().map(|sealed| sealed.bytes.clone()))
            .bind(grant.expires_at)
            .bind(at)
            // A grant Clerk holds has no refresh token of Mailwright's: one
            // kept from an earlier Google connection of the account goes.
            .bind(matches!(grant.token_source, TokenSource::Clerk { .. }))
            .execute(&mut *conn)
            .await?;
            if let Some(servers) = servers {
                sqlx::query(
                    "INSERT INTO mail_servers (integration_id, workspace_id, imap_host, imap_port, imap_security, \
                                               smtp_host, smtp_port, smtp_security, username, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
                     ON CONFLICT (integration_id) DO UPDATE SET \
                         imap_host = excluded.imap_host, imap_port = excluded.imap_port, \
                         imap_security = excluded.imap_security, smtp_host = excluded.smtp_host, \
                         smtp_port = excluded.smtp_port, smtp_security = excluded.smtp_security, \
                         username = excluded.username, updated_at = excluded.updated_at",
                )
                .bind(id.as_uuid())
                .bind(workspace.as_uuid())
                .bind(servers.imap.host())
                .bind(i32::from(servers.imap.port))
                .bind(servers.imap.security.as_str())
                .bind(servers.smtp.host())
                .bind(i32::from(servers.smtp.port))
                .bind(servers.smtp.security.as_str())
                .bind(&servers.username)
                .bind(at)
                .execute(&mut *conn)
                .await?;
            }
            row
        });
        row.try_into()
    }

    pub async fn integrations(
        &self,
        workspace: WorkspaceId,
    ) -> Result<Vec<Integration>, StoreError> {
        let sql = format!(
            "SELECT {INTEGRATION_COLUMNS} FROM integrations WHERE workspace_id = $1 ORDER BY connected_at DESC"
        );
        let rows: Vec<IntegrationRow> = in_workspace!(self, workspace, conn => {
            sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str())).bind(workspace.as_uuid()).fetch_all(&mut *conn).await?
        });
        rows.into_iter().map(Integration::try_from).collect()
    }

    /// The first `limit` connections of every workspace, oldest first (for
    /// the operator's `mailwright doctor`, which serves them all).
    pub async fn integrations_everywhere(
        &self,
        limit: i64,
    ) -> Result<Vec<Integration>, StoreError> {
        let sql = format!(
            "SELECT {INTEGRATION_COLUMNS} FROM integrations ORDER BY connected_at, id LIMIT $1"
        );
        let rows: Vec<IntegrationRow> = crate::across_workspaces!(self, conn => {
            sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str())).bind(limit).fetch_all(&mut *conn).await?
        });
        rows.into_iter().map(Integration::try_from).collect()
    }

    pub async fn integration(
        &self,
        workspace: WorkspaceId,
        id: IntegrationId,
    ) -> Result<Integration, StoreError> {
        let sql = format!(
            "SELECT {INTEGRATION_COLUMNS} FROM integrations WHERE workspace_id = $1 AND id = $2"
        );
        let row: Option<IntegrationRow> = in_workspace!(self, workspace, conn => {
            sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str()))
                .bind(workspace.as_uuid())
                .bind(id.as_uuid())
                .fetch_optional(&mut *conn)
                .await?
        });
        row.ok_or(StoreError::NotFound)?.try_into()
    }

    /// The user's most recently connected integration of a type.
    pub async fn latest_integration(
        &self,
        workspace: WorkspaceId,
        user: UserId,
        integration_type: IntegrationType,
    ) -> Result<Option<Integration>, StoreError> {
        let sql = format!(
            "SELECT {INTEGRATION_COLUMNS} FROM integrations WHERE workspace_id = $1 AND user_id = $2 \
             AND integration_type = $3 ORDER BY connected_at DESC LIMIT 1"
        );
        let row: Option<IntegrationRow> = in_workspace!(self, workspace, conn => {
            sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str()))
                .bind(workspace.as_uuid())
                .bind(user.as_uuid())
                .bind(integration_type.as_str())
                .fetch_optional(&mut *conn)
                .await?
        });
        row.map(Integration::try_from).transpose()
    }

    /// Change the status and record why. Returns the time of the
    /// transition when THIS call changed the status (so "this just broke" is
    /// told once, by one caller, however many hit the same error at once),
    /// `None` when it already had that status.
    pub async fn set_integration_status(
        &self,
        workspace: WorkspaceId,
        id: IntegrationId,
        status: IntegrationStatus,
        error: Option<(&str, &str)>,
        missing_scope: Option<&str>,
    ) -> Result<Option<DateTime<Utc>>, StoreError> {
        let at = now();
        let transitioned = in_workspace_tx!(self, workspace, conn => {
            let row: Option<(String, String)> = sqlx::query_as(
                "SELECT granted_scopes, integration_type FROM integrations WHERE workspace_id = $1 AND id = $2",
            )
            .bind(workspace.as_uuid())
            .bind(id.as_uuid())
            .fetch_optional(&mut *conn)
            .await?;
            let Some((granted, integration_type)) = row else {
                return Err(StoreError::NotFound);
            };
            let integration_type = IntegrationType::parse(&integration_type).ok_or_else(|| {
                StoreError::Other(format!("integration {id}: unknown type `{integration_type}`").into())
            })?;
            // A scope the provider says is missing is no longer counted as granted.
            let granted = integration_type.parse_scopes(
                &granted
                    .split_whitespace()
                    .filter(|granted| Some(*granted) != missing_scope)
                    .collect::<Vec<_>>()
                    .join(" "),
            );
            // The status condition makes the transition atomic: concurrent
            // callers re-check it after the first one's write, and find it done.
            let transitioned = sqlx::query(
                "UPDATE integrations SET status = $1, updated_at = $2 \
                 WHERE workspace_id = $3 AND id = $4 AND status <> $1",
            )
            .bind(status.as_str())
            .bind(at)
            .bind(workspace.as_uuid())
            .bind(id.as_uuid())
            .execute(&mut *conn)
            .await?
            .rows_affected()
                == 1;
            sqlx::query(
                "UPDATE integrations SET granted_scopes = $1, last_error_code = $2, last_error_message = $3, \
                     last_error_at = $4 \
                 WHERE workspace_id = $5 AND id = $6",
            )
            .bind(granted.to_space_delimited())
            .bind(error.map(|(code, _)| code))
            .bind(error.map(|(_, message)| message))
            .bind(error.map(|_| at))
            .bind(workspace.as_uuid())
            .bind(id.as_uuid())
            .execute(&mut *conn)
            .await?;
            transitioned
        });
        Ok(transitioned.then_some(at))
    }

    /// Record a failure that does not change the status (e.g. Google was down).
    pub async fn record_integration_error(
        &self,
        workspace: WorkspaceId,
        id: IntegrationId,
        code: &str,
        message: &str,
    ) -> Result<(), StoreError> {
        let at = now();
        in_workspace!(self, workspace, conn => {
            sqlx::query(
                "UPDATE integrations SET last_error_code = $1, last_error_message = $2, last_error_at = $3 \
                 WHERE workspace_id = $4 AND id = $5",
            )
            .bind(code)
            .bind(message)
            .bind(at)
            .bind(workspace.as_uuid())
            .bind(id.as_uuid())
            .execute(&mut *conn)
            .await?;
        });
        Ok(())
    }

    pub async fn touch_integration(
        &self,
        workspace: WorkspaceId,
        id: IntegrationId,
    ) -> Result<(), StoreError> {
        in_workspace!(self, workspace, conn => {
            sqlx::query("UPDATE integrations SET last_used_at = $1 WHERE workspace_id = $2 AND id = $3")
                .bind(now())
                .bind(workspace.as_uuid())
                .bind(id.as_uuid())
                .execute(&mut *conn)
                .await?;
        });
        Ok(())
    }

    /// Forget the tokens and mark the integration disconnected.
    pub async fn disconnect_integration(
        &self,
        workspace: WorkspaceId,
        id: IntegrationId,
    ) -> Result<(), StoreError> {
        let at = now();
        in_workspace_tx!(self, workspace, conn => {
            sqlx::query("DELETE FROM oauth_tokens WHERE workspace_id = $1 AND integration_id = $2")
                .bind(workspace.as_uuid())
                .bind(id.as_uuid())
                .execute(&mut *conn)
                .await?;
            let updated = sqlx::query(
                "UPDATE integrations SET status = 'disconnected', last_error_code = NULL, last_error_message = NULL, \
                     last_error_at = NULL, updated_at = $1 \
                 WHERE workspace_id = $2 AND id = $3",
            )
            .bind(at)
            .bind(workspace.as_uuid())
            .bind(id.as_uuid())
            .execute(&mut *conn)
            .await?
            .rows_affected();
            if updated == 0 {
                return Err(StoreError::NotFound);
            }
            // A disconnected mailbox gets no drafts; reconnecting does not
            // switch them back on by itself. Its cursor and watch go too,
            // and the style learnt from its sent mail (the person's text):
            // mail that arrives while it is disconnected is not processed
            // later, and a workflow's sync starts afresh on reconnecting.
            sqlx::query(
                "UPDATE autodraft_mailboxes SET enabled = FALSE, next_poll_at = NULL, history_id = NULL, cursor_link = NULL, \
                     watch_expires_at = NULL, watch_renew_at = NULL, watch_error_code = NULL, \
                     watch_error_message = NULL, watch_error_at = NULL, subscription_id = NULL, \
                     subscription_secret_hash = NULL, style = NULL, \
                     style_learned_at = NULL, updated_at = $1 \
                 WHERE workspace_id = $2 AND integration_id = $3",
            )
            .bind(at)
            .bind(workspace.as_uuid())
            .bind(id.as_uuid())
            .execute(&mut *conn)
            .await?;
        });
        Ok(())
    }

    /// How many integrations are in each status (for the metrics gauge).
    pub async fn integration_counts(&self) -> Result<Vec<(String, i64)>, StoreError> {
        Ok(across_workspaces!(self, conn => {
            sqlx::query_as("SELECT status, COUNT(*) FROM integrations GROUP BY status").fetch_all(&mut *conn).await?
        }))
    }

    // Key management: which keys encrypted what, and the check values.
}
