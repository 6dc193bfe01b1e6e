//! SMTP, pooled, with TLS chosen by the URL: `smtp://host:port` (plain, for
//! a local relay), `smtp://user:pass@host:587?tls=required` (STARTTLS),
//! `smtps://user:pass@host:465` (implicit TLS).

use lettre::message::{Message, MultiPart, SinglePart, header::ContentType};
use lettre::transport::smtp::AsyncSmtpTransportBuilder;
use lettre::transport::smtp::PoolConfig;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

use super::{MailError, MailFuture, Sender, SystemEmail, SystemMailer};

pub struct Smtp {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Sender,
}

/// Check an SMTP URL without connecting (for configuration errors).
pub fn check_url(text: &str) -> Result<(), String> {
    builder_for(text).map(|_| ())
}

/// The transport's settings from the URL. Building the (pooled) transport
/// needs a running Tokio runtime, so that happens in [`Smtp::new`].
fn builder_for(text: &str) -> Result<AsyncSmtpTransportBuilder, String> {
    let url = url::Url::parse(text).map_err(|_| {
        "is not a URL such as smtp://host:25 or smtps://user:pass@host:465".to_owned()
    })?;
    let host = url
        .host_str()
        .filter(|host| !host.is_empty())
        .ok_or("has no host")?
        .to_owned();
    let tls = url
        .query_pairs()
        .find(|(key, _)| key == "tls")
        .map(|(_, value)| value.into_owned());
    let mut builder = match (url.scheme(), tls.as_deref()) {
        ("smtps", None) => AsyncSmtpTransport::<Tokio1Executor>::relay(&host)
            .map_err(|error| format!("TLS setup failed ({error})"))?,
        ("smtp", Some("required")) => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&host)
            .map_err(|error| format!("TLS setup failed ({error})"))?,
        ("smtp", None) => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&host),
        ("smtp" | "smtps", Some(other)) => {
            return Err(format!(
                "has tls={other}; use tls=required (or smtps:// for implicit TLS)"
            ));
        }
        (scheme, _) => return Err(format!("has scheme `{scheme}`; use smtp:// or smtps://")),
    };
    if let Some(port) = url.port() {
        builder = builder.port(port);
    }
    if !url.username().is_empty() {
        let user = percent_decode(url.username());
        let password = percent_decode(url.password().unwrap_or(""));
        builder = builder.credentials(Credentials::new(user, password));
    }
    Ok(builder.pool_config(PoolConfig::new().max_size(4)))
}

fn percent_decode(text: &str) -> String {
    url::form_urlencoded::parse(format!("x={text}").as_bytes())
        .next()
        .map(|(_, value)| value.into_owned())
        .unwrap_or_default()
}

impl Smtp {
    /// Must be called inside a Tokio runtime (the pool runs a task).
    pub fn new(url: &str, from: Sender) -> Result<Smtp, String> {
        Ok(Smtp {
            transport: builder_for(url)?.build(),
            from,
        })
    }
}

impl Smtp {
    /// Connect, greet (EHLO), start TLS and log in as configured, and say
    /// NOOP: whether mail could leave now (`mailwright doctor`).
    pub async fn check(&self) -> Result<(), String> {
        match self.transport.test_connection().await {
            Ok(true) => Ok(()),
            Ok(false) => Err("the server did not answer NOOP".into()),
            Err(error) => Err(match error.status() {
                Some(code) => format!("the server refused ({code})"),
                None => "it could not be reached, or TLS or login failed".into(),
            }),
        }
    }
}

impl SystemMailer for Smtp {
    fn provider(&self) -> &'static str {
        "smtp"
    }

    fn send<'a>(&'a self, email: &'a SystemEmail) -> MailFuture<'a> {
        Box::pin(async move {
            let to = email.to.parse().map_err(|_| {
                MailError::Permanent(format!("`{}` is not a deliverable address", email.to))
            })?;
            let builder = Message::builder()
                .from(self.from.mailbox())
                .to(to)
                .subject(email.subject.clone());
            let text = SinglePart::builder()
                .header(ContentType::TEXT_PLAIN)
                .body(email.text.clone());
            let message = match &email.html {
                Some(html) => builder.multipart(
                    MultiPart::alternative().singlepart(text).singlepart(
                        SinglePart::builder()
                            .header(ContentType::TEXT_HTML)
                            .body(html.clone()),
                    ),
                ),
                None => builder.singlepart(text),
            }
            .map_err(|error| {
                MailError::Permanent(format!("the email could not be built ({error})"))
            })?;
            self.transport
                .send(message)
                .await
                .map(|_| ())
                .map_err(|error| {
                    if error.is_permanent() {
                        tracing::warn!(error = %error, "the SMTP server refused the email");
                        let code = error
                            .status()
                            .map(|code| format!(" ({code})"))
                            .unwrap_or_default();
                        MailError::Permanent(format!("the SMTP server refused the email{code}"))
                    } else {
                        tracing::warn!(error = %error, "SMTP delivery failed; will retry");
                        MailError::Transient {
                            reason: "the SMTP server could not be reached or deferred the email"
                                .into(),
                            retry_after: None,
                        }
                    }
                })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        for good in [
            "smtp://127.0.0.1:2525",
            "smtp://user:p%40ss@mail.example.com:587?tls=required",
            "smtps://u:p@mail.example.com:465",
        ] {
            assert!(check_url(good).is_ok(), "{good}");
        }
        for bad in ["http://x", "smtp://", "smtp://h?tls=maybe", "not a url"] {
            assert!(check_url(bad).is_err(), "{bad}");
        }
        assert_eq!(percent_decode("p%40ss"), "p@ss");
    }
}
