//! What Google's and Microsoft's OAuth 2.0 token endpoints have in common
//! (RFC 6749 §5): a form-encoded request, a JSON answer, and errors sorted
//! into what the caller must do about them. Each provider says which of its
//! error answers mean "the grant is gone".

use std::time::Duration;

use secrecy::SecretString;
use serde::Deserialize;
use url::Url;

/// Requests to an identity provider time out after this long.
pub const TIMEOUT: Duration = Duration::from_secs(15);

/// A token endpoint's answer.
pub struct TokenResponse {
    pub access_token: SecretString,
    /// Google sends one on consent only; Microsoft sends a new one at every
    /// refresh and the old one stops working (rotation).
    pub refresh_token: Option<SecretString>,
    pub expires_in: Duration,
    /// Space-delimited granted scopes, when the provider says.
    pub scope: Option<String>,
}

#[derive(Deserialize)]
struct TokenBody {
    access_token: String,
    #[serde(default)]
    refresh_token: Option<String>,
    #[serde(default)]
    expires_in: Option<u64>,
    #[serde(default)]
    scope: Option<String>,
}

/// An error answer (RFC 6749 §5.2), plus Microsoft's `error_codes` (the
/// numbers of its `AADSTS` codes).
#[derive(Deserialize)]
pub(crate) struct ErrorBody {
    pub error: String,
    #[serde(default)]
    pub error_description: Option<String>,
    #[serde(default)]
    pub error_codes: Vec<u64>,
}

/// How a call to an identity provider failed, by what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum OAuthError {
    /// The code or refresh token is no longer valid: the person must
    /// connect again. `detail` is the provider's reason (for logs).
    #[error("the grant is no longer valid ({detail})")]
    InvalidGrant { detail: String },
    /// Network trouble, a timeout, 429 or 5xx: worth retrying later.
    #[error("the identity provider is unavailable: {0}")]
    Unavailable(String),
    /// Any other refusal (misconfigured client, malformed answer).
    #[error("the identity provider refused the request: {0}")]
    Rejected(String),
}

pub(crate) fn transport(error: reqwest::Error) -> OAuthError {
    OAuthError::Unavailable(if error.is_timeout() {
        "timed out".to_owned()
    } else {
        "could not connect".to_owned()
    })
}

/// Send `request` (a GET of who a token belongs to) with `access_token`
/// and read its JSON answer; `what` names the endpoint in errors. A 401
/// means the token (so the grant) is no longer accepted; 429 and 5xx are
/// worth retrying.
pub(crate) async fn bearer_json<T: serde::de::DeserializeOwned>(
    request: reqwest::RequestBuilder,
    access_token: &SecretString,
    what: &str,
) -> Result<T, OAuthError> {
    use secrecy::ExposeSecret;
    let response = request
        .timeout(TIMEOUT)
        .bearer_auth(access_token.expose_secret())
        .send()
        .await
        .map_err(transport)?;
    let status = response.status();
    if status.as_u16() == 429 || status.is_server_error() {
        return Err(OAuthError::Unavailable(format!("HTTP {}", status.as_u16())));
    }
    if status.as_u16() == 401 {
        return Err(OAuthError::InvalidGrant {
            detail: format!("{what} refused the access token"),
        });
    }
    if !status.is_success() {
        return Err(OAuthError::Rejected(format!(
            "{what} HTTP {}",
            status.as_u16()
        )));
    }
    response
        .json::<T>()
        .await
        .map_err(|_| OAuthError::Rejected(format!("the {what} answer is not the expected JSON")))
}

/// POST `form` to `token_url`. `grant_gone` reads an error answer: `Some`
/// (with a reason for logs) when it means the grant is gone.
pub(crate) async fn token_request(
    http: &reqwest::Client,
    token_url: &Url,
    form: &[(&str, &str)],
    grant_gone: impl Fn(&ErrorBody) -> Option<String>,
) -> Result<TokenResponse, OAuthError> {
    let response = http
        .post(token_url.clone())
        .timeout(TIMEOUT)
        .form(form)
        .send()
        .await
        .map_err(transport)?;
    let status = response.status();
    let body = response.bytes().await.map_err(transport)?;
    if status.is_success() {
        let token: TokenBody = serde_json::from_slice(&body).map_err(|_| {
            OAuthError::Rejected("the token answer is not the expected JSON".into())
        })?;
        return Ok(TokenResponse {
            access_token: SecretString::from(token.access_token),
            refresh_token: token.refresh_token.map(SecretString::from),
            expires_in: Duration::from_secs(token.expires_in.unwrap_or(3600)),
            scope: token.scope,
        });
    }
    if status.as_u16() == 429 || status.is_server_error() {
        return Err(OAuthError::Unavailable(format!("HTTP {}", status.as_u16())));
    }
    match serde_json::from_slice::<ErrorBody>(&body) {
        Ok(error) => match grant_gone(&error) {
            Some(detail) => Err(OAuthError::InvalidGrant { detail }),
            None => Err(OAuthError::Rejected(format!(
                "HTTP {}: {}",
                status.as_u16(),
                error.error
            ))),
        },
        Err(_) => Err(OAuthError::Rejected(format!("HTTP {}", status.as_u16()))),
    }
}
