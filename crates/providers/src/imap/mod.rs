//! Mailboxes reached by IMAP and SMTP with a password (Fastmail, iCloud,
//! a hosting provider, a company's own server): one IMAP connection per job,
//! SMTP submission for sends, and the connection check run when a person
//! connects one.

use std::net::SocketAddr;
use std::time::Duration;

use domain::mail_server::ServerEndpoint;
use secrecy::SecretString;

mod client;
pub mod message;
pub mod protocol;
pub mod submission;
pub mod tls;

pub use client::{Fetched, Folder, FolderState, IdleEnd, ImapSession};
pub use submission::{Submission, SubmissionError};
pub use tls::MailTls;

use protocol::StatusText;

/// How long one IMAP or SMTP exchange may take before the server counts as
/// not answering.
pub const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a send waits for the SMTP server's answer to a message (its
/// filters run then; RFC 5321 4.5.3.2 suggests 10 minutes, a job cannot wait
/// that long).
pub const SEND_TIMEOUT: Duration = Duration::from_secs(180);

/// How mail servers are reached: the TLS roots, and whether a server may be
/// on a private network. A tenant names the host, so unless the operator
/// allows private networks (`MAILWRIGHT_OUTBOUND_ALLOW_PRIVATE_NETWORKS`), a
/// name that resolves only to private, loopback or link-local addresses is
/// refused, as for webhooks: the connect errors would otherwise map the
/// server's own network.
#[derive(Debug, Clone)]
pub struct Network {
    pub tls: MailTls,
    pub allow_private: bool,
}

impl Network {
    /// The address to connect to for `endpoint`: its first allowed one.
    pub async fn resolve(&self, endpoint: &ServerEndpoint) -> Result<SocketAddr, String> {
        let lookup = tokio::net::lookup_host((endpoint.host(), endpoint.port));
        let addresses: Vec<SocketAddr> = match tokio::time::timeout(EXCHANGE_TIMEOUT, lookup).await
        {
            Ok(Ok(addresses)) => addresses.collect(),
            Ok(Err(_)) => return Err(format!("{} is not a known host name", endpoint.host())),
            Err(_) => {
                return Err(format!(
                    "{} could not be looked up in time",
                    endpoint.host()
                ));
            }
        };
        addresses
            .iter()
            .find(|address| self.allow_private || domain::webhooks::is_public(address.ip()))
            .copied()
            .ok_or_else(|| {
                format!(
                    "{} resolves only to private, loopback or link-local addresses, which this server does not connect to (MAILWRIGHT_OUTBOUND_ALLOW_PRIVATE_NETWORKS)",
                    endpoint.host()
                )
            })
    }
}

/// What went wrong talking to an IMAP server.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImapError {
    #[error("{0}")]
    Unreachable(String),
    #[error("{0}")]
    Tls(String),
    #[error("{0}")]
    AuthFailed(String),
    /// The server is there but cannot serve now (`BYE` at greeting,
    /// `[UNAVAILABLE]`).
    #[error("{0}")]
    Unavailable(String),
    /// A command's `NO` or `BAD`; its text is the server's, for logs only.
    #[error("the IMAP server refused a command")]
    Refused(StatusText),
    #[error("the IMAP server sent something unreadable ({0})")]
    Protocol(String),
    #[error("the IMAP connection was closed")]
    Closed,
    #[error("the IMAP server did not answer in time")]
    Timeout,
}

/// The settings of a mailbox connected by password.
#[derive(Clone)]
pub struct ServerAccount {
    pub imap: ServerEndpoint,
    pub smtp: ServerEndpoint,
    pub username: String,
    pub password: SecretString,
}

impl std::fmt::Debug for ServerAccount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerAccount")
            .field("imap", &self.imap)
            .field("smtp", &self.smtp)
            .field("username", &self.username)
            .field("password", &"[redacted]")
            .finish()
    }
}

/// Names mail clients give folders when the server marks none with a
/// special use (RFC 6154), in the order they are tried.
const DRAFTS_NAMES: [&str; 6] = [
    "Drafts",
    "INBOX.Drafts",
    "INBOX/Drafts",
    "Draft",
    "[Gmail]/Drafts",
    "Entw&APw-rfe",
];
const SENT_NAMES: [&str; 7] = [
    "Sent",
    "INBOX.Sent",
    "INBOX/Sent",
    "Sent Items",
    "Sent Messages",
    "Sent Mail",
    "[Gmail]/Sent Mail",
];

/// The folder marked `\Drafts`, else the first with a usual drafts name.
pub fn drafts_folder(folders: &[Folder]) -> Option<&Folder> {
    special_folder(folders, "\\Drafts", &DRAFTS_NAMES)
}

/// The folder marked `\Sent`, else the first with a usual sent name.
pub fn sent_folder(folders: &[Folder]) -> Option<&Folder> {
    special_folder(folders, "\\Sent", &SENT_NAMES)
}

fn special_folder<'a>(
    folders: &'a [Folder],
    attribute: &str,
    names: &[&str],
) -> Option<&'a Folder> {
    let selectable = |folder: &&Folder| !folder.has_attribute("\\Noselect");
    folders
        .iter()
        .filter(selectable)
        .find(|folder| folder.has_attribute(attribute))
        .or_else(|| {
            names.iter().find_map(|name| {
                folders
                    .iter()
                    .filter(selectable)
                    .find(|folder| folder.name.eq_ignore_ascii_case(name))
            })
        })
}

/// Which server of a mailbox a connect error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Server {
    Imap,
    Smtp,
}

