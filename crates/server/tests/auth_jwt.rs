//! JWT bearer authentication against a real JWKS, with real signatures.

mod common;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::idp::{self, TestIdp};
use common::{TestApp, assert_problem, spawn_app_with};
use jsonwebtoken::Algorithm;
use serde_json::{Value, json};

async fn app_trusting(idp: &TestIdp) -> TestApp {
    spawn_app_with(&idp.settings()).await
}

async fn me(app: &TestApp, token: &str) -> reqwest::Response {
    app.get_as("/api/me", token).await
}

/// A refused token: 401, the reason named, the token never echoed.
async fn assert_refused(app: &TestApp, token: &str, reason: &str) {
    let response = me(app, token).await;
    assert!(response.headers().get("www-authenticate").is_some());
    let problem = assert_problem(response, 401, "unauthorized").await;
    assert_eq!(problem["reason"], reason, "{problem}");
    let text = problem.to_string();
    for part in token.split('.').filter(|part| part.len() > 8) {
        assert!(!text.contains(part), "the answer echoes the token: {text}");
    }
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

#[tokio::test]
async fn a_valid_token_names_the_user_and_workspace_created_on_first_sight() {
    let idp = TestIdp::start().await;
    let app = app_trusting(&idp).await;
    let token = idp.rs256(&TestIdp::claims(
        "user_2abc",
        json!({"org_id": "org_acme", "email": "ada@acme.example"}),
    ));

    let first: Value = me(&app, &token).await.json().await.unwrap();
    assert_eq!(first["email"], "ada@acme.example");
    let again: Value = me(&app, &token).await.json().await.unwrap();
    assert_eq!(first, again, "the same ids every time");

    // The same person in another organisation: one user, two workspaces.
    let other_org = idp.es256(&TestIdp::claims("user_2abc", json!({"org_id": "org_beta"})));
    let second: Value = me(&app, &other_org).await.json().await.unwrap();
    assert_eq!(second["user_id"], first["user_id"]);
    assert_ne!(second["workspace_id"], first["workspace_id"]);

    // No workspace claim: the user's personal workspace, again stable.
    let personal = idp.rs256(&TestIdp::claims("user_2abc", json!({})));
    let third: Value = me(&app, &personal).await.json().await.unwrap();
    assert_eq!(third["user_id"], first["user_id"]);
    assert_ne!(third["workspace_id"], first["workspace_id"]);
    assert_ne!(third["workspace_id"], second["workspace_id"]);
    let fourth: Value = me(&app, &personal).await.json().await.unwrap();
    assert_eq!(third, fourth);
    for key in ["user_id", "workspace_id", "email"] {
        assert!(
            third.get(key).is_some(),
            "/api/me always has {key}: {third}"
        );
    }
}

#[tokio::test]
async fn a_new_identity_seen_by_many_requests_at_once_becomes_one_user() {
    let idp = TestIdp::start().await;
    let app = app_trusting(&idp).await;
    let token = idp.rs256(&TestIdp::claims("user_race", json!({"org_id": "org_race"})));
    let requests: Vec<_> = (0..12)
        .map(|_| {
            let request = app
                .client
                .get(app.url("/api/me"))
                .bearer_auth(token.clone());
            tokio::spawn(
                async move { request.send().await.unwrap().json::<Value>().await.unwrap() },
            )
        })
        .collect();
    let mut ids = std::collections::BTreeSet::new();
    for request in requests {
        let body = request.await.unwrap();
        assert!(body["user_id"].is_string(), "{body}");
        ids.insert((
            body["user_id"].to_string(),
            body["workspace_id"].to_string(),
        ));
    }
    assert_eq!(ids.len(), 1, "{ids:?}");
}

#[tokio::test]
async fn expiry_and_not_before_are_checked_with_sixty_seconds_of_leeway() {
    let idp = TestIdp::start().await;
    let app = app_trusting(&idp).await;

    let expired = idp.rs256(&TestIdp::claims("u", json!({"exp": now() - 120})));
    assert_refused(&app, &expired, "expired").await;
    let just_expired = idp.rs256(&TestIdp::claims("u", json!({"exp": now() - 20})));
    assert_eq!(
        me(&app, &just_expired).await.status(),
        200,
        "within the leeway"
    );

    let not_yet = idp.rs256(&TestIdp::claims("u", json!({"nbf": now() + 120})));
    assert_refused(&app, &not_yet, "not_yet_valid").await;
    let almost = idp.rs256(&TestIdp::claims("u", json!({"nbf": now() + 20})));
    assert_eq!(me(&app, &almost).await.status(), 200, "within the leeway");
}

/// The count of accepted tokens whose signature was checked (`signature`)
/// or remembered from an earlier check (`remembered`).
async fn accepted(app: &TestApp, check: &str) -> u64 {
    let metrics = app.get("/metrics").await.text().await.unwrap();
    let series = format!("mailwright_jwt_accepted_total{{check=\"{check}\"}} ");
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(&series))
        .map_or(0, |value| value.trim().parse().unwrap())
}

