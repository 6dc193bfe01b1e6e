//! One IMAP connection: connect (TLS or STARTTLS), log in, and the commands
//! Mailwright uses. Every read and write has a deadline, each command one in
//! all, and what the server sends is bounded: a line, a literal
//! ([`protocol::MAX_LITERAL`]) and one command's whole answer.

use std::collections::HashSet;
use std::time::Duration;

use base64::Engine as _;
use chrono::{DateTime, Utc};
use domain::mail_server::{Security, ServerEndpoint};
use secrecy::{ExposeSecret, SecretString};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use super::protocol::{self, Response, Status, StatusText, Value};
use super::tls::{MailTls, describe_handshake_failure};
use super::{ImapError, Network};

/// The most one command's answer may hold in all (a FETCH of a batch of
/// whole messages stays far below).
const MAX_COMMAND_BYTES: usize = 200 * 1024 * 1024;
/// The longest one command may take in all, however steadily the server
/// answers.
const COMMAND_DEADLINE: Duration = Duration::from_secs(300);

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// A folder as `LIST` names it, with its attributes (`\Drafts`, `\Sent`,
/// `\Noselect`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Folder {
    pub name: String,
    pub attributes: Vec<String>,
}

impl Folder {
    pub fn has_attribute(&self, attribute: &str) -> bool {
        self.attributes
            .iter()
            .any(|a| a.eq_ignore_ascii_case(attribute))
    }
}

/// The selected folder's UIDVALIDITY and UIDNEXT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FolderState {
    pub uid_validity: u32,
    pub uid_next: u32,
    pub exists: u32,
}

/// One message of a `UID FETCH`.
#[derive(Clone, PartialEq, Eq)]
pub struct Fetched {
    pub uid: u32,
    pub flags: Vec<String>,
    pub internal_date: Option<DateTime<Utc>>,
    /// `BODY[]` or `BODY[HEADER]`, whichever was asked for.
    pub body: Option<Vec<u8>>,
}

impl std::fmt::Debug for Fetched {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fetched")
            .field("uid", &self.uid)
            .field("flags", &self.flags)
            .field("internal_date", &self.internal_date)
            .field("body_bytes", &self.body.as_ref().map(Vec::len))
            .finish()
    }
}

/// How an `IDLE` ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdleEnd {
    /// The folder changed (a message arrived or went).
    Changed,
    /// Nothing happened within the time asked for.
    Quiet,
}

/// A logged-in (or not yet) IMAP connection.
pub struct ImapSession {
    io: Box<dyn Io>,
    buffer: Vec<u8>,
    next_tag: u32,
    capabilities: HashSet<String>,
    timeout: Duration,
}

impl std::fmt::Debug for ImapSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImapSession")
            .field("capabilities", &self.capabilities.len())
            .finish_non_exhaustive()
    }
}

