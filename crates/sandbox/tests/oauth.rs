//! OAuth endpoints over real HTTP: consent page, /token, /revoke, /v1/userinfo.

mod common;

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::*;
use mailwright_sandbox::Consent;
use serde_json::{Value, json};

fn html_unescape(s: &str) -> String {
    s.replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// The value of the hidden `request` field on the consent page.
fn hidden_request(html: &str) -> String {
    let start = html.find("name=\"request\" value=\"").unwrap() + "name=\"request\" value=\"".len();
    let end = start + html[start..].find('"').unwrap();
    html_unescape(&html[start..end])
}

#[tokio::test]
async fn consent_page_over_http_grants_only_ticked_scopes() {
    let h = start().await;
    let auth_url = h.auth_url(
        "openid email https://www.googleapis.com/auth/gmail.modify",
        &[("login_hint", BOB)],
    );
    let page = h.http.get(&auth_url).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(
        page.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let html = page.text().await.unwrap();
    assert!(html.contains("Sandbox"));
    assert!(html.contains(CLIENT_ID));
    // Short `email` is shown as the userinfo URL; every scope ticked.
    for scope in [
        "openid",
        "https://www.googleapis.com/auth/userinfo.email",
        GMAIL_MODIFY,
    ] {
        assert!(
            html.contains(&format!("name=\"granted_scope\" value=\"{scope}\" checked")),
            "{scope} missing in {html}"
        );
    }
    assert!(
        html.contains(&format!("name=\"email\" value=\"{BOB}\"")),
        "login_hint preselected"
    );
    assert!(html.contains("value=\"allow\"") && html.contains("value=\"deny\""));
    assert!(
        html.matches("<link").count()
            == html.matches("<link rel=\"icon\" href=\"data:,\">").count()
            && !html.contains("<script"),
        "no external assets (the only link is the empty icon that stops a favicon request)"
    );

    let request = hidden_request(&html);
    let response = h
        .http
        .post(h.url("/o/oauth2/v2/auth"))
        .form(&[
            ("request", request.as_str()),
            ("email", BOB),
            ("granted_scope", "openid"),
            ("granted_scope", GMAIL_MODIFY),
            ("decision", "allow"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 302);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    assert!(location.starts_with(REDIRECT_URI));
    assert_eq!(query_param(&location, "state").as_deref(), Some("st-123"));
    assert!(query_param(&location, "code").unwrap().starts_with("4/"));
    assert_eq!(
        query_param(&location, "scope").as_deref(),
        Some(&*format!("{GMAIL_MODIFY} openid"))
    );
    assert_eq!(query_param(&location, "authuser").as_deref(), Some("0"));
    assert_eq!(query_param(&location, "prompt").as_deref(), Some("consent"));

    let code = query_param(&location, "code").unwrap();
    let (status, body) = h
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
    assert_eq!(status, 200);
    assert_eq!(body["scope"], format!("{GMAIL_MODIFY} openid"));
    // The token belongs to the account chosen on the page.
    let info = h
        .http
        .get(h.url("/v1/userinfo"))
        .bearer_auth(body["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    let info: Value = info.json().await.unwrap();
    assert!(
        info.get("email").is_none(),
        "email scope was unticked: {info}"
    );
    assert_eq!(info["sub"], h.sandbox.accounts()[1].sub);
}

#[tokio::test]
async fn deny_over_http_redirects_with_access_denied() {
    let h = start().await;
    let html = h
        .http
        .get(h.auth_url("email", &[]))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let response = h
        .http
        .post(h.url("/o/oauth2/v2/auth"))
        .form(&[
            ("request", hidden_request(&html).as_str()),
            ("email", ANN),
            ("decision", "deny"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 302);
    let location = response.headers()["location"].to_str().unwrap();
    assert_eq!(
        location,
        format!("{REDIRECT_URI}?error=access_denied&state=st-123")
    );
}

#[tokio::test]
async fn unknown_email_on_consent_creates_the_account() {
    let h = start().await;
    let redirect = h
        .sandbox
        .approve(
            &h.auth_url("email profile", &[]),
            Consent::allow_all().as_account("new.person@example.org"),
        )
        .unwrap();
    assert!(query_param(&redirect, "code").is_some());
    let account = h
        .sandbox
        .accounts()
        .into_iter()
        .find(|a| a.email == "new.person@example.org")
        .unwrap();
    assert_eq!(account.name, "New Person");
}

#[tokio::test]
async fn bad_client_or_redirect_uri_gets_an_error_page_not_a_redirect() {
    let h = start().await;
    let mismatched = h.auth_url("email", &[]).replace("oauth%2Fcallback", "evil");
    let response = h.http.get(&mismatched).send().await.unwrap();
    assert_eq!(response.status(), 400);
    assert!(response.headers().get("location").is_none());
    let html = response.text().await.unwrap();
    assert!(html.contains("redirect_uri_mismatch") && html.contains("Sandbox"));

    let unknown = h
        .auth_url("email", &[])
        .replace("mailwright-test", "someone-else");
    let response = h.http.get(&unknown).send().await.unwrap();
    assert_eq!(response.status(), 401);
    assert!(response.text().await.unwrap().contains("invalid_client"));

    let err = h
        .sandbox
        .approve(&mismatched, Consent::allow_all())
        .unwrap_err();
    assert_eq!(err.error, "redirect_uri_mismatch");
    let err = h
        .sandbox
        .approve(&unknown, Consent::allow_all())
        .unwrap_err();
    assert_eq!((err.error.as_str(), err.status), ("invalid_client", 401));

    // Reflected input is escaped on error pages too.
    let evil = h.url(&format!("/o/oauth2/v2/auth?client_id={CLIENT_ID}&redirect_uri=%3Cscript%3Ex&response_type=code&scope=email"));
    let html = h.http.get(evil).send().await.unwrap().text().await.unwrap();
    assert!(html.contains("&lt;script&gt;x"), "{html}");
    assert!(!html.contains("<script>"), "{html}");
}

#[tokio::test]
async fn token_response_fields_refresh_and_id_token() {
    let h = start().await;
    let body = h
        .token_for(
            ANN,
            &format!("openid email profile {GMAIL_MODIFY}"),
            &[("access_type", "offline"), ("nonce", "n-1")],
        )
        .await;
    let object = body.as_object().unwrap();
    let mut keys: Vec<&str> = object.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "access_token",
            "expires_in",
            "id_token",
            "refresh_token",
            "scope",
            "token_type"
        ]
    );
    assert_eq!(body["expires_in"], 3599);
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(
        body["scope"],
        format!(
            "{GMAIL_MODIFY} https://www.googleapis.com/auth/userinfo.email https://www.googleapis.com/auth/userinfo.profile openid"
        )
    );
    assert!(body["access_token"].as_str().unwrap().starts_with("ya29."));
    assert!(body["refresh_token"].as_str().unwrap().starts_with("1//"));

    // id_token: HS256 signed with the client secret.
    let id_token = body["id_token"].as_str().unwrap();
    let parts: Vec<&str> = id_token.split('.').collect();
    assert_eq!(parts.len(), 3);
    let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
    assert_eq!(header["alg"], "HS256");
    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    assert_eq!(claims["iss"], "https://accounts.google.com");
    assert_eq!(claims["aud"], CLIENT_ID);
    assert_eq!(claims["azp"], CLIENT_ID);
    assert_eq!(claims["email"], ANN);
    assert_eq!(claims["email_verified"], true);
    assert_eq!(claims["name"], "Ann Example");
    assert_eq!(claims["given_name"], "Ann");
    assert_eq!(claims["nonce"], "n-1");
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        3600
    );
    assert_eq!(claims["sub"], h.sandbox.accounts()[0].sub);

    // Refresh: new access token, no new refresh token.
    let (status, refreshed) = h
        .post_form(
            "/token",
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", body["refresh_token"].as_str().unwrap()),
                ("client_id", CLIENT_ID),
                ("client_secret", CLIENT_SECRET),
            ],
        )
        .await;
    assert_eq!(status, 200, "{refreshed}");
    assert_eq!(refreshed["expires_in"], 3599);
    assert_eq!(refreshed["scope"], body["scope"]);
    assert!(refreshed.get("refresh_token").is_none());
    assert!(refreshed.get("id_token").is_some());
    assert_ne!(refreshed["access_token"], body["access_token"]);
    assert_eq!(h.sandbox.call_count("oauth.token.refresh_token"), 1);
    assert_eq!(h.sandbox.call_count("oauth.token.authorization_code"), 1);
}

#[tokio::test]
async fn refresh_token_only_on_first_offline_consent_unless_prompt_consent() {
    let h = start().await;
    let first = h
        .token_for(ANN, "email", &[("access_type", "offline")])
        .await;
    assert!(first.get("refresh_token").is_some());
    let second = h
        .token_for(ANN, "email", &[("access_type", "offline")])
        .await;
    assert!(second.get("refresh_token").is_none(), "{second}");
    let forced = h
        .token_for(
            ANN,
            "email",
            &[("access_type", "offline"), ("prompt", "consent")],
        )
        .await;
    assert!(forced.get("refresh_token").is_some());
    let online = h.token_for(BOB, "email", &[]).await;
    assert!(online.get("refresh_token").is_none());
    assert!(online.get("id_token").is_none(), "no openid, no id_token");
}

#[tokio::test]
async fn include_granted_scopes_adds_earlier_grants() {
    let h = start().await;
    h.token_for(ANN, "email", &[]).await;
    let incremental = h
        .token_for(ANN, GMAIL_READONLY, &[("include_granted_scopes", "true")])
        .await;
    assert_eq!(
        incremental["scope"],
        format!("{GMAIL_READONLY} https://www.googleapis.com/auth/userinfo.email")
    );
    let without = h.token_for(ANN, GMAIL_READONLY, &[]).await;
    assert_eq!(without["scope"], GMAIL_READONLY);
}

#[tokio::test]
async fn token_endpoint_errors_have_googles_shape() {
    let h = start().await;
    let redirect = h
        .sandbox
        .approve(&h.auth_url("email", &[]), Consent::allow_all())
        .unwrap();
    let code = query_param(&redirect, "code").unwrap();
    let exchange = |code: &str, secret: &str, redirect_uri: &str| {
        vec![
            ("grant_type".to_owned(), "authorization_code".to_owned()),
            ("code".to_owned(), code.to_owned()),
            ("redirect_uri".to_owned(), redirect_uri.to_owned()),
            ("client_id".to_owned(), CLIENT_ID.to_owned()),
            ("client_secret".to_owned(), secret.to_owned()),
        ]
    };

    // JSON instead of a form.
    let response = h
        .http
        .post(h.url("/token"))
        .json(&json!({ "grant_type": "authorization_code", "code": code }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "invalid_request");
    assert!(body["error_description"].is_string());

    // Wrong secret.
    let response = h
        .http
        .post(h.url("/token"))
        .form(&exchange(&code, "nope", REDIRECT_URI))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        json!({ "error": "invalid_client", "error_description": "Unauthorized" })
    );

    // Unknown client via Basic auth.
    let response = h
        .http
        .post(h.url("/token"))
        .basic_auth("who", Some("ever"))
        .form(&[("grant_type", "refresh_token"), ("refresh_token", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);

    // Mismatched redirect_uri.
    let response = h
        .http
        .post(h.url("/token"))
        .form(&exchange(
            &code,
            CLIENT_SECRET,
            "http://127.0.0.1:9999/other",
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert_eq!(
        response.json::<Value>().await.unwrap()["error"],
        "redirect_uri_mismatch"
    );

    // First use works, second is invalid_grant.
    let ok = h
        .http
        .post(h.url("/token"))
        .form(&exchange(&code, CLIENT_SECRET, REDIRECT_URI))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    let reused = h
        .http
        .post(h.url("/token"))
        .form(&exchange(&code, CLIENT_SECRET, REDIRECT_URI))
        .send()
        .await
        .unwrap();
    assert_eq!(reused.status(), 400);
    assert_eq!(
        reused.json::<Value>().await.unwrap(),
        json!({ "error": "invalid_grant", "error_description": "Bad Request" })
    );

    // Garbage code.
    let (status, body) = h
        .post_form(
            "/token",
            &[
                ("grant_type", "authorization_code"),
                ("code", "garbage"),
                ("redirect_uri", REDIRECT_URI),
                ("client_id", CLIENT_ID),
                ("client_secret", CLIENT_SECRET),
            ],
        )
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );

    // Unsupported grant type; missing grant type.
    let (status, body) = h
        .post_form(
            "/token",
            &[
                ("grant_type", "password"),
                ("client_id", CLIENT_ID),
                ("client_secret", CLIENT_SECRET),
            ],
        )
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("unsupported_grant_type"))
    );
    let (status, body) = h
        .post_form(
            "/token",
            &[("client_id", CLIENT_ID), ("client_secret", CLIENT_SECRET)],
        )
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_request"))
    );

    // Unknown refresh token.
    let (status, body) = h
        .post_form(
            "/token",
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", "1//nope"),
                ("client_id", CLIENT_ID),
                ("client_secret", CLIENT_SECRET),
            ],
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(
        body,
        json!({ "error": "invalid_grant", "error_description": "Token has been expired or revoked." })
    );
}

#[tokio::test]
async fn codes_expire_after_ten_minutes() {
    let h = start().await;
    let redirect = h
        .sandbox
        .approve(&h.auth_url("email", &[]), Consent::allow_all())
        .unwrap();
    let code = query_param(&redirect, "code").unwrap();
    h.sandbox.advance_clock(Duration::from_secs(10 * 60 + 1));
    let (status, body) = h
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
    assert_eq!(status, 400);
    assert_eq!(body["error"], "invalid_grant");
}

#[tokio::test]
async fn pkce_verifier_is_required_and_checked() {
    let h = start().await;
    // RFC 7636 appendix B pair.
    let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
    let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    let url = h.auth_url(
        "email",
        &[
            ("code_challenge", challenge),
            ("code_challenge_method", "S256"),
        ],
    );
    let form = |code: &str, verifier: Option<&str>| {
        let mut form = vec![
            ("grant_type", "authorization_code".to_owned()),
            ("code", code.to_owned()),
            ("redirect_uri", REDIRECT_URI.to_owned()),
            ("client_id", CLIENT_ID.to_owned()),
            ("client_secret", CLIENT_SECRET.to_owned()),
        ];
        if let Some(v) = verifier {
            form.push(("code_verifier", v.to_owned()));
        }
        form
    };
    let code = query_param(
        &h.sandbox.approve(&url, Consent::allow_all()).unwrap(),
        "code",
    )
    .unwrap();
    let missing = h
        .http
        .post(h.url("/token"))
        .form(&form(&code, None))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 400);
    assert_eq!(
        missing.json::<Value>().await.unwrap()["error"],
        "invalid_grant"
    );
    let wrong = h
        .http
        .post(h.url("/token"))
        .form(&form(&code, Some("wrong-verifier")))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 400);
    let right = h
        .http
        .post(h.url("/token"))
        .form(&form(&code, Some(verifier)))
        .send()
        .await
        .unwrap();
    assert_eq!(right.status(), 200);
}

#[tokio::test]
async fn revoke_kills_the_grant_and_unknown_tokens_get_invalid_token() {
    let h = start().await;
    let body = h
        .token_for(
            ANN,
            &format!("email {GMAIL_MODIFY}"),
            &[("access_type", "offline")],
        )
        .await;
    let access = body["access_token"].as_str().unwrap();
    let refresh = body["refresh_token"].as_str().unwrap();

    let (status, _) = h.gmail_get(access, "profile").await;
    assert_eq!(status, 200);
    let response = h
        .http
        .post(h.url("/revoke"))
        .form(&[("token", refresh)])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.json::<Value>().await.unwrap(), json!({}));

    // Revoking the refresh token took the access token with it.
    let (status, body) = h.gmail_get(access, "profile").await;
    assert_eq!(status, 401);
    assert_eq!(body["error"]["status"], "UNAUTHENTICATED");
    let (status, body) = h
        .post_form(
            "/token",
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh),
                ("client_id", CLIENT_ID),
                ("client_secret", CLIENT_SECRET),
            ],
        )
        .await;
    assert_eq!(
        (status, body["error_description"].as_str()),
        (400, Some("Token has been expired or revoked."))
    );

    // Again, or unknown: invalid_token. Query-string form works too.
    let response = h
        .http
        .post(h.url(&format!("/revoke?token={refresh}")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        json!({ "error": "invalid_token", "error_description": "Token expired or revoked" })
    );

    // A fresh consent after revocation gets a refresh token again.
    let again = h
        .token_for(ANN, "email", &[("access_type", "offline")])
        .await;
    assert!(again.get("refresh_token").is_some());
}

#[tokio::test]
async fn userinfo_fields_follow_granted_scopes() {
    let h = start().await;
    let token = h.access_token(ANN, "openid email profile").await;
    let response = h
        .http
        .get(h.url("/v1/userinfo"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let info: Value = response.json().await.unwrap();
    let account = &h.sandbox.accounts()[0];
    assert_eq!(info["sub"], account.sub);
    assert_eq!(info["email"], ANN);
    assert_eq!(info["email_verified"], true);
    assert_eq!(info["name"], "Ann Example");
    assert_eq!(info["given_name"], "Ann");
    assert!(info["picture"].as_str().unwrap().starts_with("https://"));

    let response = h
        .http
        .get(h.url("/v1/userinfo"))
        .bearer_auth("ya29.nope")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    assert!(response.headers().contains_key("www-authenticate"));
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        json!({ "error": "invalid_request", "error_description": "Invalid Credentials" })
    );

    h.sandbox.advance_clock(Duration::from_secs(3600));
    let response = h
        .http
        .get(h.url("/v1/userinfo"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401, "access tokens expire after 3599 s");
}