/// What kind of connect failure it is (the API's `code`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectFailure {
    /// A server refused the user name or password.
    AuthFailed,
    /// No secure connection: a certificate for another name, an untrusted
    /// one, a port that does not speak TLS.
    TlsFailed,
    /// No connection at all, or no answer.
    Unreachable,
    /// The mailbox has nowhere to keep drafts.
    NoDraftsFolder,
}

/// Why a mailbox could not be connected, for the person connecting it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ConnectError {
    pub failure: ConnectFailure,
    pub server: Server,
    pub message: String,
}

impl ConnectError {
    fn new(failure: ConnectFailure, server: Server, message: String) -> ConnectError {
        ConnectError {
            failure,
            server,
            message,
        }
    }

    pub fn code(&self) -> &'static str {
        match self.failure {
            ConnectFailure::AuthFailed => "auth_failed",
            ConnectFailure::TlsFailed => "tls_failed",
            ConnectFailure::Unreachable => "unreachable",
            ConnectFailure::NoDraftsFolder => "no_drafts_folder",
        }
    }

    /// The request field to fix: the password, or the server's settings.
    pub fn field(&self) -> &'static str {
        match (self.failure, self.server) {
            (ConnectFailure::AuthFailed, _) => "password",
            (_, Server::Imap) => "imap",
            (_, Server::Smtp) => "smtp",
        }
    }
}

/// Try the IMAP side (log in, select the inbox, find a Drafts folder) and
/// the SMTP side (greet, secure, log in).
pub async fn check_account(account: &ServerAccount, network: &Network) -> Result<(), ConnectError> {
    check_imap(account, network).await?;
    check_smtp(account, network).await
}

async fn check_imap(account: &ServerAccount, network: &Network) -> Result<(), ConnectError> {
    let imap = &account.imap;
    let mut session = ImapSession::connect(imap, network, EXCHANGE_TIMEOUT)
        .await
        .map_err(|error| imap_connect_error(imap, error))?;
    session
        .login(&account.username, &account.password)
        .await
        .map_err(|error| imap_connect_error(imap, error))?;
    session
        .select("INBOX")
        .await
        .map_err(|error| imap_connect_error(imap, error))?;
    let folders = session
        .folders()
        .await
        .map_err(|error| imap_connect_error(imap, error))?;
    session.logout().await;
    if drafts_folder(&folders).is_none() {
        return Err(ConnectError::new(
            ConnectFailure::NoDraftsFolder,
            Server::Imap,
            format!(
                "the mailbox at {imap} has no Drafts folder (none marked \\Drafts, none named Drafts): create one in your mail client, then connect again"
            ),
        ));
    }
    Ok(())
}

async fn check_smtp(account: &ServerAccount, network: &Network) -> Result<(), ConnectError> {
    let smtp = &account.smtp;
    let submission = Submission::connect(account, network, EXCHANGE_TIMEOUT)
        .await
        .map_err(|error| smtp_connect_error(smtp, error))?;
    submission
        .check()
        .await
        .map_err(|error| smtp_connect_error(smtp, error))
}

fn smtp_connect_error(smtp: &ServerEndpoint, error: SubmissionError) -> ConnectError {
    let (failure, message) = match error {
        SubmissionError::AuthFailed => (
            ConnectFailure::AuthFailed,
            format!(
                "the SMTP server at {smtp} refused the user name or password (many providers want an app password: see the README)"
            ),
        ),
        SubmissionError::Tls(detail) => (ConnectFailure::TlsFailed, format!("SMTP: {detail}")),
        SubmissionError::Unreachable(detail) => {
            (ConnectFailure::Unreachable, format!("SMTP: {detail}"))
        }
        SubmissionError::Refused(code) | SubmissionError::Unavailable(code) => (
            ConnectFailure::Unreachable,
            format!("the SMTP server at {smtp} refused the session ({code})"),
        ),
        SubmissionError::Unconfirmed => (
            ConnectFailure::Unreachable,
            format!("the SMTP server at {smtp} closed the connection"),
        ),
    };
    ConnectError::new(failure, Server::Smtp, message)
}

fn imap_connect_error(endpoint: &ServerEndpoint, error: ImapError) -> ConnectError {
    let (failure, message) = match error {
        ImapError::AuthFailed(_) => (
            ConnectFailure::AuthFailed,
            format!(
                "the IMAP server at {endpoint} refused the user name or password (many providers want an app password: see the README)"
            ),
        ),
        ImapError::Tls(detail) => (ConnectFailure::TlsFailed, format!("IMAP: {detail}")),
        ImapError::Unreachable(detail) => (ConnectFailure::Unreachable, format!("IMAP: {detail}")),
        ImapError::Timeout => (
            ConnectFailure::Unreachable,
            format!("the IMAP server at {endpoint} did not answer in time"),
        ),
        ImapError::Closed => (
            ConnectFailure::Unreachable,
            format!("the IMAP server at {endpoint} closed the connection"),
        ),
        ImapError::Unavailable(detail) => (
            ConnectFailure::Unreachable,
            format!("the IMAP server at {endpoint}: {detail}"),
        ),
        ImapError::Refused(_) => (
            ConnectFailure::Unreachable,
            format!("the IMAP server at {endpoint} refused to open the inbox"),
        ),
        ImapError::Protocol(_) => (
            ConnectFailure::Unreachable,
            format!("{endpoint} does not speak IMAP as expected (is it the IMAP port?)"),
        ),
    };
    ConnectError::new(failure, Server::Imap, message)
}
