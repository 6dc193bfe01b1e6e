//! A Google (and Microsoft) sandbox on port 0 and the app configured to
//! use it.

#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::Arc;

use domain::{IntegrationId, WorkspaceId};
use engine::keyring::Keyring;
use engine::vault::{Vault, token_context};
use providers::google::gmail::Gmail;
use providers::google::oauth::{GoogleEndpoints, GoogleOAuth};
use providers::microsoft::identity::{MicrosoftEndpoints, MicrosoftOAuth};
use sandbox::{AccountSpec, Consent, OAuthClient, Sandbox, SandboxConfig};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};

use super::{Tenant, TestApp, spawn_app_with};

pub const CLIENT_ID: &str = "mailwright-test.apps.googleusercontent.com";
pub const CLIENT_SECRET: &str = "GOCSPX-test-client-secret";
pub const ANN: &str = "ann@example.com";
pub const MS_CLIENT_ID: &str = "00000000-0000-4000-8000-mailwrighttest";
pub const MS_CLIENT_SECRET: &str = "ms~test~client~secret";
/// Ann's Microsoft 365 mailbox.
pub const ANN_OUTLOOK: &str = "ann@contoso.example";

pub struct World {
    pub app: TestApp,
    pub sandbox: Sandbox,
    pub sandbox_url: String,
    pub tenant: Tenant,
}

/// The sandbox, and the app trusting it with `extra_env` on top (where
/// `{sandbox}` stands for the sandbox's URL).
pub async fn world_with(extra_env: &[(&str, String)]) -> World {
    let sandbox =
        Sandbox::new(SandboxConfig::default().with_account(AccountSpec::new(ANN, "Ann Example")));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let sandbox_url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(sandbox::serve(listener, sandbox.clone()));
    let mut env = vec![
        ("MAILWRIGHT_GOOGLE_CLIENT_ID", CLIENT_ID.to_owned()),
        ("MAILWRIGHT_GOOGLE_CLIENT_SECRET", CLIENT_SECRET.to_owned()),
        (
            "MAILWRIGHT_GOOGLE_AUTH_URL",
            format!("{sandbox_url}/o/oauth2/v2/auth"),
        ),
        (
            "MAILWRIGHT_GOOGLE_TOKEN_URL",
            format!("{sandbox_url}/token"),
        ),
        (
            "MAILWRIGHT_GOOGLE_REVOKE_URL",
            format!("{sandbox_url}/revoke"),
        ),
        (
            "MAILWRIGHT_GOOGLE_USERINFO_URL",
            format!("{sandbox_url}/v1/userinfo"),
        ),
        ("MAILWRIGHT_GMAIL_API_URL", sandbox_url.clone()),
        ("MAILWRIGHT_MICROSOFT_CLIENT_ID", MS_CLIENT_ID.to_owned()),
        (
            "MAILWRIGHT_MICROSOFT_CLIENT_SECRET",
            MS_CLIENT_SECRET.to_owned(),
        ),
        (
            "MAILWRIGHT_MICROSOFT_AUTH_URL",
            format!("{sandbox_url}/microsoft/common/oauth2/v2.0/authorize"),
        ),
        (
            "MAILWRIGHT_MICROSOFT_TOKEN_URL",
            format!("{sandbox_url}/microsoft/common/oauth2/v2.0/token"),
        ),
        (
            "MAILWRIGHT_GRAPH_API_URL",
            format!("{sandbox_url}/microsoft"),
        ),
    ];
    // `{sandbox}` in a value is the sandbox's base URL.
    env.extend(
        extra_env
            .iter()
            .map(|(name, value)| (*name, value.replace("{sandbox}", &sandbox_url))),
    );
    let app = spawn_app_with(&env).await;
    sandbox.register_client(OAuthClient::new(
        CLIENT_ID,
        CLIENT_SECRET,
        [app.url("/api/auth/oauth/google/callback")],
    ));
    sandbox.microsoft().register_app(OAuthClient::new(
        MS_CLIENT_ID,
        MS_CLIENT_SECRET,
        [app.url("/api/auth/oauth/microsoft/callback")],
    ));
    sandbox
        .microsoft()
        .create_account(ANN_OUTLOOK, "Ann Example");
    let tenant = app.bare_tenant("acme").await;
    World {
        app,
        sandbox,
        sandbox_url,
        tenant,
    }
}