impl ImapSession {
    /// Connect to `endpoint` and secure the connection (TLS, or STARTTLS
    /// before anything else is said); no login yet.
    pub async fn connect(
        endpoint: &ServerEndpoint,
        network: &Network,
        timeout: Duration,
    ) -> Result<ImapSession, ImapError> {
        let tls = &network.tls;
        let address = network
            .resolve(endpoint)
            .await
            .map_err(ImapError::Unreachable)?;
        let tcp = match tokio::time::timeout(timeout, TcpStream::connect(address)).await {
            Ok(Ok(tcp)) => tcp,
            Ok(Err(error)) => {
                return Err(ImapError::Unreachable(format!(
                    "{endpoint} could not be reached ({})",
                    describe_connect_error(&error)
                )));
            }
            Err(_) => {
                return Err(ImapError::Unreachable(format!(
                    "{endpoint} did not answer within {} s",
                    timeout.as_secs()
                )));
            }
        };
        let _ = tcp.set_nodelay(true);
        let io: Box<dyn Io> = match endpoint.security {
            Security::Tls => Box::new(handshake(tcp, endpoint, tls, timeout).await?),
            Security::StartTls => Box::new(tcp),
        };
        let mut session = ImapSession {
            io,
            buffer: Vec::with_capacity(8 * 1024),
            next_tag: 1,
            capabilities: HashSet::new(),
            timeout,
        };
        match session.read_response().await? {
            Response::UntaggedStatus(StatusText {
                status: Status::Ok | Status::PreAuth,
                code,
                ..
            }) => session.note_capabilities(&code),
            Response::UntaggedStatus(StatusText {
                status: Status::Bye,
                ..
            }) => {
                return Err(ImapError::Unavailable(
                    "the server refused the connection".into(),
                ));
            }
            _ => {
                return Err(ImapError::Protocol(
                    "the server's greeting is not IMAP".into(),
                ));
            }
        }
        if endpoint.security == Security::StartTls {
            if session.capabilities.is_empty() {
                session.refresh_capabilities().await?;
            }
            if !session.has_capability("STARTTLS") {
                return Err(ImapError::Tls(format!(
                    "{endpoint} does not offer STARTTLS (try security \"tls\")"
                )));
            }
            session.command("STARTTLS").await?;
            if !session.buffer.is_empty() {
                // Bytes sent before the handshake could be an attacker's.
                return Err(ImapError::Protocol(
                    "the server spoke before TLS began".into(),
                ));
            }
            // A placeholder while the plain stream is handed to TLS.
            let placeholder: Box<dyn Io> = Box::new(tokio::io::duplex(1).0);
            let plain = std::mem::replace(&mut session.io, placeholder);
            session.io = Box::new(handshake(plain, endpoint, tls, timeout).await?);
            session.capabilities.clear();
        }
        if session.capabilities.is_empty() {
            session.refresh_capabilities().await?;
        }
        Ok(session)
    }

    pub fn has_capability(&self, name: &str) -> bool {
        self.capabilities.contains(&name.to_ascii_uppercase())
    }

    /// Log in: `AUTHENTICATE PLAIN` where offered, else `LOGIN`. A refusal
    /// is [`ImapError::AuthFailed`], unless the server says it is its own
    /// trouble (`[UNAVAILABLE]`).
    pub async fn login(
        &mut self,
        username: &str,
        password: &SecretString,
    ) -> Result<(), ImapError> {
        let result = if self.has_capability("AUTH=PLAIN") {
            let token = base64::engine::general_purpose::STANDARD
                .encode(format!("\0{username}\0{}", password.expose_secret()).as_bytes());
            if self.has_capability("SASL-IR") {
                self.command(&format!("AUTHENTICATE PLAIN {token}")).await
            } else {
                self.authenticate_in_two_steps(&token).await
            }
        } else if self.has_capability("LOGINDISABLED") {
            return Err(ImapError::AuthFailed(
                "the server does not allow logging in with a password here".into(),
            ));
        } else {
            let user = protocol::quoted(username);
            let pass = protocol::quoted(password.expose_secret());
            match (user, pass) {
                (Some(user), Some(pass)) => self.command(&format!("LOGIN {user} {pass}")).await,
                _ => {
                    return Err(ImapError::AuthFailed(
                        "the server offers only LOGIN, which cannot carry this user name or password (non-ASCII)".into(),
                    ));
                }
            }
        };
        match result {
            Ok((_, status)) => {
                self.note_capabilities(&status.code);
                if status.code.first().is_none_or(|c| c != "CAPABILITY") {
                    self.refresh_capabilities().await?;
                }
                Ok(())
            }
            // Only these say the login itself is wrong (RFC 5530); any other
            // code (UNAVAILABLE, LIMIT, INUSE, SERVERBUG...) is the server's
            // trouble now, and the person's password is not condemned for it.
            Err(ImapError::Refused(status)) => match status.code_name() {
                None
                | Some("AUTHENTICATIONFAILED")
                | Some("AUTHORIZATIONFAILED")
                | Some("EXPIRED") => Err(ImapError::AuthFailed(
                    "the server refused the user name or password".into(),
                )),
                Some(_) => Err(ImapError::Unavailable(
                    "the server could not log in right now".into(),
                )),
            },
            Err(error) => Err(error),
        }
    }

