//! Connecting Outlook (Microsoft 365) through the Microsoft sandbox: the
//! same guarantees as Gmail's connection (tokens saved, encrypted, in one
//! write; a missing permission said and repaired in place; a withdrawn
//! consent ending in `needs_reauth` with one notice), plus Microsoft's own
//! rule: every refresh rotates the refresh token, so the new one is stored
//! with the refresh, once across processes, or the connection dies.

mod common;

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use common::google::{ANN_OUTLOOK, MS_CLIENT_ID, outcome, world};
use common::ui::{page, session};
use domain::IntegrationId;
use domain::scopes::IntegrationType;
use engine::vault::VaultError;
use sandbox::Consent;
use secrecy::ExposeSecret;
use serde_json::{Value, json};

fn all_but(scope: &str) -> Consent {
    Consent::allow_only(
        IntegrationType::Outlook
            .requested_scopes()
            .into_iter()
            .filter(|granted| *granted != scope),
    )
}

#[tokio::test]
async fn connecting_outlook_saves_the_integration_and_encrypted_tokens() {
    let w = world().await;
    let result = w.connect_outlook(Consent::allow_all()).await;
    assert_eq!(
        result.get("connected").map(String::as_str),
        Some("outlook"),
        "{result:?}"
    );
    let id = result["integration_id"].clone();
    let view = w.integration(&id).await;
    assert_eq!(view["provider"], "microsoft");
    assert_eq!(view["type"], "outlook");
    assert_eq!(view["status"], "connected");
    assert_eq!(view["email"], ANN_OUTLOOK);
    assert_eq!(view["display_name"], "Ann Example");
    assert_eq!(view["token_source"], "microsoft");
    assert_eq!(view["missing_scopes"], json!([]));
    assert!(view["reconnect_url"].is_null());
    let granted: BTreeSet<String> = serde_json::from_value(view["granted_scopes"].clone()).unwrap();
    // As Microsoft writes them: short names, no offline_access.
    for scope in [
        "Mail.ReadWrite",
        "Mail.Send",
        "User.Read",
        "openid",
        "email",
    ] {
        assert!(granted.contains(scope), "{granted:?}");
    }
    assert!(!granted.contains("offline_access"));

    // Tokens stored, only as ciphertext, and usable.
    let (access, refresh) = w.plaintext_tokens(&id).await;
    assert!(access.starts_with("EwB") && refresh.starts_with("M.R3"));
    let (workspace, integration) = w.ids(&id);
    let stored = w
        .app
        .store
        .tokens(workspace, integration)
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
    }
    let token = w
        .app
        .vault
        .access_token(workspace, integration)
        .await
        .unwrap();
    assert_eq!(token.expose_secret(), access);
    let listing = w
        .app
        .get_as("/api/integrations", &w.tenant.key)
        .await
        .text()
        .await
        .unwrap();
    assert!(!listing.contains(&access) && !listing.contains(&refresh));

    // Connecting the same account again keeps one connection.
    let again = w.connect_outlook(Consent::allow_all()).await;
    assert_eq!(again["integration_id"], id);
    assert_eq!(w.rows().await, 1);

    // Another workspace sees nothing of it: as if it did not exist.
    let other = w.app.bare_tenant("globex").await;
    let foreign = w
        .app
        .get_as(&format!("/api/integrations/{id}"), &other.key)
        .await;
    let missing = w
        .app
        .get_as(
            &format!("/api/integrations/{}", IntegrationId::new()),
            &other.key,
        )
        .await;
    assert_eq!(foreign.status(), 404);
    assert_eq!(foreign.text().await.unwrap(), missing.text().await.unwrap());
}

