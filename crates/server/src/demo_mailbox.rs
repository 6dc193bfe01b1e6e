//! The demo's local test mailbox: a private Dovecot (IMAP with IDLE and
//! SPECIAL-USE, LMTP) in a temporary folder, and a small SMTP submission
//! server of the demo's own that delivers into it by LMTP, both on
//! 127.0.0.1 with certificates from a throwaway CA (made with `openssl`).
//! Started only when Dovecot is installed; otherwise the reason, which the
//! demo shows next to the IMAP form. Not for production: one mailbox, one
//! password, nothing kept between runs.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// The demo mailbox's address and password.
pub const ADDRESS: &str = "you@imap.demo.mailwright.test";
pub const PASSWORD: &str = "demo-imap-password";
/// How to get Dovecot, for people whose machine has none.
pub const INSTALL_HINT: &str = "Dovecot is not installed, so the demo has no local IMAP mailbox: on Debian or Ubuntu run `sudo apt-get install dovecot-imapd dovecot-lmtpd` and start the demo again.";
/// The largest message the SMTP server takes.
const MAX_MESSAGE: usize = 10 * 1024 * 1024;

/// A running local mailbox; stopped when dropped.
pub struct LocalMailbox {
    dir: PathBuf,
    dovecot: Child,
    smtp: tokio::task::JoinHandle<()>,
    pub imap_port: u16,
    pub smtp_port: u16,
    lmtp_port: u16,
}

impl std::fmt::Debug for LocalMailbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalMailbox")
            .field("imap_port", &self.imap_port)
            .field("smtp_port", &self.smtp_port)
            .finish_non_exhaustive()
    }
}