pub async fn world() -> World {
    world_with(&[]).await
}

impl World {
    pub async fn authorization_url(&self, body: Value) -> String {
        self.authorization_url_as(&self.tenant, body).await
    }

    /// `POST /api/integrations/google/connect` with `tenant`'s key.
    pub async fn authorization_url_as(&self, tenant: &Tenant, body: Value) -> String {
        let answer = self
            .app
            .client
            .post(self.app.url("/api/integrations/google/connect"))
            .bearer_auth(&tenant.key)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 200);
        let answer: Value = answer.json().await.unwrap();
        answer["authorization_url"].as_str().unwrap().to_owned()
    }

    /// Follow Google's redirect to the callback (confirming on Mailwright's
    /// page when it asks, as the person would); the final `Location`.
    pub async fn callback(&self, redirect: &str, cookie: Option<&str>) -> String {
        match cookie {
            None => mailwright::ui::connect_confirm::finish_consent_as_browser(
                &self.app.client,
                redirect,
            )
            .await
            .unwrap(),
            Some(cookie) => {
                let response = self
                    .app
                    .client
                    .get(redirect)
                    .header("cookie", cookie)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(response.status(), 302, "a signed-in callback redirects");
                response.headers()["location"].to_str().unwrap().to_owned()
            }
        }
    }

    /// Connect Gmail with `consent`; the outcome's query parameters.
    pub async fn connect(&self, consent: Consent) -> HashMap<String, String> {
        self.connect_as(&self.tenant, consent).await
    }

    /// [`World::connect`] in `tenant`'s workspace.
    pub async fn connect_as(&self, tenant: &Tenant, consent: Consent) -> HashMap<String, String> {
        let url = self
            .authorization_url_as(tenant, json!({"type": "gmail"}))
            .await;
        let redirect = self.sandbox.approve(&url, consent).unwrap();
        outcome(&self.callback(&redirect, None).await)
    }

    /// `POST /api/integrations/microsoft/connect` with `tenant`'s key: the
    /// answer's status and body.
    pub async fn microsoft_connect_as(&self, tenant: &Tenant, body: Value) -> (u16, Value) {
        let answer = self
            .app
            .client
            .post(self.app.url("/api/integrations/microsoft/connect"))
            .bearer_auth(&tenant.key)
            .json(&body)
            .send()
            .await
            .unwrap();
        (answer.status().as_u16(), answer.json().await.unwrap())
    }

    /// Connect Outlook with `consent` on Microsoft's screen; the outcome's
    /// query parameters.
    pub async fn connect_outlook(&self, consent: Consent) -> HashMap<String, String> {
        self.connect_outlook_as(&self.tenant, consent).await
    }

    /// [`World::connect_outlook`] in `tenant`'s workspace.
    pub async fn connect_outlook_as(
        &self,
        tenant: &Tenant,
        consent: Consent,
    ) -> HashMap<String, String> {
        let (status, answer) = self
            .microsoft_connect_as(tenant, json!({"type": "outlook"}))
            .await;
        assert_eq!(status, 200, "{answer}");
        let url = answer["authorization_url"].as_str().unwrap();
        let redirect = self.sandbox.microsoft().approve(url, consent).unwrap();
        outcome(&self.callback(&redirect, None).await)
    }

    /// Refreshes Microsoft's token endpoint has answered or refused.
    pub fn microsoft_refreshes(&self) -> u64 {
        self.sandbox.microsoft().call_count("token.refresh_token")
    }

    /// The workspace's system email (`GET /api/system-emails`), newest first.
    pub async fn outbox(&self) -> Vec<Value> {
        let answer: Value = self
            .app
            .get_as("/api/system-emails", &self.tenant.key)
            .await
            .json()
            .await
            .unwrap();
        answer["emails"].as_array().unwrap().clone()
    }

    pub async fn integration(&self, id: &str) -> Value {
        self.app
            .get_as(&format!("/api/integrations/{id}"), &self.tenant.key)
            .await
            .json()
            .await
            .unwrap()
    }

    pub async fn rows(&self) -> usize {
        self.app
            .store
            .integrations(self.tenant.workspace)
            .await
            .unwrap()
            .len()
    }

    pub fn ids(&self, integration: &str) -> (WorkspaceId, IntegrationId) {
        (
            self.tenant.workspace,
            IntegrationId::parse(integration).unwrap(),
        )
    }

    pub fn refreshes(&self) -> u64 {
        self.sandbox.call_count("oauth.token.refresh_token")
    }

    /// Make the stored access token due for refresh.
    pub async fn expire_stored_token(&self, integration: &str) {
        let (workspace, id) = self.ids(integration);
        let tokens = self.app.store.tokens(workspace, id).await.unwrap().unwrap();
        self.app
            .store
            .expire_access_token(workspace, id, tokens.version)
            .await
            .unwrap();
    }

    /// A second, independent process's vault over the same database.
    pub async fn second_process_vault(&self) -> Vault {
        let store = self.app.db.connect().await;
        let keyring = Arc::new(Keyring::parse(super::TEST_ENCRYPTION_KEYS).unwrap());
        let http = reqwest::Client::new();
        let url = |path: &str| url::Url::parse(&format!("{}{path}", self.sandbox_url)).unwrap();
        let endpoints = GoogleEndpoints {
            auth_url: url("/o/oauth2/v2/auth"),
            token_url: url("/token"),
            revoke_url: url("/revoke"),
            userinfo_url: url("/v1/userinfo"),
        };
        let google = GoogleOAuth::new(
            CLIENT_ID.into(),
            SecretString::from(CLIENT_SECRET),
            endpoints,
            http.clone(),
        );
        let notifier = Arc::new(engine::notify::Notifier::new(
            store.clone(),
            self.app.address.clone(),
        ));
        let microsoft = MicrosoftOAuth::new(
            MS_CLIENT_ID.into(),
            SecretString::from(MS_CLIENT_SECRET),
            MicrosoftEndpoints {
                auth_url: url("/microsoft/common/oauth2/v2.0/authorize"),
                token_url: url("/microsoft/common/oauth2/v2.0/token"),
                graph_url: url("/microsoft"),
            },
            http.clone(),
        );
        Vault::new(
            store,
            keyring,
            Some(google),
            Gmail::new(url(""), http),
            notifier,
        )
        .with_microsoft(Some(microsoft))
    }

    /// The stored tokens, decrypted.
    pub async fn plaintext_tokens(&self, integration: &str) -> (String, String) {
        let (workspace, id) = self.ids(integration);
        let keyring = Keyring::parse(super::TEST_ENCRYPTION_KEYS).unwrap();
        let tokens = self.app.store.tokens(workspace, id).await.unwrap().unwrap();
        let access = keyring
            .open_secret(&tokens.access_token, &token_context(id, "access"))
            .unwrap();
        let refresh = keyring
            .open_secret(
                tokens.refresh_token.as_ref().unwrap(),
                &token_context(id, "refresh"),
            )
            .unwrap();
        (
            access.expose_secret().to_owned(),
            refresh.expose_secret().to_owned(),
        )
    }
}

/// Google's answer when the grant lacks a scope the call needs.
pub fn insufficient_permissions() -> sandbox::Fault {
    sandbox::Fault::Status {
        status: 403,
        body: json!({"error": {"code": 403, "message": "Request had insufficient authentication scopes.",
            "errors": [{"message": "Insufficient Permission", "domain": "global", "reason": "insufficientPermissions"}],
            "status": "PERMISSION_DENIED"}}),
    }
}

pub fn outcome(location: &str) -> HashMap<String, String> {
    assert!(
        location.starts_with("/integrations"),
        "back to the return_to path: {location}"
    );
    let url = url::Url::parse(&format!("http://app{location}")).unwrap();
    url.query_pairs()
        .map(|(key, value)| (key.into_owned(), value.into_owned()))
        .collect()
}
