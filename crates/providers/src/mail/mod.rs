//! Mailwright's own email (reconnect notices, alerts): one small trait, three
//! ways to deliver. The person's Gmail is never used for system email.

pub mod sidemail;
pub mod smtp;

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use lettre::message::Mailbox;

/// A system email, ready to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SystemEmail {
    pub to: String,
    pub subject: String,
    pub text: String,
    pub html: Option<String>,
}

/// Who system email is from (`MAILWRIGHT_SYSTEM_FROM`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sender {
    pub address: String,
    pub name: Option<String>,
}

impl Sender {
    /// `addr@example.com` or `Name <addr@example.com>`.
    pub fn parse(text: &str) -> Result<Sender, String> {
        let mailbox: Mailbox = text.trim().parse().map_err(|_| {
            format!("`{text}` is not an address such as `Mailwright <no-reply@example.com>`")
        })?;
        Ok(Sender {
            address: mailbox.email.to_string(),
            name: mailbox.name,
        })
    }

    pub fn mailbox(&self) -> Mailbox {
        Mailbox::new(
            self.name.clone(),
            self.address.parse().expect("parsed before"),
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MailError {
    /// Try again later (provider down, rate limited, network).
    #[error("{reason}")]
    Transient {
        reason: String,
        retry_after: Option<Duration>,
    },
    /// Retrying will not help (bad credentials, refused address).
    #[error("{0}")]
    Permanent(String),
}

pub type MailFuture<'a> = Pin<Box<dyn Future<Output = Result<(), MailError>> + Send + 'a>>;

pub trait SystemMailer: Send + Sync {
    /// `sidemail`, `smtp` or `log`: for metrics and the outbox.
    fn provider(&self) -> &'static str;
    fn send<'a>(&'a self, email: &'a SystemEmail) -> MailFuture<'a>;
}

/// The default without a provider: the email is only recorded (the outbox in
/// the database and API keeps it visible) and logged.
pub struct LogOnly;

impl SystemMailer for LogOnly {
    fn provider(&self) -> &'static str {
        "log"
    }

    fn send<'a>(&'a self, email: &'a SystemEmail) -> MailFuture<'a> {
        Box::pin(async move {
            tracing::info!(to = %email.to, subject = %email.subject, "system email (no mail provider configured: kept in the outbox only)");
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn senders() {
        assert_eq!(
            Sender::parse("Mailwright <no-reply@localhost>").unwrap(),
            Sender {
                address: "no-reply@localhost".into(),
                name: Some("Mailwright".into())
            }
        );
        assert_eq!(Sender::parse("ops@example.com").unwrap().name, None);
        assert!(Sender::parse("not an address").is_err());
        assert!(Sender::parse("a@b.c\r\nBcc: x@y.z").is_err());
    }
}
