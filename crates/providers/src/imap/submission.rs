//! SMTP submission (RFC 6409) for a mailbox connected by password: the
//! same server checks as IMAP's (TLS roots, STARTTLS or implicit TLS), a
//! login, and raw messages sent as written.

use std::time::Duration;

use domain::mail::Placement;
use domain::mail_server::{Security, ServerEndpoint};
use lettre::address::{Address, Envelope};
use lettre::transport::smtp::PoolConfig;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{Certificate, CertificateStore, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use secrecy::ExposeSecret;

use super::message::{to_mail, without_bcc};
use super::{Network, ServerAccount};
use crate::google::message::{address_list, parse_mailbox};

/// What went wrong talking to the submission server.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubmissionError {
    #[error("{0}")]
    Unreachable(String),
    #[error("{0}")]
    Tls(String),
    #[error("the SMTP server refused the user name or password")]
    AuthFailed,
    /// The server refused the message for good (5xx).
    #[error("the SMTP server refused the message ({0})")]
    Refused(String),
    /// The server deferred (4xx) or is unavailable: try again later.
    #[error("the SMTP server is unavailable right now ({0})")]
    Unavailable(String),
    /// The connection broke after the message was handed over: it may or
    /// may not have been accepted.
    #[error("the connection to the SMTP server broke before it confirmed the message")]
    Unconfirmed,
}

/// A submission server and the login for it.
pub struct Submission {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    endpoint: ServerEndpoint,
}

impl std::fmt::Debug for Submission {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Submission")
            .field("endpoint", &self.endpoint)
            .finish_non_exhaustive()
    }
}

impl Submission {
    /// The account's submission server, its address resolved (and checked
    /// against the network policy); nothing is connected until used.
    pub async fn connect(
        account: &ServerAccount,
        network: &Network,
        timeout: Duration,
    ) -> Result<Submission, SubmissionError> {
        let endpoint = &account.smtp;
        let address = network
            .resolve(endpoint)
            .await
            .map_err(SubmissionError::Unreachable)?;
        let tls = &network.tls;
        let mut parameters = TlsParameters::builder(endpoint.host().to_owned())
            .certificate_store(CertificateStore::None);
        for root in tls.roots() {
            if let Ok(certificate) = Certificate::from_der(root.to_vec()) {
                parameters = parameters.add_root_certificate(certificate);
            }
        }
        let parameters = parameters
            .build_rustls()
            .map_err(|_| SubmissionError::Tls("TLS could not be set up".into()))?;
        let tls = match endpoint.security {
            Security::Tls => Tls::Wrapper(parameters),
            Security::StartTls => Tls::Required(parameters),
        };
        // The resolved address, so the checked one is the one connected to;
        // TLS still verifies the certificate against the host name.
        let transport =
            AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(address.ip().to_string())
                .port(address.port())
                .tls(tls)
                .credentials(Credentials::new(
                    account.username.clone(),
                    account.password.expose_secret().to_owned(),
                ))
                .authentication(vec![Mechanism::Plain, Mechanism::Login])
                .timeout(Some(timeout))
                // One connection per job's session: a job sends a message or two.
                .pool_config(
                    PoolConfig::new()
                        .max_size(1)
                        .idle_timeout(Duration::from_secs(30)),
                )
                .build();
        Ok(Submission {
            transport,
            endpoint: endpoint.clone(),
        })
    }

    /// Connect, greet, secure, log in and say NOOP.
    pub async fn check(&self) -> Result<(), SubmissionError> {
        match self.transport.test_connection().await {
            Ok(true) => Ok(()),
            Ok(false) => Err(SubmissionError::Unavailable(
                "it did not answer NOOP".into(),
            )),
            Err(error) => Err(self.classify(&error, false)),
        }
    }

    /// Send `raw` from `from` to its `To`, `Cc` and `Bcc` (the `Bcc` header
    /// itself left out of what is sent).
    pub async fn send(&self, from: &str, raw: &[u8]) -> Result<(), SubmissionError> {
        let envelope = envelope(from, raw)?;
        self.transport
            .send_raw(&envelope, &without_bcc(raw))
            .await
            .map(drop)
            .map_err(|error| self.classify(&error, true))
    }

