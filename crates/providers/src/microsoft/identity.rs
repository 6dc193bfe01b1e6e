//! The Microsoft identity platform's authorization-code flow with PKCE, its
//! refresh (which rotates the refresh token), and who a token belongs to
//! (Graph's `/v1.0/me`).
//!
//! Facts relied on (Microsoft's "OAuth 2.0 authorization code flow" and
//! "Scopes and permissions" pages): the token answer's `scope` lists the
//! granted Graph permissions by short name (`Mail.Send`) plus `openid`,
//! `profile`, `email`, never `offline_access`; a refresh answers with a new
//! refresh token that replaces the old one; error answers carry `error`,
//! `error_description` (starting `AADSTSnnnnn:`) and `error_codes`. There is
//! no endpoint that revokes a single grant's tokens.

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use url::Url;

use crate::oauth2::{self, ErrorBody, OAuthError, TokenResponse};

/// Graph's own prefix on its permissions; the short name is the same
/// permission.
const GRAPH_SCOPE_PREFIX: &str = "https://graph.microsoft.com/";

/// Where Microsoft's endpoints are (real Microsoft, or the sandbox).
#[derive(Debug, Clone)]
pub struct MicrosoftEndpoints {
    /// `https://login.microsoftonline.com/<tenant>/oauth2/v2.0/authorize`.
    pub auth_url: Url,
    /// `https://login.microsoftonline.com/<tenant>/oauth2/v2.0/token`.
    pub token_url: Url,
    /// `https://graph.microsoft.com`: paths below it are `/v1.0/...`.
    pub graph_url: Url,
}

impl MicrosoftEndpoints {
    /// Microsoft's own endpoints for `tenant` (`common`, `organizations`,
    /// `consumers`, or a directory's id or domain).
    pub fn for_tenant(tenant: &str) -> MicrosoftEndpoints {
        let login = |path: &str| {
            Url::parse(&format!(
                "https://login.microsoftonline.com/{tenant}/oauth2/v2.0/{path}"
            ))
            .expect("a tenant name makes a valid URL")
        };
        MicrosoftEndpoints {
            auth_url: login("authorize"),
            token_url: login("token"),
            graph_url: Url::parse("https://graph.microsoft.com").expect("a valid URL"),
        }
    }
}

/// An app registered with the Microsoft identity platform.
#[derive(Clone)]
pub struct MicrosoftOAuth {
    client_id: String,
    client_secret: SecretString,
    endpoints: MicrosoftEndpoints,
    http: reqwest::Client,
}

impl std::fmt::Debug for MicrosoftOAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MicrosoftOAuth")
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

/// The Microsoft account a token belongs to (Graph's `user`).
#[derive(Debug, Clone)]
pub struct MicrosoftUser {
    /// The user's object id: stable, unlike the address.
    pub id: String,
    /// `mail`, else `userPrincipalName` (a personal account may have no
    /// `mail`; its sign-in name is its address).
    pub email: Option<String>,
    pub display_name: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct UserBody {
    id: String,
    #[serde(default)]
    mail: Option<String>,
    #[serde(default)]
    user_principal_name: Option<String>,
    #[serde(default)]
    display_name: Option<String>,
}

/// Error answers of the token endpoint that mean the person must sign in
/// and consent again: the refresh token expired or was revoked (the
/// password changed, the session was revoked, inactivity), consent was
/// withdrawn, or the grant needs interaction (multi-factor, a new policy).
fn grant_gone(error: &ErrorBody) -> Option<String> {
    matches!(
        error.error.as_str(),
        "invalid_grant" | "interaction_required" | "consent_required" | "login_required"
    )
    .then(|| {
        // The codes say why (AADSTS50173 password changed, 65001 no
        // consent, 700082 inactive, ...); the description also carries
        // trace ids and timestamps, which logs do not need.
        let codes: Vec<String> = error
            .error_codes
            .iter()
            .map(|code| format!("AADSTS{code}"))
            .collect();
        if codes.is_empty() {
            error.error.clone()
        } else {
            format!("{} {}", error.error, codes.join(" "))
        }
    })
}

/// A granted scope as Mailwright compares it: Graph's permissions by their
/// short name.
pub fn normalize_scope(scope: &str) -> &str {
    scope.strip_prefix(GRAPH_SCOPE_PREFIX).unwrap_or(scope)
}

/// `path` (`/v1.0/...`) below Graph's base URL, which may itself have a
/// path (the sandbox's `/microsoft`).
pub fn graph_url(base: &Url, path: &str) -> Result<Url, url::ParseError> {
    Url::parse(&format!("{}{path}", base.as_str().trim_end_matches('/')))
}

impl MicrosoftOAuth {
    pub fn new(
        client_id: String,
        client_secret: SecretString,
        endpoints: MicrosoftEndpoints,
        http: reqwest::Client,
    ) -> MicrosoftOAuth {
        MicrosoftOAuth {
            client_id,
            client_secret,
            endpoints,
            http,
        }
    }

    pub fn endpoints(&self) -> &MicrosoftEndpoints {
        &self.endpoints
    }

