//! The Gmail API. Each call is classified: 401 (token rejected: refresh and
//! retry once), 403 `insufficientPermissions` (a scope is missing: tell the
//! person), 429/5xx/timeouts (retry later), anything else.

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use url::Url;

use super::oauth::TIMEOUT;

#[derive(Clone)]
pub struct Gmail {
    /// `https://gmail.googleapis.com` (or the sandbox's base).
    api_url: Url,
    http: reqwest::Client,
}

#[derive(Debug, thiserror::Error)]
pub enum GmailError {
    #[error("Gmail rejected the access token")]
    Unauthorized,
    #[error("the grant lacks a scope this call needs")]
    InsufficientPermissions,
    #[error("Gmail is unavailable ({reason})")]
    Unavailable {
        reason: String,
        retry_after: Option<Duration>,
    },
    #[error("Gmail refused the request (HTTP {status}, {reason})")]
    Rejected { status: u16, reason: String },
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Profile {
    pub email_address: String,
    #[serde(default)]
    pub history_id: Option<String>,
}

#[derive(Deserialize)]
struct ErrorEnvelope {
    error: ErrorDetail,
}

#[derive(Deserialize)]
struct ErrorDetail {
    #[serde(default)]
    errors: Vec<ErrorItem>,
    #[serde(default)]
    status: Option<String>,
}

#[derive(Deserialize)]
struct ErrorItem {
    #[serde(default)]
    reason: Option<String>,
}

impl Gmail {
    pub fn new(api_url: Url, http: reqwest::Client) -> Gmail {
        Gmail { api_url, http }
    }

    fn url(&self, path: &str) -> Url {
        let base = self.api_url.as_str().trim_end_matches('/');
        Url::parse(&format!("{base}/gmail/v1/users/me/{path}")).expect("a valid Gmail URL")
    }

    /// `users.getProfile`: the mailbox's address and current history id.
    pub async fn profile(&self, access_token: &SecretString) -> Result<Profile, GmailError> {
        self.get_json(access_token, "profile", &[]).await
    }
}

/// A message Gmail accepted (sent, or inside a draft).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MessageRef {
    pub id: String,
    #[serde(default)]
    pub thread_id: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct DraftRef {
    pub id: String,
    #[serde(default)]
    pub message: Option<MessageRef>,
}

#[derive(Deserialize)]
struct MessageList {
    #[serde(default)]
    messages: Vec<MessageRef>,
}

#[derive(Deserialize)]
struct DraftList {
    #[serde(default)]
    drafts: Vec<DraftRef>,
}

fn unavailable(error: reqwest::Error) -> GmailError {
    GmailError::Unavailable {
        reason: if error.is_timeout() {
            "timed out".into()
        } else {
            "could not connect".into()
        },
        retry_after: None,
    }
}

fn unexpected(_: reqwest::Error) -> GmailError {
    GmailError::Rejected {
        status: 200,
        reason: "unexpected answer".into(),
    }
}

impl Gmail {
    /// `users.messages.send` of an RFC 5322 message.
    pub async fn send(
        &self,
        access_token: &SecretString,
        rfc822: &[u8],
    ) -> Result<MessageRef, GmailError> {
        self.post_json(
            access_token,
            "messages/send",
            &serde_json::json!({ "raw": base64url(rfc822) }),
        )
        .await
    }

    /// `users.drafts.create`.
    pub async fn create_draft(
        &self,
        access_token: &SecretString,
        rfc822: &[u8],
    ) -> Result<DraftRef, GmailError> {
        self.post_json(
            access_token,
            "drafts",
            &serde_json::json!({ "message": { "raw": base64url(rfc822) } }),
        )
        .await
    }

    /// The message with this `Message-ID` header, if the mailbox has one
    /// (how a retried send finds out whether its first attempt went out).
    pub async fn find_message(
        &self,
        access_token: &SecretString,
        rfc822_message_id: &str,
    ) -> Result<Option<MessageRef>, GmailError> {
        let query = rfc822_query(rfc822_message_id);
        let list: MessageList = self
            .get_json(
                access_token,
                "messages",
                &[("q", query.as_str()), ("includeSpamTrash", "true")],
            )
            .await?;
        Ok(list.messages.into_iter().next())
    }

    /// The draft whose message has this `Message-ID`, if any.
    pub async fn find_draft(
        &self,
        access_token: &SecretString,
        rfc822_message_id: &str,
    ) -> Result<Option<DraftRef>, GmailError> {
        let query = rfc822_query(rfc822_message_id);
        let list: DraftList = self
            .get_json(access_token, "drafts", &[("q", query.as_str())])
            .await?;
        Ok(list.drafts.into_iter().next())
    }

    async fn post_json<T: serde::de::DeserializeOwned>(
        &self,
        access_token: &SecretString,
        path: &str,
        body: &serde_json::Value,
    ) -> Result<T, GmailError> {
        let response = self
            .http
            .post(self.url(path))
            .timeout(TIMEOUT)
            .bearer_auth(access_token.expose_secret())
            .json(body)
            .send()
            .await
            .map_err(unavailable)?;
        check(response).await?.json().await.map_err(unexpected)
    }

    async fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        access_token: &SecretString,
        path: &str,
        query: &[(&str, &str)],
    ) -> Result<T, GmailError> {
        let response = self
            .http
            .get(self.url(path))
            .query(query)
            .timeout(TIMEOUT)
            .bearer_auth(access_token.expose_secret())
            .send()
            .await
            .map_err(unavailable)?;
        check(response).await?.json().await.map_err(unexpected)
    }
}

fn rfc822_query(message_id: &str) -> String {
    format!("rfc822msgid:{}", message_id.trim_matches(['<', '>']))
}

fn base64url(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Turn an error answer into what it means.
pub async fn check(response: reqwest::Response) -> Result<reqwest::Response, GmailError> {
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let retry_after = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    let body = response.bytes().await.unwrap_or_default();
    let envelope: Option<ErrorEnvelope> = serde_json::from_slice(&body).ok();
    let reason = envelope
        .as_ref()
        .and_then(|envelope| {
            envelope
                .error
                .errors
                .first()
                .and_then(|item| item.reason.clone())
                .or(envelope.error.status.clone())
        })
        .unwrap_or_else(|| format!("HTTP {}", status.as_u16()));
    match status.as_u16() {
        401 => Err(GmailError::Unauthorized),
        403 if reason == "insufficientPermissions"
            || reason == "PERMISSION_DENIED" && body_mentions_scopes(&body) =>
        {
            Err(GmailError::InsufficientPermissions)
        }
        403 if reason == "rateLimitExceeded" || reason == "userRateLimitExceeded" => {
            Err(GmailError::Unavailable {
                reason,
                retry_after,
            })
        }
        429 => Err(GmailError::Unavailable {
            reason,
            retry_after,
        }),
        code if code >= 500 => Err(GmailError::Unavailable {
            reason,
            retry_after,
        }),
        code => Err(GmailError::Rejected {
            status: code,
            reason,
        }),
    }
}

fn body_mentions_scopes(body: &[u8]) -> bool {
    String::from_utf8_lossy(body).contains("insufficient authentication scopes")
}

#[cfg(test)]
mod tests {
    #[test]
    fn base64url_without_padding() {
        assert_eq!(super::base64url(b""), "");
        assert_eq!(super::base64url(b"f"), "Zg");
        assert_eq!(super::base64url(b"fo"), "Zm8");
        assert_eq!(super::base64url(b"foo"), "Zm9v");
        assert_eq!(super::base64url(&[0xfb, 0xff]), "-_8");
    }
}