#[tokio::test]
async fn the_authorization_url_asks_microsoft_for_every_permission_with_pkce() {
    let w = world().await;
    let (status, answer) = w
        .microsoft_connect_as(&w.tenant, json!({"type": "outlook"}))
        .await;
    assert_eq!(status, 200, "{answer}");
    let url = url::Url::parse(answer["authorization_url"].as_str().unwrap()).unwrap();
    assert!(
        url.path().ends_with("/common/oauth2/v2.0/authorize"),
        "{url}"
    );
    let asked: HashMap<String, String> = url.query_pairs().into_owned().collect();
    assert_eq!(asked["client_id"], MS_CLIENT_ID);
    assert_eq!(asked["code_challenge_method"], "S256");
    assert_eq!(asked["response_type"], "code");
    assert_eq!(
        asked["scope"],
        "offline_access openid email profile User.Read Mail.ReadWrite Mail.Send"
    );
    assert!(
        asked["redirect_uri"].ends_with("/api/auth/oauth/microsoft/callback"),
        "{asked:?}"
    );
    assert!(!asked.contains_key("code_verifier"));

    // Bad input names its field; the Google endpoint does not take Outlook.
    let (status, problem) = w
        .microsoft_connect_as(&w.tenant, json!({"type": "gmail", "return_to": "//evil"}))
        .await;
    assert_eq!(status, 422);
    let fields: Vec<&str> = problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|error| error["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["type", "return_to"]);
    let answer = w
        .app
        .client
        .post(w.app.url("/api/integrations/google/connect"))
        .bearer_auth(&w.tenant.key)
        .json(&json!({"type": "outlook"}))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 422);
}

#[tokio::test]
async fn a_consent_without_mail_send_says_so_and_reconnecting_fixes_it_in_place() {
    let w = world().await;
    let result = w.connect_outlook(all_but("Mail.Send")).await;
    let id = result["integration_id"].clone();
    let view = w.integration(&id).await;
    assert_eq!(view["status"], "missing_scopes");
    assert_eq!(view["missing_scopes"], json!(["Mail.Send"]));
    let reconnect = view["reconnect_url"].as_str().unwrap().to_owned();

    // The connections page says what is missing, in words.
    let (cookie, _) = session(&w, w.tenant.user, w.tenant.workspace).await;
    let (_, html) = page(&w, &cookie, "/integrations").await;
    assert!(html.contains("send mail as you (Mail.Send)"), "{html}");
    assert!(html.contains("Outlook"), "{html}");

    // Reconnect goes to Microsoft, for this account, asking for the lot
    // (Microsoft shows only what was not consented yet).
    let answer = w
        .app
        .client
        .get(w.app.url(&reconnect))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 302);
    let location = answer.headers()["location"].to_str().unwrap().to_owned();
    let asked: HashMap<String, String> = url::Url::parse(&location)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect();
    assert_eq!(asked["login_hint"], ANN_OUTLOOK);
    assert!(asked["scope"].contains("Mail.Send"));
    let redirect = w
        .sandbox
        .microsoft()
        .approve(&location, Consent::allow_all())
        .unwrap();
    let repaired = outcome(&w.callback(&redirect, Some(&cookie)).await);
    assert_eq!(repaired["integration_id"], id);
    let view = w.integration(&id).await;
    assert_eq!(view["status"], "connected");
    assert_eq!(w.rows().await, 1);
}

#[tokio::test]
async fn a_rotated_refresh_token_is_stored_once_for_twenty_concurrent_callers_in_two_processes() {
    let w = world().await;
    let id = w.connect_outlook(Consent::allow_all()).await["integration_id"].clone();
    let (workspace, integration) = w.ids(&id);
    let second = Arc::new(w.second_process_vault().await);

    // Three rounds: each one rotates the refresh token; a round that kept
    // the old one would fail the next (the sandbox refuses a redeemed one).
    for round in 0..3 {
        let (old_access, old_refresh) = w.plaintext_tokens(&id).await;
        w.expire_stored_token(&id).await;
        let before = w.microsoft_refreshes();
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
                        .map(|token| token.expose_secret().to_owned())
                })
            })
            .collect();
        let mut tokens = BTreeSet::new();
        for caller in callers {
            tokens.insert(caller.await.unwrap().expect("a token"));
        }
        assert_eq!(
            w.microsoft_refreshes() - before,
            1,
            "round {round}: one refresh across both processes"
        );
        assert_eq!(tokens.len(), 1, "everyone got the same, new token");
        assert!(!tokens.contains(&old_access));
        let (_, new_refresh) = w.plaintext_tokens(&id).await;
        assert_ne!(new_refresh, old_refresh, "the rotated token is stored");
        assert_eq!(w.sandbox.microsoft().live_refresh_tokens(ANN_OUTLOOK), 1);
    }
    assert_eq!(w.integration(&id).await["status"], "connected");
    assert_eq!(w.sandbox.microsoft().call_count("token.refused"), 0);
}