    /// A Graph client on the same HTTP client and Graph URL.
    pub fn graph(&self) -> super::graph::Graph {
        super::graph::Graph::new(self.endpoints.graph_url.clone(), self.http.clone())
    }

    /// The sign-in and consent URL: PKCE S256, `response_mode=query`, and
    /// the account picker unless `login_hint` names the account (a
    /// reconnect).
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
                .append_pair("response_type", "code")
                .append_pair("redirect_uri", redirect_uri)
                .append_pair("response_mode", "query")
                .append_pair("scope", &scopes.join(" "))
                .append_pair("state", state)
                .append_pair("code_challenge", code_challenge)
                .append_pair("code_challenge_method", "S256");
            match login_hint {
                Some(hint) => query.append_pair("login_hint", hint),
                None => query.append_pair("prompt", "select_account"),
            };
        }
        url
    }

    pub async fn exchange_code(
        &self,
        code: &str,
        code_verifier: &str,
        redirect_uri: &str,
        scopes: &[&str],
    ) -> Result<TokenResponse, OAuthError> {
        let scope = scopes.join(" ");
        self.token_request(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("code_verifier", code_verifier),
            ("redirect_uri", redirect_uri),
            ("scope", &scope),
        ])
        .await
    }

    /// A new access token, and the refresh token that replaces
    /// `refresh_token` (store it, or the connection dies with the next
    /// refresh).
    pub async fn refresh(
        &self,
        refresh_token: &SecretString,
        scopes: &[&str],
    ) -> Result<TokenResponse, OAuthError> {
        let scope = scopes.join(" ");
        self.token_request(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token.expose_secret()),
            ("scope", &scope),
        ])
        .await
    }

    async fn token_request(&self, fields: &[(&str, &str)]) -> Result<TokenResponse, OAuthError> {
        let mut form: Vec<(&str, &str)> = fields.to_vec();
        form.push(("client_id", &self.client_id));
        form.push(("client_secret", self.client_secret.expose_secret()));
        let mut answer =
            oauth2::token_request(&self.http, &self.endpoints.token_url, &form, grant_gone).await?;
        answer.scope = answer.scope.map(|scope| {
            scope
                .split_whitespace()
                .map(normalize_scope)
                .collect::<Vec<_>>()
                .join(" ")
        });
        Ok(answer)
    }

    /// Who `access_token` belongs to: Graph's `GET /v1.0/me` (needs
    /// `User.Read`).
    pub async fn me(&self, access_token: &SecretString) -> Result<MicrosoftUser, OAuthError> {
        let url = graph_url(&self.endpoints.graph_url, "/v1.0/me")
            .map_err(|_| OAuthError::Rejected("the Graph URL cannot take a path".into()))?;
        let user: UserBody = oauth2::bearer_json(
            self.http
                .get(url)
                .query(&[("$select", "id,mail,userPrincipalName,displayName")]),
            access_token,
            "Graph /me",
        )
        .await?;
        Ok(MicrosoftUser {
            id: user.id,
            email: user
                .mail
                .filter(|mail| !mail.is_empty())
                .or(user.user_principal_name),
            display_name: user.display_name,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consent_withdrawn_and_expired_grants_are_gone_and_other_errors_are_not() {
        let body = |error: &str, codes: Vec<u64>| ErrorBody {
            error: error.into(),
            error_description: Some("AADSTS65001: ... Trace ID: x".into()),
            error_codes: codes,
        };
        assert_eq!(
            grant_gone(&body("invalid_grant", vec![65001])).as_deref(),
            Some("invalid_grant AADSTS65001")
        );
        assert!(grant_gone(&body("interaction_required", vec![50076])).is_some());
        assert!(grant_gone(&body("invalid_client", vec![7000215])).is_none());
        assert!(grant_gone(&body("invalid_request", vec![])).is_none());
    }

    #[test]
    fn graph_permissions_compare_by_short_name() {
        assert_eq!(
            normalize_scope("https://graph.microsoft.com/Mail.Send"),
            "Mail.Send"
        );
        assert_eq!(normalize_scope("openid"), "openid");
    }

    #[test]
    fn the_authorization_url_asks_with_pkce_and_picks_the_account_unless_hinted() {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = MicrosoftOAuth::new(
            "app".into(),
            SecretString::from("secret"),
            MicrosoftEndpoints::for_tenant("common"),
            reqwest::Client::new(),
        );
        let url =
            client.authorization_url("https://x/cb", &["openid", "Mail.Send"], "s", "c", None);
        assert!(
            url.as_str()
                .starts_with("https://login.microsoftonline.com/common/oauth2/v2.0/authorize?")
        );
        let query: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
        assert_eq!(query["code_challenge_method"], "S256");
        assert_eq!(query["scope"], "openid Mail.Send");
        assert_eq!(query["prompt"], "select_account");
        assert!(!url.as_str().contains("secret"));
        let hinted = client.authorization_url("https://x/cb", &["openid"], "s", "c", Some("a@b.c"));
        let query: std::collections::HashMap<_, _> = hinted.query_pairs().into_owned().collect();
        assert_eq!(query["login_hint"], "a@b.c");
        assert!(!query.contains_key("prompt"));
    }
}
