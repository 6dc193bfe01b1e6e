//! Sidemail's API: `POST /v1/email/send` and `POST /v1/contacts`, with a
//! bearer API key. Its error bodies carry a `developerMessage`, which is
//! logged for the operator and never shown to users.

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};
use url::Url;

use super::{MailError, MailFuture, Sender, SystemEmail, SystemMailer};

const TIMEOUT: Duration = Duration::from_secs(15);

pub struct Sidemail {
    api_url: Url,
    api_key: SecretString,
    from: Sender,
    http: reqwest::Client,
}

impl Sidemail {
    pub fn new(
        api_url: Url,
        api_key: SecretString,
        from: Sender,
        http: reqwest::Client,
    ) -> Sidemail {
        Sidemail {
            api_url,
            api_key,
            from,
            http,
        }
    }

    /// Whether Sidemail accepts the API key: an authenticated read of the
    /// contact list (`GET /v1/contacts`), which sends nothing.
    pub async fn check_key(&self) -> Result<(), String> {
        let response = self
            .http
            .get(self.url("/v1/contacts"))
            .timeout(Duration::from_secs(5))
            .bearer_auth(self.api_key.expose_secret())
            .send()
            .await
            .map_err(|_| "Sidemail could not be reached".to_owned())?;
        match response.status().as_u16() {
            200..=299 => Ok(()),
            401 | 403 => Err("Sidemail refused the API key".into()),
            status => Err(format!("Sidemail answered HTTP {status}")),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.api_url.as_str().trim_end_matches('/'))
    }

    async fn post(&self, path: &str, body: Value) -> Result<(), MailError> {
        let response = self
            .http
            .post(self.url(path))
            .timeout(TIMEOUT)
            .bearer_auth(self.api_key.expose_secret())
            .json(&body)
            .send()
            .await
            .map_err(|error| MailError::Transient {
                reason: if error.is_timeout() {
                    "Sidemail timed out".into()
                } else {
                    "Sidemail could not be reached".into()
                },
                retry_after: None,
            })?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.parse::<u64>().ok())
            .map(Duration::from_secs);
        let body: Value = response.json().await.unwrap_or(Value::Null);
        let developer_message = body
            .get("developerMessage")
            .and_then(Value::as_str)
            .unwrap_or("");
        tracing::warn!(
            status = status.as_u16(),
            developer_message,
            path,
            "Sidemail refused a request"
        );
        match status.as_u16() {
            429 => Err(MailError::Transient {
                reason: "Sidemail is rate limiting".into(),
                retry_after,
            }),
            code if code >= 500 => Err(MailError::Transient {
                reason: format!("Sidemail answered HTTP {code}"),
                retry_after,
            }),
            401 | 403 => Err(MailError::Permanent(
                "Sidemail refused the API key; check MAILWRIGHT_SIDEMAIL_API_KEY".into(),
            )),
            code => Err(MailError::Permanent(format!(
                "Sidemail refused the email (HTTP {code})"
            ))),
        }
    }

    /// Create or update a contact (`identifier` is Mailwright's user id).
    pub async fn upsert_contact(
        &self,
        email: &str,
        identifier: &str,
        custom_props: Value,
    ) -> Result<(), MailError> {
        self.post(
            "/v1/contacts",
            json!({ "emailAddress": email, "identifier": identifier, "customProps": custom_props }),
        )
        .await
    }
}

impl SystemMailer for Sidemail {
    fn provider(&self) -> &'static str {
        "sidemail"
    }

    fn send<'a>(&'a self, email: &'a SystemEmail) -> MailFuture<'a> {
        Box::pin(async move {
            let mut body = json!({
                "toAddress": email.to,
                "fromAddress": self.from.address,
                "subject": email.subject,
                "text": email.text,
            });
            if let Some(name) = &self.from.name {
                body["fromName"] = json!(name);
            }
            if let Some(html) = &email.html {
                body["html"] = json!(html);
            }
            self.post("/v1/email/send", body).await
        })
    }
}
