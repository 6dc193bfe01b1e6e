//! Google's OAuth 2.0 endpoints: authorization URL, code exchange (with PKCE),
//! refresh, revocation, userinfo.

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use url::Url;

use crate::oauth2::{self, TIMEOUT, transport};
pub use crate::oauth2::{OAuthError, TokenResponse};

/// Where Google's endpoints are (real Google, or the sandbox).
#[derive(Debug, Clone)]
pub struct GoogleEndpoints {
    pub auth_url: Url,
    pub token_url: Url,
    pub revoke_url: Url,
    pub userinfo_url: Url,
}

/// An OAuth client registered with Google.
#[derive(Clone)]
pub struct GoogleOAuth {
    client_id: String,
    client_secret: SecretString,
    endpoints: GoogleEndpoints,
    http: reqwest::Client,
}

impl std::fmt::Debug for GoogleOAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GoogleOAuth")
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

/// The Google account a token belongs to.
#[derive(Debug, Clone, Deserialize)]
pub struct UserInfo {
    pub sub: String,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
}

/// What [`GoogleOAuth::check_client`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientCheck {
    /// The client, its secret and the redirect URI are accepted.
    Accepted,
    RedirectUriMismatch,
    UnknownClient,
    WrongSecret,
    Unreachable(String),
    Unexpected(String),
}

/// A check waits this long for Google.
const CHECK_TIMEOUT: Duration = Duration::from_secs(5);

impl GoogleOAuth {
    pub fn new(
        client_id: String,
        client_secret: SecretString,
        endpoints: GoogleEndpoints,
        http: reqwest::Client,
    ) -> GoogleOAuth {
        GoogleOAuth {
            client_id,
            client_secret,
            endpoints,
            http,
        }
    }

    /// The consent URL: offline access, PKCE S256, consent prompt, and
    /// incremental authorization (earlier grants are kept).
    pub fn authorization_url(
        &self,
        redirect_uri: &str,
        scopes: &[&str],
        state: &str,
        code_challenge: &str,
        login_hint: Option<&str>,
    ) -> Url {
        let mut url = self.endpoints.auth_url.clone();
        {
            let mut query = url.query_pairs_mut();
            query
                .append_pair("client_id", &self.client_id)
                .append_pair("redirect_uri", redirect_uri)
                .append_pair("response_type", "code")
                .append_pair("scope", &scopes.join(" "))
                .append_pair("state", state)
                .append_pair("code_challenge", code_challenge)
                .append_pair("code_challenge_method", "S256")
                .append_pair("access_type", "offline")
                .append_pair("prompt", "consent")
                .append_pair("include_granted_scopes", "true");
            if let Some(hint) = login_hint {
                query.append_pair("login_hint", hint);
            }
        }
        url
    }

    pub async fn exchange_code(
        &self,
        code: &str,
        code_verifier: &str,
        redirect_uri: &str,
    ) -> Result<TokenResponse, OAuthError> {
        self.token_request(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("code_verifier", code_verifier),
            ("redirect_uri", redirect_uri),
        ])
        .await
    }

    pub async fn refresh(&self, refresh_token: &SecretString) -> Result<TokenResponse, OAuthError> {
        self.token_request(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token.expose_secret()),
        ])
        .await
    }

    async fn token_request(&self, fields: &[(&str, &str)]) -> Result<TokenResponse, OAuthError> {
        let mut form: Vec<(&str, &str)> = fields.to_vec();
        form.push(("client_id", &self.client_id));
        form.push(("client_secret", self.client_secret.expose_secret()));
        oauth2::token_request(&self.http, &self.endpoints.token_url, &form, |error| {
            (error.error == "invalid_grant")
                .then(|| error.error_description.clone().unwrap_or_default())
        })
        .await
    }

    /// What Google says of this client and `redirect_uri` without anyone
    /// signing in (`mailwright doctor`): the consent page refuses an
    /// unregistered redirect URI (400 `redirect_uri_mismatch`) or client
    /// (401 `invalid_client`), and the token endpoint answers a made-up
    /// refresh token with `invalid_grant` once the client secret is right.
    pub async fn check_client(&self, redirect_uri: &str) -> ClientCheck {
        let mut consent = self.endpoints.auth_url.clone();
        consent
            .query_pairs_mut()
            .append_pair("client_id", &self.client_id)
            .append_pair("redirect_uri", redirect_uri)
            .append_pair("response_type", "code")
            .append_pair("scope", "openid email");
        let answer = match self.http.get(consent).timeout(CHECK_TIMEOUT).send().await {
            Ok(answer) => answer,
            Err(error) => return ClientCheck::Unreachable(transport(error).to_string()),
        };
        let status = answer.status().as_u16();
        let body = answer.text().await.unwrap_or_default();
        if body.contains("redirect_uri_mismatch") {
            return ClientCheck::RedirectUriMismatch;
        }
        if body.contains("invalid_client") || status == 401 {
            return ClientCheck::UnknownClient;
        }
        if status >= 400 {
            return ClientCheck::Unexpected(format!("the consent page answered HTTP {status}"));
        }
        match self
            .token_request(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", "mailwright-doctor-probe"),
            ])
            .await
        {
            Err(OAuthError::InvalidGrant { .. }) => ClientCheck::Accepted,
            Err(OAuthError::Rejected(reason)) if reason.contains("invalid_client") => {
                ClientCheck::WrongSecret
            }
            Err(OAuthError::Unavailable(reason)) => ClientCheck::Unreachable(reason),
            Err(OAuthError::Rejected(reason)) => ClientCheck::Unexpected(format!(
                "the token endpoint refused a test refresh ({reason})"
            )),
            Ok(_) => ClientCheck::Unexpected(
                "the token endpoint accepted a made-up refresh token".into(),
            ),
        }
    }

    /// Revoke a token (and with it the grant). Best effort for callers.
    pub async fn revoke(&self, token: &SecretString) -> Result<(), OAuthError> {
        let response = self
            .http
            .post(self.endpoints.revoke_url.clone())
            .timeout(TIMEOUT)
            .form(&[("token", token.expose_secret())])
            .send()
            .await
            .map_err(transport)?;
        let status = response.status();
        if status.is_success() {
            Ok(())
        } else if status.is_server_error() {
            Err(OAuthError::Unavailable(format!("HTTP {}", status.as_u16())))
        } else {
            Err(OAuthError::Rejected(format!("HTTP {}", status.as_u16())))
        }
    }

    pub async fn userinfo(&self, access_token: &SecretString) -> Result<UserInfo, OAuthError> {
        userinfo(&self.http, &self.endpoints.userinfo_url, access_token).await
    }
}

/// Who a Google access token belongs to (`userinfo_url`: Google's OpenID
/// userinfo endpoint). Needs no OAuth client: a token Clerk holds is asked
/// the same way.
pub async fn userinfo(
    http: &reqwest::Client,
    userinfo_url: &Url,
    access_token: &SecretString,
) -> Result<UserInfo, OAuthError> {
    oauth2::bearer_json(http.get(userinfo_url.clone()), access_token, "userinfo").await
}
