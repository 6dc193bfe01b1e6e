//! The whole OAuth dance with the `oauth2` crate (v5) as the client: PKCE,
//! code exchange with HTTP Basic client auth, refresh, revocation.

mod common;

use common::*;
use mailwright_sandbox::Consent;
use oauth2::basic::BasicClient;
use oauth2::{
    AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, HttpRequest, HttpResponse,
    PkceCodeChallenge, RedirectUrl, RequestTokenError, RevocationUrl, Scope,
    StandardRevocableToken, TokenResponse, TokenUrl,
};

/// oauth2's `AsyncHttpClient` is implemented for any
/// `Fn(HttpRequest) -> impl Future<Output = Result<HttpResponse, E>>`;
/// this adapts reqwest 0.13 (which does not follow redirects here).
async fn send(http: reqwest::Client, request: HttpRequest) -> Result<HttpResponse, reqwest::Error> {
    let (parts, body) = request.into_parts();
    let mut builder = http.request(parts.method, parts.uri.to_string()).body(body);
    for (name, value) in &parts.headers {
        builder = builder.header(name, value);
    }
    let response = builder.send().await?;
    let mut out = oauth2::http::Response::builder().status(response.status());
    for (name, value) in response.headers() {
        out = out.header(name, value);
    }
    let bytes = response.bytes().await?;
    Ok(out.body(bytes.to_vec()).unwrap())
}

#[tokio::test]
async fn full_flow_with_the_oauth2_crate() {
    let h = start().await;
    let http_client = |request: HttpRequest| send(h.http.clone(), request);
    let client = BasicClient::new(ClientId::new(CLIENT_ID.to_owned()))
        .set_client_secret(ClientSecret::new(CLIENT_SECRET.to_owned()))
        .set_auth_uri(AuthUrl::new(h.url("/o/oauth2/v2/auth")).unwrap())
        .set_token_uri(TokenUrl::new(h.url("/token")).unwrap())
        .set_redirect_uri(RedirectUrl::new(REDIRECT_URI.to_owned()).unwrap())
        .set_revocation_url(RevocationUrl::new(h.url("/revoke")).unwrap());

    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (auth_url, csrf) = client
        .authorize_url(CsrfToken::new_random)
        .add_scope(Scope::new("openid".into()))
        .add_scope(Scope::new("email".into()))
        .add_scope(Scope::new(GMAIL_MODIFY.into()))
        .add_extra_param("access_type", "offline")
        .set_pkce_challenge(challenge)
        .url();

    let redirect = h
        .sandbox
        .approve(auth_url.as_str(), Consent::allow_all().as_account(ANN))
        .unwrap();
    assert_eq!(
        query_param(&redirect, "state").as_deref(),
        Some(csrf.secret().as_str())
    );
    let code = query_param(&redirect, "code").unwrap();

    let token = client
        .exchange_code(AuthorizationCode::new(code))
        .set_pkce_verifier(verifier)
        .request_async(&http_client)
        .await
        .unwrap();
    assert_eq!(token.expires_in().unwrap().as_secs(), 3599);
    let scopes: Vec<String> = token
        .scopes()
        .unwrap()
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(
        scopes,
        [
            GMAIL_MODIFY,
            "https://www.googleapis.com/auth/userinfo.email",
            "openid"
        ]
    );
    let refresh = token.refresh_token().unwrap().clone();
    let (status, profile) = h.gmail_get(token.access_token().secret(), "profile").await;
    assert_eq!(status, 200);
    assert_eq!(profile["emailAddress"], ANN);

    let refreshed = client
        .exchange_refresh_token(&refresh)
        .request_async(&http_client)
        .await
        .unwrap();
    assert_ne!(
        refreshed.access_token().secret(),
        token.access_token().secret()
    );
    assert!(refreshed.refresh_token().is_none());
    assert_eq!(h.sandbox.call_count("oauth.token.refresh_token"), 1);

    // oauth2 refuses a non-https revocation URL (`InsecureUrl`), and the
    // sandbox here is plain http on loopback, so revoke with reqwest.
    assert!(matches!(
        client.revoke_token(StandardRevocableToken::RefreshToken(refresh.clone())),
        Err(oauth2::ConfigurationError::InsecureUrl("revocation"))
    ));
    let revoked = h
        .http
        .post(h.url("/revoke"))
        .form(&[("token", refresh.secret())])
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), 200);
    let (status, _) = h
        .gmail_get(refreshed.access_token().secret(), "profile")
        .await;
    assert_eq!(status, 401);

    match client
        .exchange_refresh_token(&refresh)
        .request_async(&http_client)
        .await
    {
        Err(RequestTokenError::ServerResponse(error)) => {
            assert_eq!(error.error().as_ref(), "invalid_grant");
            assert_eq!(
                error.error_description().map(String::as_str),
                Some("Token has been expired or revoked.")
            );
        }
        other => panic!("expected invalid_grant, got {other:?}"),
    }
}