#[tokio::test]
async fn a_withdrawn_consent_means_needs_reauth_with_one_notice_and_reconnecting_repairs_it() {
    let w = world().await;
    let id = w.connect_outlook(Consent::allow_all()).await["integration_id"].clone();
    let (workspace, integration) = w.ids(&id);
    assert!(
        w.sandbox
            .microsoft()
            .withdraw_consent(ANN_OUTLOOK, MS_CLIENT_ID)
    );
    w.expire_stored_token(&id).await;

    let before = w.microsoft_refreshes();
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
    // The daily check and later callers add nothing.
    for _ in 0..3 {
        let result = w.app.vault.access_token(workspace, integration).await;
        assert!(matches!(result, Err(VaultError::NeedsReauth)), "{result:?}");
    }
    let checked = w.app.vault.check(workspace, integration).await;
    assert!(
        matches!(checked, Err(VaultError::NeedsReauth)),
        "{checked:?}"
    );
    assert_eq!(
        w.microsoft_refreshes() - before,
        1,
        "one call to Microsoft, then none until reconnect"
    );
    let view = w.integration(&id).await;
    assert_eq!(view["status"], "needs_reauth");
    assert_eq!(view["last_error"]["code"], "needs_reauth");
    assert!(view["reconnect_url"].is_string());

    // One notice, naming the mailbox, whose link leads to the reconnect.
    w.app.worker.drain().await.unwrap();
    let notices: Vec<Value> = w
        .outbox()
        .await
        .into_iter()
        .filter(|email| email["kind"] == "integration_needs_reauth")
        .collect();
    assert_eq!(notices.len(), 1, "{notices:?}");
    assert!(
        notices[0]["subject"]
            .as_str()
            .unwrap()
            .contains("reconnect Outlook (ann@contoso.example)"),
        "{:?}",
        notices[0]["subject"]
    );

    // Reconnecting repairs the same connection.
    let result = w.connect_outlook(Consent::allow_all()).await;
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
async fn microsoft_being_down_is_retried_and_never_flips_the_status() {
    let w = world().await;
    let id = w.connect_outlook(Consent::allow_all()).await["integration_id"].clone();
    let (workspace, integration) = w.ids(&id);
    w.expire_stored_token(&id).await;
    w.sandbox.microsoft().fail_token_calls(503, 1);
    assert!(
        w.app
            .vault
            .access_token(workspace, integration)
            .await
            .is_ok(),
        "one 503, then success"
    );
    w.expire_stored_token(&id).await;
    w.sandbox.microsoft().fail_token_calls(503, 10);
    let result = w.app.vault.access_token(workspace, integration).await;
    assert!(
        matches!(result, Err(VaultError::Unavailable { .. })),
        "{result:?}"
    );
    let view = w.integration(&id).await;
    assert_eq!(view["status"], "connected");
    assert_eq!(view["last_error"]["code"], "provider_unavailable");
    assert!(
        view["last_error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("Microsoft did not answer"),
        "{view}"
    );
}

#[tokio::test]
async fn callbacks_refuse_what_does_not_belong_and_cancel_connects_nothing() {
    let w = world().await;
    // Cancel on Microsoft's screen.
    let (_, answer) = w
        .microsoft_connect_as(&w.tenant, json!({"type": "outlook"}))
        .await;
    let redirect = w
        .sandbox
        .microsoft()
        .approve(
            answer["authorization_url"].as_str().unwrap(),
            Consent::deny(),
        )
        .unwrap();
    let result = outcome(&w.callback(&redirect, None).await);
    assert_eq!(result["error"], "access_denied");
    assert_eq!(w.rows().await, 0);

    // A state issued for Google brought to Microsoft's callback.
    let google_url = w.authorization_url(json!({"type": "gmail"})).await;
    let google_redirect = w
        .sandbox
        .approve(&google_url, Consent::allow_all())
        .unwrap();
    let query = google_redirect.split_once('?').unwrap().1;
    let crossed = w
        .app
        .client
        .get(
            w.app
                .url(&format!("/api/auth/oauth/microsoft/callback?{query}")),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(crossed.status(), 302);
    let location = crossed.headers()["location"].to_str().unwrap();
    assert_eq!(outcome(location)["error"], "state_invalid");
    assert_eq!(w.rows().await, 0);
    assert_eq!(
        w.sandbox.call_count("oauth.token.authorization_code"),
        0,
        "no code was exchanged"
    );
}

#[tokio::test]
async fn disconnecting_outlook_deletes_the_tokens_as_microsoft_cannot_revoke_them() {
    let w = world().await;
    let id = w.connect_outlook(Consent::allow_all()).await["integration_id"].clone();
    let (workspace, integration) = w.ids(&id);
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
            .is_none(),
        "tokens deleted"
    );
    let view = w.integration(&id).await;
    assert_eq!(view["status"], "disconnected");
    // Nothing was called at Microsoft (it has no revocation endpoint).
    assert_eq!(
        w.sandbox.microsoft().call_count("token"),
        1,
        "only the code exchange"
    );
}

#[tokio::test]
async fn no_token_code_or_client_secret_of_microsoft_reaches_the_logs() {
    let captured = common::logs::CapturedLogs::install();
    let w = world().await;
    let (_, answer) = w
        .microsoft_connect_as(&w.tenant, json!({"type": "outlook"}))
        .await;
    let url = answer["authorization_url"].as_str().unwrap().to_owned();
    let redirect = w
        .sandbox
        .microsoft()
        .approve(&url, Consent::allow_all())
        .unwrap();
    let query: HashMap<String, String> = url::Url::parse(&redirect)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect();
    let id = outcome(&w.callback(&redirect, None).await)["integration_id"].clone();
    let (old_access, old_refresh) = w.plaintext_tokens(&id).await;
    let (workspace, integration) = w.ids(&id);
    w.expire_stored_token(&id).await;
    w.app
        .vault
        .access_token(workspace, integration)
        .await
        .unwrap();
    let (access, refresh) = w.plaintext_tokens(&id).await;
    // A replayed code fails the exchange, and a withdrawn consent the
    // refresh: both log their cause, and those lines must be clean too.
    w.callback(&redirect, None).await;
    w.sandbox
        .microsoft()
        .withdraw_consent(ANN_OUTLOOK, MS_CLIENT_ID);
    w.expire_stored_token(&id).await;
    let _ = w.app.vault.access_token(workspace, integration).await;

    let logs = captured.text();
    assert!(
        logs.contains("connected an account") && logs.contains("AADSTS65001"),
        "the capture works, and says why the grant is gone"
    );
    for secret in [
        &old_access,
        &old_refresh,
        &access,
        &refresh,
        &query["code"],
        &query["state"],
        &common::google::MS_CLIENT_SECRET.to_owned(),
    ] {
        assert!(!logs.contains(secret.as_str()), "a secret reached the logs");
    }
}

#[tokio::test]
async fn the_doctors_probe_never_throws_a_rotated_refresh_token_away() {
    let w = world().await;
    let id = w.connect_outlook(all_but("Mail.Send")).await["integration_id"].clone();
    let (workspace, integration) = w.ids(&id);
    let stored = w
        .app
        .store
        .integration(workspace, integration)
        .await
        .unwrap();
    // Due for refresh: the probe refreshes through the vault (stored), then
    // asks Graph who the token belongs to; again, with nothing due.
    w.expire_stored_token(&id).await;
    for _ in 0..2 {
        let missing = w.app.vault.probe(&stored).await.unwrap();
        assert_eq!(missing, ["Mail.Send"]);
    }
    assert_eq!(w.microsoft_refreshes(), 1);
    assert_eq!(
        w.sandbox.microsoft().call_count("graph.me"),
        3,
        "connect + 2 probes"
    );
    // The stored refresh token is the live one: the next refresh works.
    w.expire_stored_token(&id).await;
    assert!(
        w.app
            .vault
            .access_token(workspace, integration)
            .await
            .is_ok()
    );
    assert_eq!(w.sandbox.microsoft().call_count("token.refused"), 0);
}
