//! Clerk's Backend API, for Google tokens Clerk holds: a person who signed
//! in with Google through Clerk granted Gmail scopes to Clerk's Google
//! client, and Clerk refreshes that token. `GET /v1/users/{user_id}/
//! oauth_access_tokens/google` (the `oauth_google` spelling is deprecated)
//! with the instance's secret key answers the current access token and its
//! scopes: a JSON array, or `{"data": [...], "total_count"}` when paginated.

use std::time::Duration;

use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use url::Url;

const TIMEOUT: Duration = Duration::from_secs(10);

/// Clerk's Backend API with the instance's secret key.
#[derive(Clone)]
pub struct Clerk {
    api_url: Url,
    secret_key: SecretString,
    http: reqwest::Client,
    /// Google's userinfo endpoint: whose account a Clerk-held token opens.
    userinfo_url: Url,
}

impl std::fmt::Debug for Clerk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Clerk")
            .field("api_url", &self.api_url.as_str())
            .finish_non_exhaustive()
    }
}

/// A Google access token Clerk holds for a user.
pub struct ClerkToken {
    pub token: SecretString,
    pub scopes: Vec<String>,
    /// When Clerk says it expires, if it says.
    pub expires_at: Option<DateTime<Utc>>,
}

#[derive(Debug, thiserror::Error)]
pub enum ClerkError {
    /// Clerk holds no Google token for the user (no Google account linked,
    /// or its grant was revoked): the person re-authorises in Clerk.
    #[error("Clerk holds no Google token for this user")]
    NoToken,
    /// Clerk refused the secret key (or the user id is not of this instance).
    #[error("Clerk refused the request ({0})")]
    Rejected(String),
    /// Network trouble, 429 or 5xx: try again later.
    #[error("Clerk is unavailable ({0})")]
    Unavailable(String),
}

#[derive(Deserialize)]
#[serde(untagged)]
enum TokenList {
    Plain(Vec<TokenBody>),
    Paginated { data: Vec<TokenBody> },
}

#[derive(Deserialize)]
struct TokenBody {
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    scopes: Option<Vec<String>>,
    /// Seconds since the epoch (Clerk's Backend API).
    #[serde(default)]
    expires_at: Option<i64>,
}

/// Clerk's `expires_at`: Unix seconds in the Backend API's reference;
/// milliseconds are accepted too (Clerk's other timestamps are in them).
fn expiry(value: i64) -> Option<DateTime<Utc>> {
    if value > 100_000_000_000 {
        DateTime::from_timestamp_millis(value)
    } else {
        DateTime::from_timestamp(value, 0)
    }
}

impl Clerk {
    pub fn new(
        api_url: Url,
        secret_key: SecretString,
        http: reqwest::Client,
        userinfo_url: Url,
    ) -> Clerk {
        Clerk {
            api_url,
            secret_key,
            http,
            userinfo_url,
        }
    }

    /// The Google account `token` (from [`Clerk::google_token`]) opens.
    pub async fn google_account(
        &self,
        token: &SecretString,
    ) -> Result<crate::google::oauth::UserInfo, crate::google::oauth::OAuthError> {
        crate::google::oauth::userinfo(&self.http, &self.userinfo_url, token).await
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.api_url.as_str().trim_end_matches('/'))
    }

    /// The Google access token Clerk holds for `user_id` now.
    pub async fn google_token(&self, user_id: &str) -> Result<ClerkToken, ClerkError> {
        // A Clerk user id is `user_` and letters and digits; anything else
        // must not reach the path.
        if user_id.is_empty()
            || !user_id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            return Err(ClerkError::NoToken);
        }
        let response = self
            .http
            .get(self.url(&format!("/v1/users/{user_id}/oauth_access_tokens/google")))
            .timeout(TIMEOUT)
            .bearer_auth(self.secret_key.expose_secret())
            .send()
            .await
            .map_err(|error| {
                ClerkError::Unavailable(if error.is_timeout() {
                    "timed out".into()
                } else {
                    "could not connect".into()
                })
            })?;
        let status = response.status().as_u16();
        match status {
            200..=299 => {}
            // The user (or their Google account) is not there.
            404 => return Err(ClerkError::NoToken),
            401 | 403 => {
                return Err(ClerkError::Rejected(format!(
                    "HTTP {status}: the secret key"
                )));
            }
            429 | 500..=599 => return Err(ClerkError::Unavailable(format!("HTTP {status}"))),
            _ => return Err(ClerkError::Rejected(format!("HTTP {status}"))),
        }
        let list: TokenList = response
            .json()
            .await
            .map_err(|_| ClerkError::Rejected("the answer is not the expected JSON".into()))?;
        let tokens = match list {
            TokenList::Plain(tokens) | TokenList::Paginated { data: tokens } => tokens,
        };
        let token = tokens
            .into_iter()
            .find_map(|body| {
                let token = body.token.filter(|token| !token.is_empty())?;
                Some(ClerkToken {
                    token: SecretString::from(token),
                    scopes: body.scopes.unwrap_or_default(),
                    expires_at: body.expires_at.and_then(expiry),
                })
            })
            .ok_or(ClerkError::NoToken)?;
        Ok(token)
    }

    /// Whether Clerk accepts the secret key (`GET /v1/users?limit=1`), for
    /// `mailwright doctor`.
    pub async fn check_key(&self) -> Result<(), String> {
        let response = self
            .http
            .get(self.url("/v1/users?limit=1"))
            .timeout(Duration::from_secs(5))
            .bearer_auth(self.secret_key.expose_secret())
            .send()
            .await
            .map_err(|_| "Clerk could not be reached".to_owned())?;
        match response.status().as_u16() {
            200..=299 => Ok(()),
            401 | 403 => Err("Clerk refused the secret key".into()),
            status => Err(format!("Clerk answered HTTP {status}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_is_read_in_seconds_or_milliseconds() {
        let at = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        assert_eq!(expiry(1_800_000_000), Some(at));
        assert_eq!(expiry(1_800_000_000_000), Some(at));
    }
}