impl LocalMailbox {
    /// Start Dovecot and the SMTP server; the reason when they cannot run.
    pub async fn start() -> Result<LocalMailbox, String> {
        let dovecot = ["/usr/sbin/dovecot", "/usr/local/sbin/dovecot"]
            .into_iter()
            .map(PathBuf::from)
            .find(|path| path.exists())
            .ok_or_else(|| INSTALL_HINT.to_owned())?;
        let failed = |what: &str, error: String| {
            format!("the demo's mailbox could not start: {what} ({error})")
        };
        // A name nobody can guess, made here (create_dir fails on one that
        // exists): another local user cannot prepare it first.
        let dir = std::env::temp_dir().join(format!(
            "mailwright-demo-mail-{}",
            crate::auth::secrets::random_token(12)
        ));
        std::fs::create_dir(&dir).map_err(|e| failed("its folder", e.to_string()))?;
        for sub in ["tls", "run", "state", "mail"] {
            std::fs::create_dir(dir.join(sub)).map_err(|e| failed("its folder", e.to_string()))?;
        }
        make_certificates(&dir.join("tls")).map_err(|e| failed("openssl", e))?;
        let account = Account::current().map_err(|e| failed("its user", e))?;
        account.own(&dir).map_err(|e| failed("its folder", e))?;
        let (imap_port, lmtp_port, smtp_port) = (free_port()?, free_port()?, free_port()?);
        std::fs::write(
            dir.join("users"),
            format!("{ADDRESS}:{{PLAIN}}{PASSWORD}::::::\n"),
        )
        .map_err(|e| failed("its users file", e.to_string()))?;
        std::fs::write(
            dir.join("dovecot.conf"),
            config(&dir, &account, imap_port, lmtp_port),
        )
        .map_err(|e| failed("its configuration", e.to_string()))?;
        // Under setpriv's parent-death signal where it exists, so a demo
        // killed with SIGKILL does not leave its Dovecot running.
        let mut command = match which("setpriv") {
            Some(setpriv) => {
                let mut command = Command::new(setpriv);
                command.args(["--pdeathsig", "TERM"]).arg(&dovecot);
                command
            }
            None => Command::new(&dovecot),
        };
        let child = command
            .arg("-F")
            .arg("-c")
            .arg(dir.join("dovecot.conf"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| failed("dovecot", e.to_string()))?;
        let tls = server_tls(&dir.join("tls")).map_err(|e| failed("its certificate", e))?;
        let listener = TcpListener::bind(("127.0.0.1", smtp_port))
            .await
            .map_err(|e| failed("its SMTP port", e.to_string()))?;
        let smtp = tokio::spawn(serve_smtp(listener, tls, lmtp_port));
        let mut mailbox = LocalMailbox {
            dir,
            dovecot: child,
            smtp,
            imap_port,
            smtp_port,
            lmtp_port,
        };
        // Ready when both of Dovecot's ports answer.
        let give_up = std::time::Instant::now() + Duration::from_secs(15);
        loop {
            let imap = TcpStream::connect(("127.0.0.1", imap_port)).await.is_ok();
            let lmtp = TcpStream::connect(("127.0.0.1", lmtp_port)).await.is_ok();
            if imap && lmtp {
                return Ok(mailbox);
            }
            if let Ok(Some(status)) = mailbox.dovecot.try_wait() {
                let log =
                    std::fs::read_to_string(mailbox.dir.join("dovecot.log")).unwrap_or_default();
                let last = log.lines().last().unwrap_or_default().to_owned();
                return Err(failed(
                    "dovecot",
                    format!("it exited with {status}: {last}"),
                ));
            }
            if std::time::Instant::now() > give_up {
                return Err(failed("dovecot", "it did not listen within 15 s".into()));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The CA that signed the servers' certificates (the demo trusts it).
    pub fn ca(&self) -> PathBuf {
        self.dir.join("tls/ca.pem")
    }

    /// Put `raw` into the mailbox's inbox (through Dovecot's LMTP, as a
    /// mail server delivering it would).
    pub async fn deliver(&self, from: &str, raw: &[u8]) -> Result<(), String> {
        lmtp_deliver(self.lmtp_port, from, &[ADDRESS.to_owned()], raw).await
    }
}

impl Drop for LocalMailbox {
    fn drop(&mut self) {
        self.smtp.abort();
        // SIGTERM: the master stops its children too (SIGKILL would not).
        let _ = Command::new("kill")
            .args(["-TERM", &self.dovecot.id().to_string()])
            .status();
        let give_up = std::time::Instant::now() + Duration::from_secs(5);
        while matches!(self.dovecot.try_wait(), Ok(None)) && std::time::Instant::now() < give_up {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.dovecot.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `program`'s path on `PATH`, if any.
fn which(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join(program))
        .find(|path| path.is_file())
}

fn free_port() -> Result<u16, String> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .map_err(|error| format!("no free port ({error})"))
}

/// Who Dovecot's processes run as. As root, Dovecot's own users (it will
/// not give mail to root); otherwise the person running the demo.
struct Account {
    internal_user: String,
    login_user: String,
    mail_uid: u32,
    mail_gid: u32,
    root: bool,
}

impl Account {
    fn current() -> Result<Account, String> {
        let id = |args: &[&str]| -> Result<String, String> {
            let output = Command::new("id")
                .args(args)
                .output()
                .map_err(|error| error.to_string())?;
            Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
        };
        let uid: u32 = id(&["-u"])?
            .parse()
            .map_err(|_| "`id -u` is not a number")?;
        if uid == 0 {
            let mail_uid = id(&["-u", "dovecot"])?
                .parse()
                .map_err(|_| "Dovecot's user `dovecot` is missing")?;
            let mail_gid = id(&["-g", "dovecot"])?
                .parse()
                .map_err(|_| "Dovecot's user `dovecot` is missing")?;
            return Ok(Account {
                internal_user: "dovecot".into(),
                login_user: "dovenull".into(),
                mail_uid,
                mail_gid,
                root: true,
            });
        }
        let name = id(&["-un"])?;
        let gid: u32 = id(&["-g"])?
            .parse()
            .map_err(|_| "`id -g` is not a number")?;
        Ok(Account {
            internal_user: name.clone(),
            login_user: name,
            mail_uid: uid,
            mail_gid: gid,
            root: false,
        })
    }

    /// As root, the folder is readable by Dovecot's users and the mail
    /// folder theirs.
    fn own(&self, dir: &Path) -> Result<(), String> {
        if !self.root {
            return Ok(());
        }
        let run = |args: &[&str]| {
            Command::new(args[0])
                .args(&args[1..])
                .status()
                .map_err(|error| error.to_string())
                .and_then(|status| {
                    status
                        .success()
                        .then_some(())
                        .ok_or_else(|| format!("{} failed", args[0]))
                })
        };
        let dir_text = dir.display().to_string();
        run(&["chmod", "0755", &dir_text])?;
        let owner = format!("{}:{}", self.mail_uid, self.mail_gid);
        run(&["chown", &owner, &dir.join("mail").display().to_string()])
    }
}

fn config(dir: &Path, account: &Account, imap_port: u16, lmtp_port: u16) -> String {
    let dir = dir.display();
    format!(
        "instance_name = mailwright-demo-{pid}
base_dir = {dir}/run
state_dir = {dir}/state
log_path = {dir}/dovecot.log
protocols = imap lmtp
listen = 127.0.0.1
ssl = required
ssl_cert = <{dir}/tls/localhost.pem
ssl_key = <{dir}/tls/localhost.key
default_internal_user = {internal}
default_login_user = {login}
auth_mechanisms = plain login
passdb {{
  driver = passwd-file
  args = scheme=PLAIN {dir}/users
}}
userdb {{
  driver = passwd-file
  args = {dir}/users
}}
mail_uid = {uid}
mail_gid = {gid}
first_valid_uid = {uid}
first_valid_gid = {gid}
mail_home = {dir}/mail/%u
mail_location = maildir:~/Maildir
namespace inbox {{
  inbox = yes
  separator = /
  mailbox Drafts {{
    special_use = \\Drafts
    auto = subscribe
  }}
  mailbox Sent {{
    special_use = \\Sent
    auto = subscribe
  }}
  mailbox Trash {{
    special_use = \\Trash
    auto = subscribe
  }}
}}
protocol lmtp {{
  postmaster_address = postmaster@imap.demo.mailwright.test
}}
service imap-login {{
  inet_listener imap {{
    port = 0
  }}
  inet_listener imaps {{
    port = {imap_port}
    ssl = yes
  }}
}}
service lmtp {{
  inet_listener lmtp {{
    address = 127.0.0.1
    port = {lmtp_port}
  }}
}}
",
        pid = std::process::id(),
        internal = account.internal_user,
        login = account.login_user,
        uid = account.mail_uid,
        gid = account.mail_gid,
    )
}

/// A throwaway CA and a certificate for `localhost` and 127.0.0.1 signed by
/// it (EC P-256), with `openssl`.
fn make_certificates(tls: &Path) -> Result<(), String> {
    let run = |args: &[&str]| -> Result<(), String> {
        let output = Command::new("openssl")
            .args(args)
            .current_dir(tls)
            .output()
            .map_err(|error| format!("openssl: {error}"))?;
        if output.status.success() {
            Ok(())
        } else {
            Err(String::from_utf8_lossy(&output.stderr)
                .lines()
                .last()
                .unwrap_or_default()
                .to_owned())
        }
    };
    run(&[
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "30",
        "-subj",
        "/CN=Mailwright demo CA",
    ])?;
    run(&[
        "req",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        "localhost.key",
        "-out",
        "localhost.csr",
        "-subj",
        "/CN=localhost",
    ])?;
    std::fs::write(
        tls.join("san.ext"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
    )
    .map_err(|error| error.to_string())?;
    run(&[
        "x509",
        "-req",
        "-in",
        "localhost.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "localhost.pem",
        "-days",
        "30",
        "-extfile",
        "san.ext",
    ])?;
    // Dovecot's processes read the key as its own users.
    let _ = std::fs::set_permissions(
        tls.join("localhost.key"),
        std::os::unix::fs::PermissionsExt::from_mode(0o644),
    );
    Ok(())
}

fn server_tls(tls: &Path) -> Result<Arc<rustls::ServerConfig>, String> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certificates = CertificateDer::pem_file_iter(tls.join("localhost.pem"))
        .map_err(|error| error.to_string())?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| error.to_string())?;
    let key = PrivateKeyDer::from_pem_file(tls.join("localhost.key"))
        .map_err(|error| error.to_string())?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|error| error.to_string())?
        .with_no_client_auth()
        .with_single_cert(certificates, key)
        .map_err(|error| error.to_string())?;
    Ok(Arc::new(config))
}

/// SMTP submission with implicit TLS: AUTH PLAIN or LOGIN as the demo
/// mailbox, mail to the demo mailbox's domain delivered by LMTP.
async fn serve_smtp(listener: TcpListener, tls: Arc<rustls::ServerConfig>, lmtp_port: u16) {
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            continue;
        };
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            let session = async {
                let stream = acceptor.accept(tcp).await.map_err(|e| e.to_string())?;
                smtp_session(stream, lmtp_port).await
            };
            // A session lasts at most 5 minutes (a stuck client).
            if let Ok(Err(error)) = tokio::time::timeout(Duration::from_secs(300), session).await {
                tracing::debug!(error = %error, "demo SMTP session ended");
            }
        });
    }
}