    async fn authenticate_in_two_steps(
        &mut self,
        token: &str,
    ) -> Result<(Vec<Response>, StatusText), ImapError> {
        let tag = self.send_tagged("AUTHENTICATE PLAIN").await?;
        self.wait_for_continuation(&tag).await?;
        self.write_all(format!("{token}\r\n").as_bytes()).await?;
        self.finish(&tag).await
    }

    /// Every folder, with special-use attributes where the server has them
    /// (RFC 6154).
    pub async fn folders(&mut self) -> Result<Vec<Folder>, ImapError> {
        let command = if self.has_capability("SPECIAL-USE") {
            "LIST \"\" \"*\" RETURN (SPECIAL-USE)"
        } else {
            "LIST \"\" \"*\""
        };
        let (responses, _) = self.command(command).await?;
        Ok(responses
            .into_iter()
            .filter_map(|response| match response {
                Response::Data { kind, values } if kind == "LIST" => {
                    let attributes = match values.first() {
                        Some(Value::List(items)) => {
                            items.iter().filter_map(Value::as_text).collect()
                        }
                        _ => Vec::new(),
                    };
                    let name = values.get(2).and_then(Value::as_text)?;
                    Some(Folder { name, attributes })
                }
                _ => None,
            })
            .collect())
    }

    /// Select `folder` (read-write); its UIDVALIDITY and UIDNEXT.
    pub async fn select(&mut self, folder: &str) -> Result<FolderState, ImapError> {
        let (responses, _) = self
            .command(&format!("SELECT {}", quote_folder(folder)?))
            .await?;
        let mut state = FolderState {
            uid_validity: 0,
            uid_next: 0,
            exists: 0,
        };
        for response in responses {
            match response {
                Response::UntaggedStatus(status) => match status.code.as_slice() {
                    [name, value] if name == "UIDVALIDITY" => {
                        state.uid_validity = value.parse().unwrap_or(0);
                    }
                    [name, value] if name == "UIDNEXT" => {
                        state.uid_next = value.parse().unwrap_or(0);
                    }
                    _ => {}
                },
                Response::Numbered { number, kind, .. } if kind == "EXISTS" => {
                    state.exists = number;
                }
                _ => {}
            }
        }
        if state.uid_validity == 0 {
            return Err(ImapError::Protocol(
                "the server gave no UIDVALIDITY for the folder".into(),
            ));
        }
        if state.uid_next == 0 {
            // Optional before IMAP4rev2: the highest UID + 1 says the same.
            let (responses, _) = self.command("UID SEARCH ALL").await?;
            state.uid_next = search_results(&responses).into_iter().max().unwrap_or(0) + 1;
        }
        Ok(state)
    }

    /// The selected folder's UIDs matching `criteria` (`UID 7:*`,
    /// `HEADER Message-ID "<x@y>"`, `SINCE 1-Jan-2027`).
    pub async fn uid_search(&mut self, criteria: &str) -> Result<Vec<u32>, ImapError> {
        let (responses, _) = self.command(&format!("UID SEARCH {criteria}")).await?;
        let mut uids = search_results(&responses);
        uids.sort_unstable();
        Ok(uids)
    }

    /// `UID FETCH uids (UID FLAGS INTERNALDATE <body>)`; `body` is
    /// `BODY.PEEK[]` (the whole message) or `BODY.PEEK[HEADER]`, or
    /// nothing. Messages are answered in the server's order.
    pub async fn uid_fetch(&mut self, uids: &str, body: &str) -> Result<Vec<Fetched>, ImapError> {
        let items = if body.is_empty() {
            "(UID FLAGS INTERNALDATE)".to_owned()
        } else {
            format!("(UID FLAGS INTERNALDATE {body})")
        };
        let (responses, _) = self.command(&format!("UID FETCH {uids} {items}")).await?;
        let mut fetched = Vec::new();
        for response in responses {
            let Response::Numbered { kind, values, .. } = response else {
                continue;
            };
            if kind != "FETCH" {
                continue;
            }
            let mut message = Fetched {
                uid: 0,
                flags: Vec::new(),
                internal_date: None,
                body: None,
            };
            for (name, value) in protocol::fetch_items(&values) {
                match name.as_str() {
                    "UID" => message.uid = value.as_number().unwrap_or(0),
                    "FLAGS" => {
                        if let Value::List(flags) = value {
                            message.flags = flags.iter().filter_map(Value::as_text).collect();
                        }
                    }
                    "INTERNALDATE" => {
                        message.internal_date =
                            value.as_text().and_then(|d| parse_internal_date(&d));
                    }
                    name if name.starts_with("BODY[") => {
                        if let Value::Bytes(bytes) = value {
                            message.body = Some(bytes);
                        }
                    }
                    _ => {}
                }
            }
            // An unsolicited FETCH (a flag change) has no UID unless asked.
            if message.uid != 0 {
                fetched.push(message);
            }
        }
        Ok(fetched)
    }

