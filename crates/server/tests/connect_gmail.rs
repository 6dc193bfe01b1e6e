//! Connecting Gmail through the Google sandbox: the seeds' "OAuth completes
//! but tokens are never saved" and "connected without the draft scope,
//! nobody told" must be impossible here.

mod common;

use std::collections::HashMap;
use std::sync::Arc;

use common::google::{ANN, CLIENT_ID, CLIENT_SECRET, outcome, world};
use domain::IntegrationId;
use domain::scopes::{Capability, GMAIL_COMPOSE, GMAIL_READONLY, IntegrationType};
use engine::keyring::Keyring;
use engine::vault::{VaultError, token_context};
use sandbox::{Consent, Fault};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};

fn all_but(scope: &str) -> Consent {
    Consent::allow_only(
        IntegrationType::Gmail
            .requested_scopes()
            .into_iter()
            .filter(|granted| *granted != scope),
    )
}

#[tokio::test]
async fn connecting_saves_the_integration_and_encrypted_tokens_and_status_says_connected() {
    let w = world().await;
    let result = w.connect(Consent::allow_all()).await;
    assert_eq!(
        result.get("connected").map(String::as_str),
        Some("gmail"),
        "{result:?}"
    );
    let id = result["integration_id"].clone();

    let integration = w.integration(&id).await;
    assert_eq!(integration["status"], "connected");
    assert_eq!(integration["email"], ANN);
    assert_eq!(integration["provider"], "google");
    assert_eq!(integration["missing_scopes"], json!([]));
    assert!(
        integration["granted_scopes"]
            .as_array()
            .unwrap()
            .contains(&json!(GMAIL_COMPOSE))
    );
    assert!(integration["reconnect_url"].is_null());

    let status: Value = w
        .app
        .get_as("/api/integrations/status", &w.tenant.key)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(status["gmail"]["connected"], true);
    assert_eq!(status["gmail"]["email"], ANN);
    assert_eq!(status["gmail"]["integration_id"], id.as_str());
    assert_eq!(status["calendar"]["connected"], false);

    // The tokens exist, and only as ciphertext.
    let (access, refresh) = w.plaintext_tokens(&id).await;
    assert!(access.len() > 10 && refresh.len() > 10);
    let token = w
        .app
        .vault
        .access_token(w.tenant.workspace, IntegrationId::parse(&id).unwrap())
        .await
        .unwrap();
    assert_eq!(token.expose_secret(), access);
    // On both backends: the stored bytes are ciphertext, not the token.
    let stored = w
        .app
        .store
        .tokens(w.tenant.workspace, IntegrationId::parse(&id).unwrap())
        .await
        .unwrap()
        .unwrap();
    for (secret, bytes) in [
        (&access, &stored.access_token.bytes),
        (&refresh, &stored.refresh_token.as_ref().unwrap().bytes),
    ] {
        assert!(
            !bytes
                .windows(secret.len())
                .any(|window| window == secret.as_bytes()),
            "a token is stored in plaintext"
        );
        assert!(
            bytes.len() >= secret.len() + 24 + 16,
            "nonce + ciphertext + tag"
        );
    }
    // On SQLite, the whole database file too.
    if store::testing::backend_under_test() == store::Backend::Sqlite {
        let mut raw = Vec::new();
        for file in ["mailwright.db", "mailwright.db-wal"] {
            raw.extend(std::fs::read(w.app.db.data_dir().join(file)).unwrap_or_default());
        }
        assert!(raw.len() > 4096, "read the database files");
        for secret in [&access, &refresh] {
            assert!(
                !raw.windows(secret.len())
                    .any(|window| window == secret.as_bytes()),
                "a token is stored in plaintext"
            );
        }
    }
    let listing = w
        .app
        .get_as("/api/integrations", &w.tenant.key)
        .await
        .text()
        .await
        .unwrap();
    assert!(!listing.contains(&access) && !listing.contains(&refresh));

    let metrics = w.app.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains(r#"mailwright_integrations{status="connected"} 1"#),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_grant_without_the_compose_scope_says_so_and_reconnecting_fixes_it_in_place() {
    let w = world().await;
    let result = w.connect(all_but(GMAIL_COMPOSE)).await;
    assert_eq!(
        result.get("connected").map(String::as_str),
        Some("gmail"),
        "a partial grant still connects"
    );
    let id = result["integration_id"].clone();

    let integration = w.integration(&id).await;
    assert_eq!(integration["status"], "missing_scopes");
    assert_eq!(integration["missing_scopes"], json!([GMAIL_COMPOSE]));
    let reconnect = integration["reconnect_url"].as_str().unwrap().to_owned();
    let status: Value = w
        .app
        .get_as("/api/integrations/status", &w.tenant.key)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(status["gmail"]["connected"], false);
    assert_eq!(status["gmail"]["status"], "missing_scopes");
    assert_eq!(status["gmail"]["missing_scopes"], json!([GMAIL_COMPOSE]));

    // The reconnect URL goes straight to Google, asking for what is missing.
    let to_google = w.app.get_as(&reconnect, &w.tenant.key).await;
    assert_eq!(to_google.status(), 302);
    let consent_url = to_google.headers()["location"].to_str().unwrap().to_owned();
    assert!(consent_url.starts_with(&w.sandbox_url));
    let asked: HashMap<String, String> = url::Url::parse(&consent_url)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect();
    assert!(asked["scope"].contains(GMAIL_COMPOSE), "{asked:?}");
    assert_eq!(asked["include_granted_scopes"], "true");
    assert_eq!(asked["login_hint"], ANN);

    let redirect = w
        .sandbox
        .approve(&consent_url, Consent::allow_all())
        .unwrap();
    let result = outcome(&w.callback(&redirect, None).await);
    assert_eq!(
        result["integration_id"], id,
        "the same integration, updated in place"
    );
    assert_eq!(w.integration(&id).await["status"], "connected");
    assert_eq!(w.rows().await, 1);
}

#[tokio::test]
async fn bad_callbacks_end_in_a_named_error_and_write_nothing() {
    let w = world().await;

    // Forged state.
    let forged = w
        .callback(
            &w.app
                .url("/api/auth/oauth/google/callback?code=x&state=forged"),
            None,
        )
        .await;
    assert_eq!(outcome(&forged)["error"], "state_invalid");
    // No state at all, with Google's extra parameters.
    let bare = w.callback(&w.app.url("/api/auth/oauth/google/callback?code=x&scope=openid&authuser=0&prompt=consent&hd=example.com"), None).await;
    assert_eq!(outcome(&bare)["error"], "invalid_request");

    // The person clicks "Cancel" on Google's screen.
    let url = w
        .authorization_url(json!({"type": "gmail", "return_to": "/settings?tab=mail"}))
        .await;
    let denied = w.sandbox.approve(&url, Consent::deny()).unwrap();
    let location = w.callback(&denied, None).await;
    assert!(
        location.starts_with("/settings?tab=mail&error=access_denied"),
        "{location}"
    );

    // Google's token endpoint is down.
    let url = w.authorization_url(json!({"type": "gmail"})).await;
    let redirect = w.sandbox.approve(&url, Consent::allow_all()).unwrap();
    w.sandbox
        .inject_fault("oauth.token", Fault::BackendError, 1);
    assert_eq!(
        outcome(&w.callback(&redirect, None).await)["error"],
        "exchange_failed"
    );
    // ... and the same callback again is a replay.
    assert_eq!(
        outcome(&w.callback(&redirect, None).await)["error"],
        "state_invalid"
    );

    // Too slow on the consent screen.
    let url = w.authorization_url(json!({"type": "gmail"})).await;
    let redirect = w.sandbox.approve(&url, Consent::allow_all()).unwrap();
    store::testing::expire_oauth_states(&w.app.store).await;
    assert_eq!(
        outcome(&w.callback(&redirect, None).await)["error"],
        "state_expired"
    );

    assert_eq!(w.rows().await, 0, "no half-written integration");
    assert!(
        w.app.store.token_key_ids().await.unwrap().is_empty(),
        "no tokens"
    );
}

#[tokio::test]
async fn a_state_issued_to_one_workspace_does_not_connect_while_signed_in_to_another() {
    let w = world().await;
    let other = w.app.bare_tenant("other").await;
    let token = "session-token-of-the-other-workspace";
    w.app
        .store
        .create_session(
            &mailwright::auth::secrets::sha256_hex(token),
            &store::sessions::Session {
                user: other.user,
                workspace: other.workspace,
                csrf_token: "csrf".into(),
                expires_at: store::now() + chrono::Duration::hours(1),
            },
        )
        .await
        .unwrap();
    let url = w.authorization_url(json!({"type": "gmail"})).await;
    let redirect = w.sandbox.approve(&url, Consent::allow_all()).unwrap();
    let location = w
        .callback(&redirect, Some(&format!("mw_session={token}")))
        .await;
    assert_eq!(outcome(&location)["error"], "state_invalid");
    assert_eq!(w.rows().await, 0);
    assert!(
        w.app
            .store
            .integrations(other.workspace)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn connect_requests_are_validated_field_by_field() {
    let w = world().await;
    let post = |body: Value| {
        w.app
            .client
            .post(w.app.url("/api/integrations/google/connect"))
            .bearer_auth(&w.tenant.key)
            .json(&body)
            .send()
    };
    let problem = common::assert_problem(
        post(json!({"type": "outlook"})).await.unwrap(),
        422,
        "validation_failed",
    )
    .await;
    assert_eq!(problem["errors"][0]["field"], "type");
    for evil in ["https://evil.example/", "//evil.example/x"] {
        let problem = common::assert_problem(
            post(json!({"type": "gmail", "return_to": evil}))
                .await
                .unwrap(),
            422,
            "validation_failed",
        )
        .await;
        assert_eq!(problem["errors"][0]["field"], "return_to");
    }
    let url = w.authorization_url(json!({"type": "calendar"})).await;
    let asked: HashMap<String, String> = url::Url::parse(&url)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect();
    assert_eq!(asked["code_challenge_method"], "S256");
    assert_eq!(asked["access_type"], "offline");
    assert_eq!(asked["prompt"], "consent");
    assert!(asked["scope"].contains("calendar.events"));
    assert!(!asked.contains_key("code_verifier"));
}

#[tokio::test]
async fn an_expiring_token_is_refreshed_once_for_twenty_concurrent_callers_in_two_processes() {
    let w = world().await;
    let id = w.connect(Consent::allow_all()).await["integration_id"].clone();
    let (workspace, integration) = w.ids(&id);
    let (old_access, _) = w.plaintext_tokens(&id).await;

    // Within one process.
    w.expire_stored_token(&id).await;
    let before = w.refreshes();
    let callers: Vec<_> = (0..20)
        .map(|_| {
            let vault = Arc::clone(&w.app.vault);
            tokio::spawn(async move {
                vault
                    .access_token(workspace, integration)
                    .await
                    .unwrap()
                    .expose_secret()
                    .to_owned()
            })
        })
        .collect();
    let mut tokens = std::collections::BTreeSet::new();
    for caller in callers {
        tokens.insert(caller.await.unwrap());
    }
    assert_eq!(w.refreshes() - before, 1, "exactly one refresh");
    assert_eq!(tokens.len(), 1, "everyone got the same, new token");
    assert!(!tokens.contains(&old_access));

    // Across two processes sharing the database.
    let second = Arc::new(w.second_process_vault().await);
    w.expire_stored_token(&id).await;
    let before = w.refreshes();
    let callers: Vec<_> = (0..20)
        .map(|n| {
            let vault = if n % 2 == 0 {
                Arc::clone(&w.app.vault)
            } else {
                Arc::clone(&second)
            };
            tokio::spawn(async move {
                vault
                    .access_token(workspace, integration)
                    .await
                    .unwrap()
                    .expose_secret()
                    .to_owned()
            })
        })
        .collect();
    let mut tokens = std::collections::BTreeSet::new();
    for caller in callers {
        tokens.insert(caller.await.unwrap());
    }
    assert_eq!(
        w.refreshes() - before,
        1,
        "one refresh across both processes"
    );
    assert_eq!(tokens.len(), 1);
}

#[tokio::test]
async fn a_revoked_grant_means_needs_reauth_after_one_attempt_and_no_retry_storm() {
    let w = world().await;
    let id = w.connect(Consent::allow_all()).await["integration_id"].clone();
    let (workspace, integration) = w.ids(&id);
    assert!(w.sandbox.revoke_grant(ANN, CLIENT_ID));
    w.expire_stored_token(&id).await;

    let before = w.refreshes();
    // Many callers at once, in two processes, then more later.
    let second = Arc::new(w.second_process_vault().await);
    let callers: Vec<_> = (0..12)
        .map(|n| {
            let vault = if n % 2 == 0 {
                Arc::clone(&w.app.vault)
            } else {
                Arc::clone(&second)
            };
            tokio::spawn(async move { vault.access_token(workspace, integration).await })
        })
        .collect();
    for caller in callers {
        let result = caller.await.unwrap();
        assert!(matches!(result, Err(VaultError::NeedsReauth)), "{result:?}");
    }
    for _ in 0..3 {
        let result = w.app.vault.access_token(workspace, integration).await;
        assert!(matches!(result, Err(VaultError::NeedsReauth)), "{result:?}");
    }
    assert_eq!(
        w.refreshes() - before,
        1,
        "one call to Google, then none until reconnect"
    );

    let view = w.integration(&id).await;
    assert_eq!(view["status"], "needs_reauth");
    assert_eq!(view["last_error"]["code"], "needs_reauth");
    assert!(
        view["last_error"]["message"]
            .as_str()
            .unwrap()
            .contains("Reconnect"),
        "{view}"
    );
    assert!(view["reconnect_url"].is_string());
    let status: Value = w
        .app
        .get_as("/api/integrations/status", &w.tenant.key)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        (
            status["gmail"]["connected"].clone(),
            status["gmail"]["status"].clone()
        ),
        (json!(false), json!("needs_reauth"))
    );

    // Reconnecting repairs it.
    let result = w.connect(Consent::allow_all()).await;
    assert_eq!(result["integration_id"], id);
    assert_eq!(w.integration(&id).await["status"], "connected");
    assert!(
        w.app
            .vault
            .access_token(workspace, integration)
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn google_being_down_is_retried_and_never_flips_the_status() {
    let w = world().await;
    let id = w.connect(Consent::allow_all()).await["integration_id"].clone();
    let (workspace, integration) = w.ids(&id);

    w.expire_stored_token(&id).await;
    w.sandbox
        .inject_fault("oauth.token", Fault::BackendError, 1);
    assert!(
        w.app
            .vault
            .access_token(workspace, integration)
            .await
            .is_ok(),
        "one 500, then success"
    );

    w.expire_stored_token(&id).await;
    w.sandbox
        .inject_fault("oauth.token", Fault::BackendError, 10);
    let result = w.app.vault.access_token(workspace, integration).await;
    assert!(
        matches!(result, Err(VaultError::Unavailable { .. })),
        "{result:?}"
    );
    let view = w.integration(&id).await;
    assert_eq!(
        view["status"], "connected",
        "an outage is not the person's problem"
    );
    assert_eq!(view["last_error"]["code"], "provider_unavailable");
    w.sandbox.clear_faults();
}

#[tokio::test]
async fn gmail_401_refreshes_once_and_403_for_scopes_marks_missing_scopes_at_once() {
    let w = world().await;
    let id = w.connect(Consent::allow_all()).await["integration_id"].clone();
    let (workspace, integration) = w.ids(&id);
    let gmail = w.app.vault.gmail().clone();
    let profile = |token: SecretString| {
        let gmail = gmail.clone();
        async move { gmail.profile(&token).await }
    };

    // Google stops accepting the access token before its expiry.
    let (access, _) = w.plaintext_tokens(&id).await;
    assert!(w.sandbox.expire_access_token(&access));
    let before = w.refreshes();
    let answer = w
        .app
        .vault
        .with_gmail(workspace, integration, Capability::ReadMail, profile)
        .await
        .unwrap();
    assert_eq!(answer.email_address, ANN);
    assert_eq!(w.refreshes() - before, 1);
    assert!(
        w.integration(&id).await["last_used_at"].is_string(),
        "use is recorded"
    );

    // A second 401 right after a refresh is an error, not a loop.
    w.sandbox
        .inject_fault("getProfile", Fault::InvalidCredentials, 2);
    let before = w.refreshes();
    let result = w
        .app
        .vault
        .with_gmail(workspace, integration, Capability::ReadMail, profile)
        .await;
    assert!(matches!(result, Err(VaultError::Rejected(_))), "{result:?}");
    assert_eq!(w.refreshes() - before, 1);

    // The seed's failure: 403 insufficientPermissions, at run time.
    w.sandbox
        .inject_fault("getProfile", common::google::insufficient_permissions(), 1);
    let result = w
        .app
        .vault
        .with_gmail(workspace, integration, Capability::ReadMail, profile)
        .await;
    assert!(
        matches!(&result, Err(VaultError::MissingScopes(scopes)) if scopes == &[GMAIL_READONLY.to_owned()]),
        "{result:?}"
    );
    let view = w.integration(&id).await;
    assert_eq!(view["status"], "missing_scopes");
    assert_eq!(view["missing_scopes"], json!([GMAIL_READONLY]));
    assert_eq!(view["last_error"]["code"], "missing_scopes");
    assert!(view["reconnect_url"].is_string());
}

#[tokio::test]
async fn disconnecting_revokes_at_google_and_forgets_the_tokens_even_if_revocation_fails() {
    let w = world().await;
    let id = w.connect(Consent::allow_all()).await["integration_id"].clone();
    let (workspace, integration) = w.ids(&id);
    let revocations = w.sandbox.call_count("oauth.revoke");
    let answer = w
        .app
        .client
        .delete(w.app.url(&format!("/api/integrations/{id}")))
        .bearer_auth(&w.tenant.key)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 204);
    assert_eq!(w.sandbox.call_count("oauth.revoke") - revocations, 1);
    assert!(
        w.app
            .store
            .tokens(workspace, integration)
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(w.integration(&id).await["status"], "disconnected");
    assert!(matches!(
        w.app.vault.access_token(workspace, integration).await,
        Err(VaultError::Disconnected)
    ));

    // Reconnect, then disconnect while Google's revocation endpoint fails.
    w.connect(Consent::allow_all()).await;
    w.sandbox
        .inject_fault("oauth.revoke", Fault::BackendError, 1);
    let answer = w
        .app
        .client
        .delete(w.app.url(&format!("/api/integrations/{id}")))
        .bearer_auth(&w.tenant.key)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 204);
    assert!(
        w.app
            .store
            .tokens(workspace, integration)
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn without_a_google_client_connecting_says_what_the_operator_must_set() {
    let app = common::spawn_app().await;
    let tenant = app.bare_tenant("acme").await;
    let answer = app
        .client
        .post(app.url("/api/integrations/google/connect"))
        .bearer_auth(&tenant.key)
        .json(&json!({"type": "gmail"}))
        .send()
        .await
        .unwrap();
    let problem = common::assert_problem(answer, 503, "provider_unavailable").await;
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("MAILWRIGHT_GOOGLE_CLIENT_ID")
    );
}

#[tokio::test]
async fn keys_rotate_and_a_wrong_or_missing_key_stops_the_start() {
    let w = world().await;
    let id = w.connect(Consent::allow_all()).await["integration_id"].clone();
    let (workspace, integration) = w.ids(&id);
    let (access, refresh) = w.plaintext_tokens(&id).await;
    let store = &w.app.store;

    // The same id with a different key: refused at start, with the reason.
    let impostor = Keyring::parse(Keyring::generate_entry("test").expose_secret()).unwrap();
    let error = engine::keys::verify(store, &impostor)
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains("key `test` is not the key"), "{error}");

    // A webhook token is a secret under the same keys.
    let workflow: Value = w
        .app
        .client
        .post(w.app.url("/api/workflows"))
        .bearer_auth(&w.tenant.key)
        .json(&json!({"name": "hook", "trigger": {"type": "webhook"},
                      "steps": [{"action": "email.send_system", "to": ["ops@example.com"], "subject": "s", "body": "b"}]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let webhook_url = workflow["webhook_url"].as_str().unwrap().to_owned();

    // Rotation: a new first key, the old one kept for reading.
    let new_key = Keyring::generate_entry("next");
    let both = Keyring::parse(&format!(
        "{},{}",
        new_key.expose_secret(),
        common::TEST_ENCRYPTION_KEYS
    ))
    .unwrap();
    engine::keys::verify(store, &both).await.unwrap();
    assert_eq!(
        engine::keys::rotate(store, &both).await.unwrap(),
        2,
        "the OAuth tokens and the webhook token"
    );
    assert_eq!(
        store.token_key_ids().await.unwrap(),
        vec!["next".to_owned()]
    );
    assert_eq!(
        engine::keys::rotate(store, &both).await.unwrap(),
        0,
        "nothing left to rotate"
    );

    // Now the new key alone reads the same tokens...
    let only_new = Keyring::parse(new_key.expose_secret()).unwrap();
    engine::keys::verify(store, &only_new).await.unwrap();
    let tokens = store.tokens(workspace, integration).await.unwrap().unwrap();
    assert_eq!(
        only_new
            .open_secret(&tokens.access_token, &token_context(integration, "access"))
            .unwrap()
            .expose_secret(),
        access
    );
    let sealed_refresh = tokens.refresh_token.unwrap();
    assert_eq!(
        only_new
            .open_secret(&sealed_refresh, &token_context(integration, "refresh"))
            .unwrap()
            .expose_secret(),
        refresh
    );
    let (_, workflow_id, sealed_hook) = store.webhook_secrets().await.unwrap().remove(0);
    let hook_token = only_new
        .open_secret(
            &sealed_hook,
            &engine::workflows::webhook_context(workflow_id),
        )
        .unwrap();
    assert!(webhook_url.ends_with(&format!("token={}", hook_token.expose_secret())));
    // ...and the old key alone no longer can: the start says which key is missing.
    let only_old = Keyring::parse(common::TEST_ENCRYPTION_KEYS).unwrap();
    let error = engine::keys::verify(store, &only_old)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("encrypted with key `next`, which is not configured"),
        "{error}"
    );
}

#[tokio::test]
async fn no_token_code_or_client_secret_reaches_the_logs() {
    let captured = common::logs::CapturedLogs::install();

    let w = world().await;
    let url = w.authorization_url(json!({"type": "gmail"})).await;
    let redirect = w.sandbox.approve(&url, Consent::allow_all()).unwrap();
    let code = url::Url::parse(&redirect)
        .unwrap()
        .query_pairs()
        .find(|(key, _)| key == "code")
        .unwrap()
        .1
        .into_owned();
    let state = url::Url::parse(&url)
        .unwrap()
        .query_pairs()
        .find(|(key, _)| key == "state")
        .unwrap()
        .1
        .into_owned();
    let id = outcome(&w.callback(&redirect, None).await)["integration_id"].clone();
    let (old_access, _) = w.plaintext_tokens(&id).await;
    w.expire_stored_token(&id).await;
    let (workspace, integration) = w.ids(&id);
    w.app
        .vault
        .access_token(workspace, integration)
        .await
        .unwrap();
    let (access, refresh) = w.plaintext_tokens(&id).await;
    // A failing exchange logs its cause too; that line must be clean as well.
    w.callback(
        &w.app.url(&format!(
            "/api/auth/oauth/google/callback?code={code}&state={state}"
        )),
        None,
    )
    .await;

    let logs = captured.text();
    assert!(logs.contains("connected an account"), "the capture works");
    for secret in [
        &old_access,
        &access,
        &refresh,
        &code,
        &state,
        &CLIENT_SECRET.to_owned(),
    ] {
        assert!(
            !logs.contains(secret.as_str()),
            "a secret reached the logs: {}…",
            &secret[..6]
        );
    }
}