async fn smtp_session<S: AsyncRead + AsyncWrite + Unpin>(
    stream: S,
    lmtp_port: u16,
) -> Result<(), String> {
    let mut stream = BufReader::new(stream);
    reply(&mut stream, "220 localhost Mailwright demo ESMTP").await?;
    let (mut authenticated, mut from, mut to) = (false, None::<String>, Vec::<String>::new());
    loop {
        let line = read_line(&mut stream).await?;
        let upper = line.to_ascii_uppercase();
        let verb = upper
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_owned();
        match verb.as_str() {
            "EHLO" | "HELO" => {
                reply(
                    &mut stream,
                    "250-localhost\r\n250-AUTH PLAIN LOGIN\r\n250 SIZE 10485760",
                )
                .await?
            }
            "AUTH" => {
                let words: Vec<&str> = line.split_whitespace().collect();
                let credentials = match words.get(1).map(|w| w.to_ascii_uppercase()).as_deref() {
                    Some("PLAIN") => {
                        let token = match words.get(2) {
                            Some(token) => (*token).to_owned(),
                            None => {
                                reply(&mut stream, "334 ").await?;
                                read_line(&mut stream).await?
                            }
                        };
                        decode(&token).map(|plain| {
                            let parts: Vec<&str> = plain.split('\0').collect();
                            (
                                parts.get(1).unwrap_or(&"").to_string(),
                                parts.get(2).unwrap_or(&"").to_string(),
                            )
                        })
                    }
                    Some("LOGIN") => {
                        reply(&mut stream, "334 VXNlcm5hbWU6").await?;
                        let user = decode(&read_line(&mut stream).await?);
                        reply(&mut stream, "334 UGFzc3dvcmQ6").await?;
                        let pass = decode(&read_line(&mut stream).await?);
                        user.zip(pass)
                    }
                    _ => None,
                };
                authenticated = credentials.is_some_and(|(user, pass)| {
                    user.eq_ignore_ascii_case(ADDRESS) && pass == PASSWORD
                });
                reply(
                    &mut stream,
                    if authenticated {
                        "235 2.7.0 Authenticated"
                    } else {
                        "535 5.7.8 Authentication failed"
                    },
                )
                .await?;
            }
            "MAIL" if !authenticated => {
                reply(&mut stream, "530 5.7.0 Authentication required").await?
            }
            "MAIL" => {
                from = Some(address_in(&line));
                to.clear();
                reply(&mut stream, "250 OK").await?;
            }
            "RCPT" => {
                let rcpt = address_in(&line);
                if rcpt.eq_ignore_ascii_case(ADDRESS) {
                    to.push(rcpt);
                    reply(&mut stream, "250 OK").await?;
                } else {
                    reply(
                        &mut stream,
                        "550 5.1.1 The demo delivers only to its own mailbox",
                    )
                    .await?;
                }
            }
            "DATA" if from.is_none() || to.is_empty() => {
                reply(&mut stream, "503 5.5.1 MAIL and RCPT first").await?
            }
            "DATA" => {
                reply(&mut stream, "354 End with <CRLF>.<CRLF>").await?;
                let message = read_data(&mut stream).await?;
                let sender = from.take().unwrap_or_default();
                match lmtp_deliver(lmtp_port, &sender, &to, &message).await {
                    Ok(()) => reply(&mut stream, "250 2.0.0 Delivered").await?,
                    Err(error) => reply(&mut stream, &format!("451 4.3.0 {error}")).await?,
                }
                to.clear();
            }
            "RSET" => {
                from = None;
                to.clear();
                reply(&mut stream, "250 OK").await?;
            }
            "NOOP" => reply(&mut stream, "250 OK").await?,
            "QUIT" => {
                reply(&mut stream, "221 Bye").await?;
                return Ok(());
            }
            _ => reply(&mut stream, "502 5.5.2 Not implemented").await?,
        }
    }
}