    /// Append `message` to `folder` with `flags`; the new message's
    /// `(UIDVALIDITY, UID)` when the server says (UIDPLUS).
    pub async fn append(
        &mut self,
        folder: &str,
        flags: &[&str],
        message: &[u8],
    ) -> Result<Option<(u32, u32)>, ImapError> {
        let non_sync = self.has_capability("LITERAL+");
        let command = format!(
            "APPEND {} ({}) {{{}{}}}",
            quote_folder(folder)?,
            flags.join(" "),
            message.len(),
            if non_sync { "+" } else { "" }
        );
        let tag = self.send_tagged(&command).await?;
        if !non_sync {
            self.wait_for_continuation(&tag).await?;
        }
        self.write_all(message).await?;
        self.write_all(b"\r\n").await?;
        let (_, status) = self.finish(&tag).await?;
        Ok(match status.code.as_slice() {
            [name, validity, uid] if name == "APPENDUID" => {
                validity.parse().ok().zip(uid.parse().ok())
            }
            _ => None,
        })
    }

    /// Add (`add`) or remove flags of `uid` in the selected folder.
    pub async fn change_flags(
        &mut self,
        uid: u32,
        add: bool,
        flags: &[&str],
    ) -> Result<(), ImapError> {
        let sign = if add { '+' } else { '-' };
        self.command(&format!(
            "UID STORE {uid} {sign}FLAGS.SILENT ({})",
            flags.join(" ")
        ))
        .await
        .map(drop)
    }

    /// Mark `uid` of the selected folder deleted and expunge it (only it:
    /// where the server has UIDPLUS). A bare EXPUNGE would also remove what
    /// the person marked deleted, so without UIDPLUS the message stays
    /// marked, for their client to expunge.
    pub async fn delete(&mut self, uid: u32) -> Result<(), ImapError> {
        self.change_flags(uid, true, &["\\Deleted"]).await?;
        if self.has_capability("UIDPLUS") {
            self.command(&format!("UID EXPUNGE {uid}")).await?;
        }
        Ok(())
    }

    /// Wait in IDLE (RFC 2177) up to `wait` for the selected folder to
    /// change.
    pub async fn idle(&mut self, wait: Duration) -> Result<IdleEnd, ImapError> {
        if !self.has_capability("IDLE") {
            return Err(ImapError::Protocol("the server does not offer IDLE".into()));
        }
        let tag = self.send_tagged("IDLE").await?;
        let mut changed = self.wait_for_continuation(&tag).await?;
        let deadline = tokio::time::Instant::now() + wait;
        while !changed {
            let response = match tokio::time::timeout_at(
                deadline,
                read_response_from(&mut self.io, &mut self.buffer),
            )
            .await
            {
                Err(_) => break,
                Ok(response) => response?,
            };
            match response {
                Response::Numbered { kind, .. } if kind == "EXISTS" || kind == "EXPUNGE" => {
                    changed = true;
                }
                Response::UntaggedStatus(StatusText {
                    status: Status::Bye,
                    ..
                }) => return Err(ImapError::Closed),
                // The server ended IDLE itself: no DONE to send.
                Response::Tagged { tag: got, status } if got == tag => {
                    return match status.status {
                        Status::Ok => Ok(IdleEnd::Quiet),
                        _ => Err(ImapError::Refused(status)),
                    };
                }
                _ => {}
            }
        }
        self.write_all(b"DONE\r\n").await?;
        let (after, _) = self.finish(&tag).await?;
        // Mail announced between DONE and the end of IDLE counts too.
        changed |= after.iter().any(|response| {
            matches!(response, Response::Numbered { kind, .. } if kind == "EXISTS" || kind == "EXPUNGE")
        });
        Ok(if changed {
            IdleEnd::Changed
        } else {
            IdleEnd::Quiet
        })
    }

