//! Shared test scaffolding: a sandbox served on 127.0.0.1:0 and helpers to
//! obtain tokens.
#![allow(dead_code)]

use mailwright_sandbox::{AccountSpec, Consent, OAuthClient, Sandbox, SandboxConfig};
use serde_json::Value;

pub const CLIENT_ID: &str = "mailwright-test.apps.googleusercontent.com";
pub const CLIENT_SECRET: &str = "GOCSPX-sandbox-secret";
pub const REDIRECT_URI: &str = "http://127.0.0.1:9999/oauth/callback";
pub const ANN: &str = "ann@example.com";
pub const BOB: &str = "bob@example.com";
pub const GMAIL_MODIFY: &str = "https://www.googleapis.com/auth/gmail.modify";
pub const GMAIL_COMPOSE: &str = "https://www.googleapis.com/auth/gmail.compose";
pub const GMAIL_READONLY: &str = "https://www.googleapis.com/auth/gmail.readonly";

pub struct Harness {
    pub sandbox: Sandbox,
    pub base: String,
    pub http: reqwest::Client,
}

pub async fn start() -> Harness {
    let sandbox = Sandbox::new(
        SandboxConfig::default()
            .with_client(OAuthClient::new(CLIENT_ID, CLIENT_SECRET, [REDIRECT_URI]))
            .with_account(AccountSpec::new(ANN, "Ann Example"))
            .with_account(AccountSpec::new(BOB, "Bob Builder")),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(mailwright_sandbox::serve(listener, sandbox.clone()));
    let http = http_client_builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    Harness {
        sandbox,
        base,
        http,
    }
}

/// A reqwest client builder. In the workspace, reqwest is built with
/// `rustls-no-provider` (the server installs ring at start-up), so tests
/// install the same provider before building a client.
pub fn http_client_builder() -> reqwest::ClientBuilder {
    // Err only means another test in this process installed it first.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
}

pub fn query_param(url: &str, key: &str) -> Option<String> {
    let url = url::Url::parse(url).unwrap();
    url.query_pairs()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.into_owned())
}

impl Harness {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub fn auth_url(&self, scopes: &str, extra: &[(&str, &str)]) -> String {
        let mut url = url::Url::parse(&self.url("/o/oauth2/v2/auth")).unwrap();
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("client_id", CLIENT_ID);
            q.append_pair("redirect_uri", REDIRECT_URI);
            q.append_pair("response_type", "code");
            q.append_pair("scope", scopes);
            q.append_pair("state", "st-123");
            for (k, v) in extra {
                q.append_pair(k, v);
            }
        }
        url.into()
    }

    pub async fn post_form(&self, path: &str, form: &[(&str, &str)]) -> (u16, Value) {
        let response = self
            .http
            .post(self.url(path))
            .form(form)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let body = response.json::<Value>().await.unwrap_or(Value::Null);
        (status, body)
    }

    /// Consents as `email` via the Rust helper and exchanges the code.
    pub async fn token_for(&self, email: &str, scopes: &str, extra: &[(&str, &str)]) -> Value {
        let redirect = self
            .sandbox
            .approve(
                &self.auth_url(scopes, extra),
                Consent::allow_all().as_account(email),
            )
            .unwrap();
        let code = query_param(&redirect, "code").unwrap();
        let (status, body) = self
            .post_form(
                "/token",
                &[
                    ("grant_type", "authorization_code"),
                    ("code", &code),
                    ("redirect_uri", REDIRECT_URI),
                    ("client_id", CLIENT_ID),
                    ("client_secret", CLIENT_SECRET),
                ],
            )
            .await;
        assert_eq!(status, 200, "{body}");
        body
    }

    pub async fn access_token(&self, email: &str, scopes: &str) -> String {
        self.token_for(email, scopes, &[]).await["access_token"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    pub async fn gmail_get(&self, token: &str, path: &str) -> (u16, Value) {
        let response = self
            .http
            .get(self.url(&format!("/gmail/v1/users/me/{path}")))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (
            status,
            response.json::<Value>().await.unwrap_or(Value::Null),
        )
    }

    pub async fn gmail_post(&self, token: &str, path: &str, body: &Value) -> (u16, Value) {
        let response = self
            .http
            .post(self.url(&format!("/gmail/v1/users/me/{path}")))
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (
            status,
            response.json::<Value>().await.unwrap_or(Value::Null),
        )
    }
}

pub fn b64url(raw: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw.as_bytes())
}

pub fn b64url_decode(data: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE
        .decode(data)
        .unwrap()
}