#[tokio::test]
async fn a_verified_token_is_remembered_until_its_expiry_and_only_a_verified_one() {
    let idp = TestIdp::start().await;
    let app = app_trusting(&idp).await;
    // Counted from here: the recorder is per process (nextest runs each
    // test in its own).
    let (signature, remembered) = (
        accepted(&app, "signature").await,
        accepted(&app, "remembered").await,
    );
    let token = idp.rs256(&TestIdp::claims("u", json!({"exp": now() + 600})));
    for _ in 0..3 {
        assert_eq!(me(&app, &token).await.status(), 200);
    }
    assert_eq!(accepted(&app, "signature").await, signature + 1);
    assert_eq!(accepted(&app, "remembered").await, remembered + 2);

    // A token inside the expiry leeway is accepted, but checked every time.
    let just_expired = idp.rs256(&TestIdp::claims("u", json!({"exp": now() - 20})));
    for _ in 0..2 {
        assert_eq!(me(&app, &just_expired).await.status(), 200);
    }
    assert_eq!(accepted(&app, "signature").await, signature + 3);
    assert_eq!(accepted(&app, "remembered").await, remembered + 2);

    // A token longer than 8 KiB is checked every time (the memory's bytes
    // stay bounded).
    let long = idp.rs256(&TestIdp::claims(
        "u",
        json!({"exp": now() + 600, "note": "x".repeat(9 * 1024)}),
    ));
    for _ in 0..2 {
        assert_eq!(me(&app, &long).await.status(), 200);
    }
    assert_eq!(accepted(&app, "signature").await, signature + 5);
    assert_eq!(accepted(&app, "remembered").await, remembered + 2);

    // A forged copy of the remembered token (same claims, other signature)
    // is a different text: it is checked, and refused.
    let mut parts: Vec<&str> = token.split('.').collect();
    let forged_signature = URL_SAFE_NO_PAD.encode([7u8; 256]);
    parts[2] = &forged_signature;
    assert_refused(&app, &parts.join("."), "bad_signature").await;
    assert_eq!(me(&app, &token).await.status(), 200);
    assert_eq!(accepted(&app, "remembered").await, remembered + 3);
}

#[tokio::test]
async fn issuer_and_audience_must_match() {
    let idp = TestIdp::start().await;
    let app = app_trusting(&idp).await;
    let wrong_issuer = idp.rs256(&TestIdp::claims("u", json!({"iss": "https://evil.test"})));
    assert_refused(&app, &wrong_issuer, "wrong_issuer").await;
    let wrong_audience = idp.rs256(&TestIdp::claims("u", json!({"aud": "someone-else"})));
    assert_refused(&app, &wrong_audience, "wrong_audience").await;
}