    /// Wait for `+` after a command that sends more (a literal, a SASL
    /// answer, IDLE); untagged data before it is allowed (RFC 3501).
    /// Whether mail arrived meanwhile (EXISTS).
    async fn wait_for_continuation(&mut self, tag: &str) -> Result<bool, ImapError> {
        let mut changed = false;
        loop {
            match self.read_response().await? {
                Response::Continue(_) => return Ok(changed),
                Response::Tagged { tag: got, status } if got == tag => {
                    return Err(ImapError::Refused(status));
                }
                Response::UntaggedStatus(StatusText {
                    status: Status::Bye,
                    ..
                }) => return Err(ImapError::Closed),
                Response::Numbered { kind, .. } if kind == "EXISTS" => changed = true,
                _ => {}
            }
        }
    }

    /// Say goodbye (errors ignored: the connection is done either way).
    pub async fn logout(mut self) {
        let _ = self.command("LOGOUT").await;
    }

    async fn refresh_capabilities(&mut self) -> Result<(), ImapError> {
        let (responses, _) = self.command("CAPABILITY").await?;
        self.capabilities.clear();
        for response in responses {
            if let Response::Data { kind, values } = response
                && kind == "CAPABILITY"
            {
                self.capabilities.extend(
                    values
                        .iter()
                        .filter_map(Value::as_text)
                        .map(|c| c.to_ascii_uppercase()),
                );
            }
        }
        Ok(())
    }

    fn note_capabilities(&mut self, code: &[String]) {
        if code.first().is_some_and(|c| c == "CAPABILITY") {
            self.capabilities = code[1..].iter().map(|c| c.to_ascii_uppercase()).collect();
        }
    }

    /// Run one command to its tagged end; a `NO` or `BAD` is
    /// [`ImapError::Refused`]. Commands are never logged (a login holds a
    /// password).
    pub async fn command(&mut self, text: &str) -> Result<(Vec<Response>, StatusText), ImapError> {
        let tag = self.send_tagged(text).await?;
        self.finish(&tag).await
    }

    async fn send_tagged(&mut self, text: &str) -> Result<String, ImapError> {
        let tag = format!("m{}", self.next_tag);
        self.next_tag += 1;
        self.write_all(format!("{tag} {text}\r\n").as_bytes())
            .await?;
        Ok(tag)
    }

    async fn finish(&mut self, tag: &str) -> Result<(Vec<Response>, StatusText), ImapError> {
        let deadline = tokio::time::Instant::now() + COMMAND_DEADLINE;
        let mut untagged = Vec::new();
        let mut bytes = 0usize;
        loop {
            let (response, size) = match tokio::time::timeout_at(deadline, self.read_sized()).await
            {
                Ok(read) => read?,
                Err(_) => return Err(ImapError::Timeout),
            };
            bytes += size;
            if bytes > MAX_COMMAND_BYTES {
                return Err(ImapError::Protocol(
                    "the answer to one command is too large".into(),
                ));
            }
            match response {
                Response::Tagged { tag: got, status } if got == tag => {
                    return match status.status {
                        Status::Ok => Ok((untagged, status)),
                        _ => Err(ImapError::Refused(status)),
                    };
                }
                Response::UntaggedStatus(StatusText {
                    status: Status::Bye,
                    ..
                }) => {
                    // A BYE before LOGOUT's OK is how LOGOUT ends; any other
                    // is the server closing.
                    untagged.push(Response::UntaggedStatus(StatusText {
                        status: Status::Bye,
                        code: Vec::new(),
                        text: String::new(),
                    }));
                }
                other => untagged.push(other),
            }
        }
    }

    async fn read_response(&mut self) -> Result<Response, ImapError> {
        self.read_sized().await.map(|(response, _)| response)
    }