    fn classify(&self, error: &lettre::transport::smtp::Error, sending: bool) -> SubmissionError {
        let endpoint = &self.endpoint;
        if error.is_tls() {
            let detail = tls_detail(error, endpoint.host());
            return SubmissionError::Tls(format!("{endpoint}: {detail}"));
        }
        if let Some(code) = error.status() {
            let code_text = code.to_string();
            // 535 (RFC 4954: credentials invalid), 534 and 530 (a mechanism or
            // authentication required) are the login's.
            let login = matches!(code_text.as_str(), "535" | "534" | "530");
            if login {
                return SubmissionError::AuthFailed;
            }
            if error.is_permanent() {
                return SubmissionError::Refused(code_text);
            }
            return SubmissionError::Unavailable(code_text);
        }
        if error.is_timeout() {
            return if sending {
                SubmissionError::Unconfirmed
            } else {
                SubmissionError::Unreachable(format!("{endpoint} did not answer in time"))
            };
        }
        if error.is_client() {
            // Raised before anything is sent: no shared login mechanism, or
            // an envelope lettre refuses.
            return if sending {
                SubmissionError::Refused("the message could not be addressed".into())
            } else {
                SubmissionError::AuthFailed
            };
        }
        // lettre's "Connection error" is raised while connecting: nothing
        // was handed over yet.
        if error.to_string().starts_with("Connection error") {
            return SubmissionError::Unavailable(format!("{endpoint} could not be reached"));
        }
        if sending {
            // A connection that broke mid-conversation; lettre does not say
            // whether DATA was sent, so the message counts as maybe sent.
            SubmissionError::Unconfirmed
        } else {
            SubmissionError::Unreachable(format!("{endpoint} could not be reached"))
        }
    }
}

/// Who a message goes to: `To`, `Cc` and `Bcc`; from the mailbox.
fn envelope(from: &str, raw: &[u8]) -> Result<Envelope, SubmissionError> {
    let message = to_mail(String::new(), raw, Placement::default(), 0);
    let mut recipients: Vec<Address> = Vec::new();
    for header in ["To", "Cc", "Bcc"] {
        for value in message
            .headers
            .iter()
            .filter(|(name, _)| name.eq_ignore_ascii_case(header))
            .map(|(_, value)| value)
        {
            for entry in address_list(value) {
                if let Some((_, address)) = parse_mailbox(&entry)
                    && let Ok(address) = address.parse::<Address>()
                    && !recipients.contains(&address)
                {
                    recipients.push(address);
                }
            }
        }
    }
    let from = from.parse::<Address>().ok();
    Envelope::new(from, recipients)
        .map_err(|_| SubmissionError::Refused("the message has no recipient".into()))
}

/// The certificate's problem, where the TLS error names one.
fn tls_detail(error: &lettre::transport::smtp::Error, host: &str) -> String {
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(error);
    while let Some(current) = source {
        if let Some(io) = current.downcast_ref::<std::io::Error>() {
            return super::tls::describe_handshake_failure(io, host);
        }
        if let Some(rustls_error) = current.downcast_ref::<rustls::Error>() {
            let io = std::io::Error::other(rustls_error.clone());
            return super::tls::describe_handshake_failure(&io, host);
        }
        source = current.source();
    }
    "the TLS handshake failed (does the port speak TLS? try the other security setting)".into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bcc_leaves_the_message_but_not_the_envelope() {
        let raw = b"From: a@example.com\r\nTo: B <b@example.com>, c@example.com\r\nBcc: d@example.com,\r\n e@example.com\r\nMessage-ID: <m@x>\r\n\r\nBody\r\n";
        let envelope = envelope("a@example.com", raw).unwrap();
        let to: Vec<String> = envelope.to().iter().map(ToString::to_string).collect();
        assert_eq!(
            to,
            [
                "b@example.com",
                "c@example.com",
                "d@example.com",
                "e@example.com"
            ]
        );
        let visible = String::from_utf8(without_bcc(raw)).unwrap();
        assert!(!visible.contains("d@example.com") && !visible.contains("e@example.com"));
        assert!(visible.ends_with("\r\n\r\nBody\r\n"));
        assert_eq!(
            super::super::message::header_message_id(raw).as_deref(),
            Some("<m@x>")
        );
    }
}