async fn reply<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut BufReader<S>,
    text: &str,
) -> Result<(), String> {
    let writer = stream.get_mut();
    writer
        .write_all(format!("{text}\r\n").as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    writer.flush().await.map_err(|e| e.to_string())
}

async fn read_line<S: AsyncRead + Unpin>(stream: &mut BufReader<S>) -> Result<String, String> {
    let mut line = Vec::new();
    let read = (&mut *stream)
        .take(4096)
        .read_until(b'\n', &mut line)
        .await
        .map_err(|e| e.to_string())?;
    if read == 0 {
        return Err("closed".into());
    }
    Ok(String::from_utf8_lossy(&line).trim_end().to_owned())
}

/// The message of DATA, dot-unstuffed, up to [`MAX_MESSAGE`].
async fn read_data<S: AsyncRead + Unpin>(stream: &mut BufReader<S>) -> Result<Vec<u8>, String> {
    let mut message = Vec::new();
    loop {
        let mut line = Vec::new();
        let read = (&mut *stream)
            .take(64 * 1024)
            .read_until(b'\n', &mut line)
            .await
            .map_err(|e| e.to_string())?;
        if read == 0 {
            return Err("closed during DATA".into());
        }
        if line == b".\r\n" || line == b".\n" {
            return Ok(message);
        }
        let line = line.strip_prefix(b".").unwrap_or(&line);
        if message.len() + line.len() > MAX_MESSAGE {
            return Err("message too large".into());
        }
        message.extend_from_slice(line);
    }
}

fn decode(token: &str) -> Option<String> {
    base64::engine::general_purpose::STANDARD
        .decode(token.trim())
        .ok()
        .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
}

/// The address of `MAIL FROM:<a@b>` or `RCPT TO:<a@b>`.
fn address_in(line: &str) -> String {
    line.split_once('<')
        .and_then(|(_, rest)| rest.split_once('>'))
        .map(|(address, _)| address.trim().to_owned())
        .unwrap_or_default()
}

/// Send `send` (if any), then read one reply, which must start with `code`
/// (multi-line replies end with "CODE " and its text).
async fn expect(
    stream: &mut BufReader<TcpStream>,
    send: Option<&[u8]>,
    code: &str,
) -> Result<(), String> {
    if let Some(bytes) = send {
        stream
            .get_mut()
            .write_all(bytes)
            .await
            .map_err(|e| e.to_string())?;
    }
    loop {
        let line = read_line(stream).await?;
        if !line.starts_with(code) {
            return Err(format!("LMTP answered `{line}`"));
        }
        if line.as_bytes().get(3) != Some(&b'-') {
            return Ok(());
        }
    }
}

/// Deliver `raw` to `to` through Dovecot's LMTP on `port`.
async fn lmtp_deliver(port: u16, from: &str, to: &[String], raw: &[u8]) -> Result<(), String> {
    let stream = TcpStream::connect(("127.0.0.1", port))
        .await
        .map_err(|error| format!("Dovecot's LMTP is not answering ({error})"))?;
    let mut stream = BufReader::new(stream);
    expect(&mut stream, None, "220").await?;
    expect(&mut stream, Some(b"LHLO localhost\r\n"), "250").await?;
    expect(
        &mut stream,
        Some(format!("MAIL FROM:<{from}>\r\n").as_bytes()),
        "250",
    )
    .await?;
    for recipient in to {
        expect(
            &mut stream,
            Some(format!("RCPT TO:<{recipient}>\r\n").as_bytes()),
            "250",
        )
        .await?;
    }
    expect(&mut stream, Some(b"DATA\r\n"), "354").await?;
    let mut body = Vec::with_capacity(raw.len() + 16);
    for line in raw.split_inclusive(|byte| *byte == b'\n') {
        if line.starts_with(b".") {
            body.push(b'.');
        }
        body.extend_from_slice(line);
    }
    if !body.ends_with(b"\r\n") {
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(b".\r\n");
    // One answer per recipient.
    stream
        .get_mut()
        .write_all(&body)
        .await
        .map_err(|e| e.to_string())?;
    for _ in to {
        expect(&mut stream, None, "250").await?;
    }
    let _ = stream.get_mut().write_all(b"QUIT\r\n").await;
    Ok(())
}