    /// One response and its size, within the exchange timeout.
    async fn read_sized(&mut self) -> Result<(Response, usize), ImapError> {
        match tokio::time::timeout(
            self.timeout,
            read_sized_from(&mut self.io, &mut self.buffer),
        )
        .await
        {
            Ok(result) => result,
            Err(_) => Err(ImapError::Timeout),
        }
    }

    async fn write_all(&mut self, bytes: &[u8]) -> Result<(), ImapError> {
        let write = async {
            self.io.write_all(bytes).await?;
            self.io.flush().await
        };
        match tokio::time::timeout(self.timeout, write).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(ImapError::Closed),
            Err(_) => Err(ImapError::Timeout),
        }
    }
}

async fn read_response_from(
    io: &mut Box<dyn Io>,
    buffer: &mut Vec<u8>,
) -> Result<Response, ImapError> {
    read_sized_from(io, buffer)
        .await
        .map(|(response, _)| response)
}

async fn read_sized_from(
    io: &mut Box<dyn Io>,
    buffer: &mut Vec<u8>,
) -> Result<(Response, usize), ImapError> {
    loop {
        if let Some(length) = protocol::complete_length(buffer)
            .map_err(|error| ImapError::Protocol(error.to_string()))?
        {
            let bytes: Vec<u8> = buffer.drain(..length).collect();
            return protocol::parse_response(&bytes)
                .map(|response| (response, length))
                .map_err(|error| ImapError::Protocol(error.to_string()));
        }
        let mut chunk = [0u8; 16 * 1024];
        let read = io.read(&mut chunk).await.map_err(|_| ImapError::Closed)?;
        if read == 0 {
            return Err(ImapError::Closed);
        }
        buffer.extend_from_slice(&chunk[..read]);
    }
}

async fn handshake<S: AsyncRead + AsyncWrite + Unpin + Send>(
    io: S,
    endpoint: &ServerEndpoint,
    tls: &MailTls,
    timeout: Duration,
) -> Result<tokio_rustls::client::TlsStream<S>, ImapError> {
    let name = rustls::pki_types::ServerName::try_from(endpoint.host().to_owned())
        .map_err(|_| ImapError::Tls(format!("{} is not a name TLS can check", endpoint.host())))?;
    let connector = tokio_rustls::TlsConnector::from(tls.client_config());
    match tokio::time::timeout(timeout, connector.connect(name, io)).await {
        Ok(Ok(stream)) => Ok(stream),
        Ok(Err(error)) => Err(ImapError::Tls(format!(
            "{endpoint}: {}",
            describe_handshake_failure(&error, endpoint.host())
        ))),
        Err(_) => Err(ImapError::Tls(format!(
            "{endpoint}: the TLS handshake did not finish within {} s (does the port speak TLS?)",
            timeout.as_secs()
        ))),
    }
}

fn describe_connect_error(error: &std::io::Error) -> &'static str {
    match error.kind() {
        std::io::ErrorKind::ConnectionRefused => "connection refused",
        std::io::ErrorKind::TimedOut => "timed out",
        // The name was resolved before (`Network::resolve`): only the
        // connection itself can fail here.
        _ => "network error",
    }
}

fn search_results(responses: &[Response]) -> Vec<u32> {
    responses
        .iter()
        .filter_map(|response| match response {
            Response::Data { kind, values } if kind == "SEARCH" => Some(values),
            _ => None,
        })
        .flatten()
        .filter_map(Value::as_number)
        .collect()
}

/// A folder name as a command argument. Names are sent as the server gave
/// them (modified UTF-7 stays encoded); Mailwright never invents non-ASCII
/// folder names.
fn quote_folder(name: &str) -> Result<String, ImapError> {
    protocol::quoted(name).ok_or_else(|| ImapError::Protocol("a folder name cannot be sent".into()))
}

/// `INTERNALDATE` (`"17-Jul-1996 02:44:25 -0700"`).
fn parse_internal_date(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_str(text.trim(), "%d-%b-%Y %H:%M:%S %z")
        .ok()
        .map(|date| date.with_timezone(&Utc))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_dates() {
        assert_eq!(
            parse_internal_date(" 7-Jul-1996 02:44:25 -0700").map(|d| d.to_rfc3339()),
            Some("1996-07-07T09:44:25+00:00".to_owned())
        );
    }
}