/// With an issuer and an audience configured, a well-signed token that
/// simply leaves either claim out is refused too (it was accepted before).
#[tokio::test]
async fn a_configured_issuer_or_audience_is_required_not_only_checked_when_present() {
    let idp = TestIdp::start().await;
    let app = app_trusting(&idp).await;
    for claim in ["iss", "aud"] {
        let mut claims = TestIdp::claims("u", json!({}));
        claims.as_object_mut().unwrap().remove(claim);
        assert_refused(&app, &idp.rs256(&claims), "missing_claim").await;
    }
    let complete = idp.rs256(&TestIdp::claims("u", json!({})));
    assert_eq!(me(&app, &complete).await.status(), 200);
}

#[tokio::test]
async fn forged_tokens_are_refused_for_what_they_are() {
    let idp = TestIdp::start().await;
    let app = app_trusting(&idp).await;
    let claims = TestIdp::claims("u", json!({}));

    assert_refused(&app, &TestIdp::unsigned(&claims), "unsupported_algorithm").await;
    assert_refused(
        &app,
        &idp.hs256_with_public_key(&claims),
        "unsupported_algorithm",
    )
    .await;
    // An RS256 header pointing at the EC key: the token may not choose how a key is used.
    assert_refused(
        &app,
        &idp.sign(Algorithm::RS256, Some(idp::EC_KID), &claims),
        "unsupported_algorithm",
    )
    .await;
    assert_refused(
        &app,
        &idp.sign(Algorithm::RS256, Some("rotated-away"), &claims),
        "unknown_key",
    )
    .await;

    // A valid token whose payload was swapped for another user's.
    let valid = idp.rs256(&claims);
    let mut parts: Vec<String> = valid.split('.').map(str::to_owned).collect();
    let forged_claims = TestIdp::claims("admin", json!({"org_id": "org_victim"}));
    parts[1] = URL_SAFE_NO_PAD.encode(forged_claims.to_string());
    assert_refused(&app, &parts.join("."), "bad_signature").await;

    assert_refused(&app, "not-a-jwt", "malformed_token").await;
    let no_subject =
        idp.rs256(&json!({"iss": idp::ISSUER, "aud": idp::AUDIENCE, "exp": now() + 60}));
    assert_refused(&app, &no_subject, "missing_claim").await;
    let numeric_org = idp.rs256(&TestIdp::claims("u", json!({"org_id": 42})));
    assert_refused(&app, &numeric_org, "missing_claim").await;

    assert_eq!(
        me(&app, &valid).await.status(),
        200,
        "the untampered token still works"
    );
}

#[tokio::test]
async fn a_flood_of_unknown_kids_does_not_hammer_the_jwks_url() {
    let idp = TestIdp::start().await;
    let app = app_trusting(&idp).await;
    let claims = TestIdp::claims("u", json!({}));
    assert_eq!(me(&app, &idp.rs256(&claims)).await.status(), 200);
    let fetched_for_the_valid_token = idp.jwks_hits();
    assert_eq!(fetched_for_the_valid_token, 1);

    for n in 0..40 {
        let bogus = idp.sign(Algorithm::RS256, Some(&format!("bogus-{n}")), &claims);
        assert_eq!(me(&app, &bogus).await.status(), 401);
    }
    assert!(
        idp.jwks_hits() <= fetched_for_the_valid_token + 1,
        "unknown kids refresh the key set at most once per interval, got {} fetches",
        idp.jwks_hits()
    );
}

#[tokio::test]
async fn an_unreachable_identity_provider_is_a_503_not_a_401() {
    let idp = TestIdp::start().await;
    let mut settings = idp.settings();
    settings[0].1 = "http://127.0.0.1:1/jwks.json".to_owned();
    let app = spawn_app_with(&settings).await;
    let response = me(&app, &idp.rs256(&TestIdp::claims("u", json!({})))).await;
    assert_problem(response, 503, "provider_unavailable").await;
}

#[tokio::test]
async fn jwts_are_refused_clearly_when_no_jwks_is_configured() {
    let idp = TestIdp::start().await;
    let app = common::spawn_app().await;
    assert_refused(
        &app,
        &idp.rs256(&TestIdp::claims("u", json!({}))),
        "jwt_not_configured",
    )
    .await;
}
