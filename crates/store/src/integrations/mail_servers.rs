//! The IMAP and SMTP servers of mailboxes connected by password. The
//! password itself is sealed in `oauth_tokens` (an access token that never
//! expires), written with the servers in one transaction.

use domain::mail_server::ServerEndpoint;

use super::*;

/// Where a mailbox's servers are, and the login (the password is sealed
/// apart, with the tokens).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailServers {
    pub imap: ServerEndpoint,
    pub smtp: ServerEndpoint,
    pub username: String,
}

/// When a sealed password "expires": never (the last day both databases
/// and RFC 3339 can write); it is good until the server refuses it.
pub fn password_never_expires() -> DateTime<Utc> {
    chrono::NaiveDate::from_ymd_opt(9999, 12, 31)
        .and_then(|day| day.and_hms_opt(0, 0, 0))
        .map_or(DateTime::<Utc>::MAX_UTC, |at| at.and_utc())
}

impl Store {
    /// Write a mailbox connected by password: the integration, its sealed
    /// password (`grant.access_token`) and its servers, in ONE transaction
    /// (like [`save_connection`](Self::save_connection)).
    pub async fn save_mail_server_connection(
        &self,
        workspace: WorkspaceId,
        id: IntegrationId,
        grant: &Grant,
        servers: &MailServers,
    ) -> Result<Integration, StoreError> {
        self.save_connection_with_servers(workspace, id, grant, Some(servers))
            .await
    }

    /// Connection `id`'s servers; `NotFound` when it has none (a Google one,
    /// another workspace's).
    pub async fn mail_servers(
        &self,
        workspace: WorkspaceId,
        id: IntegrationId,
    ) -> Result<MailServers, StoreError> {
        #[derive(sqlx::FromRow)]
        struct Row {
            imap_host: String,
            imap_port: i32,
            imap_security: String,
            smtp_host: String,
            smtp_port: i32,
            smtp_security: String,
            username: String,
        }
        let row: Option<Row> = in_workspace!(self, workspace, conn => {
            sqlx::query_as(
                "SELECT imap_host, imap_port, imap_security, smtp_host, smtp_port, smtp_security, username \
                 FROM mail_servers WHERE workspace_id = $1 AND integration_id = $2",
            )
            .bind(workspace.as_uuid())
            .bind(id.as_uuid())
            .fetch_optional(&mut *conn)
            .await?
        });
        let row = row.ok_or(StoreError::NotFound)?;
        let endpoint = |host: &str, port: i32, security: &str| {
            ServerEndpoint::parse(host, i64::from(port), security).map_err(|error| {
                StoreError::Other(format!("corrupt mail server `{host}`: {error}").into())
            })
        };
        Ok(MailServers {
            imap: endpoint(&row.imap_host, row.imap_port, &row.imap_security)?,
            smtp: endpoint(&row.smtp_host, row.smtp_port, &row.smtp_security)?,
            username: row.username,
        })
    }
}
