//! Google OAuth 2.0 for web-server apps: the authorization (consent)
//! endpoint, `/token`, `/revoke` and OpenID Connect `/v1/userinfo`.

use std::collections::BTreeSet;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::Duration;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use url::Url;

use crate::Sandbox;
use crate::control::{Consent, apply_fault};
use crate::google_error;
use crate::html;
use crate::http_util::{self, Params};
use crate::scopes;
use crate::state::{
    AccessToken, AuthCode, PkceMethod, RefreshToken, State as World, grant_key, random_token,
};

/// Lifetime of an access token, as Google reports it in `expires_in`.
pub const ACCESS_TOKEN_SECONDS: i64 = 3599;
/// Authorization codes are single-use and short-lived.
pub const CODE_LIFETIME_MINUTES: i64 = 10;
pub const ISSUER: &str = "https://accounts.google.com";

/// Why an authorization request cannot proceed. Shown as an error page,
/// never redirected, as Google does for client/redirect problems.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthorizationError {
    pub status: u16,
    pub error: String,
    pub description: String,
}

impl std::fmt::Display for AuthorizationError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.error, self.description)
    }
}

impl std::error::Error for AuthorizationError {}

impl AuthorizationError {
    fn new(status: StatusCode, error: &str, description: impl Into<String>) -> Self {
        Self {
            status: status.as_u16(),
            error: error.to_owned(),
            description: description.into(),
        }
    }

    fn into_page(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::BAD_REQUEST);
        (
            status,
            Html(html::error_page(&self.error, &self.description)),
        )
            .into_response()
    }
}

/// A validated `/o/oauth2/v2/auth` request.
#[derive(Clone, Debug)]
pub(crate) struct AuthRequest {
    client_id: String,
    redirect_uri: String,
    redirect: Url,
    scopes: Vec<String>,
    state: Option<String>,
    offline: bool,
    prompt_consent: bool,
    include_granted_scopes: bool,
    code_challenge: Option<(String, PkceMethod)>,
    login_hint: Option<String>,
    nonce: Option<String>,
    /// The original query, echoed through the consent form.
    query: String,
}

/// Outcome that is delivered to the client by redirect.
enum Refusal {
    Page(AuthorizationError),
    Redirect(Url),
}

impl AuthRequest {
    fn parse(world: &World, query: &str) -> Result<Self, Refusal> {
        let params = Params::parse(query.as_bytes());
        let page = |status, error, description: &str| {
            Refusal::Page(AuthorizationError::new(status, error, description))
        };
        let Some(client_id) = params.get("client_id") else {
            return Err(page(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "Missing required parameter: client_id",
            ));
        };
        let Some(client) = world.clients.get(client_id) else {
            return Err(page(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                "The OAuth client was not found.",
            ));
        };
        let Some(redirect_uri) = params.get("redirect_uri") else {
            return Err(page(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "Missing required parameter: redirect_uri",
            ));
        };
        if !client.redirect_uris.iter().any(|r| r == redirect_uri) {
            return Err(page(
                StatusCode::BAD_REQUEST,
                "redirect_uri_mismatch",
                &format!(
                    "You can't sign in to this app because it doesn't comply with Google's OAuth 2.0 policy. If you're the app developer, register the redirect URI in the Google Cloud Console. Request details: redirect_uri={redirect_uri}"
                ),
            ));
        }
        let Ok(redirect) = Url::parse(redirect_uri) else {
            return Err(page(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "Invalid parameter value for redirect_uri",
            ));
        };
        let state = params.get("state").map(str::to_owned);
        let redirect_error = |error: &str, description: &str| {
            let mut url = redirect.clone();
            {
                let mut pairs = url.query_pairs_mut();
                pairs.append_pair("error", error);
                pairs.append_pair("error_description", description);
                if let Some(state) = &state {
                    pairs.append_pair("state", state);
                }
            }
            Refusal::Redirect(url)
        };
        match params.get("response_type") {
            Some("code") => {}
            None => {
                return Err(page(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    "Required parameter is missing: response_type",
                ));
            }
            Some(other) => {
                return Err(redirect_error(
                    "unsupported_response_type",
                    &format!("Unsupported response_type: {other}"),
                ));
            }
        }
        let scopes = scopes::parse_list(params.get("scope").unwrap_or_default());
        if scopes.is_empty() {
            return Err(page(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "Missing required parameter: scope",
            ));
        }
        let offline = match params.get("access_type") {
            None | Some("online") => false,
            Some("offline") => true,
            Some(other) => {
                return Err(page(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    &format!("Invalid access_type: {other}"),
                ));
            }
        };
        let code_challenge = match params.get("code_challenge") {
            None => None,
            Some(challenge) => {
                let method = match params.get("code_challenge_method") {
                    Some("S256") => PkceMethod::S256,
                    None | Some("plain") => PkceMethod::Plain,
                    Some(_) => {
                        return Err(page(
                            StatusCode::BAD_REQUEST,
                            "invalid_request",
                            "Invalid code_challenge_method",
                        ));
                    }
                };
                Some((challenge.to_owned(), method))
            }
        };
        let prompt_consent = params
            .get("prompt")
            .is_some_and(|p| p.split(' ').any(|v| v == "consent"));
        Ok(Self {
            client_id: client_id.to_owned(),
            redirect_uri: redirect_uri.to_owned(),
            redirect,
            scopes,
            state,
            offline,
            prompt_consent,
            include_granted_scopes: params.get("include_granted_scopes") == Some("true"),
            code_challenge,
            login_hint: params.get("login_hint").map(str::to_owned),
            nonce: params.get("nonce").map(str::to_owned),
            query: query.to_owned(),
        })
    }
}

/// The query part of a full authorization URL, or the string itself.
fn query_of(authorization_url: &str) -> &str {
    match authorization_url.split_once('?') {
        Some((_, query)) => query,
        None => authorization_url,
    }
}

fn refusal_to_result(refusal: Refusal) -> Result<String, AuthorizationError> {
    match refusal {
        Refusal::Page(error) => Err(error),
        Refusal::Redirect(url) => Ok(url.into()),
    }
}

impl Sandbox {
    /// Drives the consent screen without HTTP: validates the authorization
    /// URL (or its query), applies `consent` and returns the URL Google
    /// would redirect the browser to (with `code` or `error`).
    pub fn approve(
        &self,
        authorization_url: &str,
        consent: Consent,
    ) -> Result<String, AuthorizationError> {
        let mut world = self.lock();
        world.count_call("oauth.authorize");
        let request = match AuthRequest::parse(&world, query_of(authorization_url)) {
            Ok(request) => request,
            Err(refusal) => return refusal_to_result(refusal),
        };
        Ok(complete_consent(&mut world, &request, consent).into())
    }
}

fn complete_consent(world: &mut World, request: &AuthRequest, consent: Consent) -> Url {
    let mut url = request.redirect.clone();
    if !consent.allow {
        {
            let mut pairs = url.query_pairs_mut();
            pairs.append_pair("error", "access_denied");
            if let Some(state) = &request.state {
                pairs.append_pair("state", state);
            }
        }
        return url;
    }
    let email = consent
        .account
        .clone()
        .or_else(|| {
            request
                .login_hint
                .clone()
                .filter(|hint| world.account(hint).is_some())
        })
        .or_else(|| world.accounts.first().map(|a| a.email.clone()))
        .unwrap_or_else(|| "user@sandbox.test".to_owned());
    let account = world.ensure_account(&email, None);
    let mut granted: BTreeSet<String> = match &consent.scopes {
        None => request.scopes.iter().cloned().collect(),
        Some(ticked) => {
            let ticked: BTreeSet<String> = ticked.iter().map(|s| scopes::normalize(s)).collect();
            request
                .scopes
                .iter()
                .filter(|s| ticked.contains(*s))
                .cloned()
                .collect()
        }
    };
    let grant = world
        .grants
        .entry(grant_key(&request.client_id, &account.email))
        .or_default();
    if request.include_granted_scopes {
        granted.extend(grant.scopes.iter().cloned());
    }
    grant.scopes.extend(granted.iter().cloned());
    let code = format!("4/0Sbx{}", random_token(60));
    let expires_at = world.now() + Duration::minutes(CODE_LIFETIME_MINUTES);
    world.codes.insert(
        code.clone(),
        AuthCode {
            client_id: request.client_id.clone(),
            email: account.email.clone(),
            redirect_uri: request.redirect_uri.clone(),
            scopes: granted.clone(),
            code_challenge: request.code_challenge.clone(),
            offline: request.offline,
            prompt_consent: request.prompt_consent,
            nonce: request.nonce.clone(),
            expires_at,
            used: false,
        },
    );
    {
        let mut pairs = url.query_pairs_mut();
        if let Some(state) = &request.state {
            pairs.append_pair("state", state);
        }
        pairs.append_pair("code", &code);
        pairs.append_pair("scope", &scopes::join(&granted));
        pairs.append_pair("authuser", "0");
        pairs.append_pair("prompt", "consent");
    }
    url
}

pub(crate) async fn authorize_page(
    State(sandbox): State<Sandbox>,
    RawQuery(query): RawQuery,
) -> Response {
    let query = query.unwrap_or_default();
    let mut world = sandbox.lock();
    world.count_call("oauth.authorize");
    let request = match AuthRequest::parse(&world, &query) {
        Ok(request) => request,
        Err(Refusal::Page(error)) => return error.into_page(),
        Err(Refusal::Redirect(url)) => return Redirect::to(url.as_str()).into_response(),
    };
    let accounts: Vec<String> = world.accounts.iter().map(|a| a.email.clone()).collect();
    let default_account = request
        .login_hint
        .clone()
        .or_else(|| accounts.first().cloned())
        .unwrap_or_default();
    let page = html::consent_page(&html::ConsentPage {
        client_id: &request.client_id,
        redirect_uri: &request.redirect_uri,
        scopes: &request.scopes,
        accounts: &accounts,
        default_account: &default_account,
        request_query: &request.query,
        form_action: "auth",
    });
    Html(page).into_response()
}

pub(crate) async fn authorize_submit(State(sandbox): State<Sandbox>, body: Bytes) -> Response {
    let form = Params::parse(&body);
    let query = form.get("request").unwrap_or_default().to_owned();
    let mut world = sandbox.lock();
    let request = match AuthRequest::parse(&world, &query) {
        Ok(request) => request,
        Err(Refusal::Page(error)) => return error.into_page(),
        Err(Refusal::Redirect(url)) => return Redirect::to(url.as_str()).into_response(),
    };
    let consent = Consent {
        allow: form.get("decision") == Some("allow"),
        account: form.get("email").map(|e| e.trim().to_owned()),
        scopes: Some(
            form.all("granted_scope")
                .into_iter()
                .map(str::to_owned)
                .collect(),
        ),
    };
    let url = complete_consent(&mut world, &request, consent);
    // 302 like Google's consent screen.
    (
        StatusCode::FOUND,
        [(header::LOCATION, url.as_str().to_owned())],
    )
        .into_response()
}

fn token_success(body: Value) -> Response {
    let mut response = Json(body).into_response();
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache, no-store, max-age=0, must-revalidate"),
    );
    response
}

fn invalid_request(description: &str) -> Response {
    google_error::oauth(StatusCode::BAD_REQUEST, "invalid_request", description)
}

fn invalid_grant(description: &str) -> Response {
    google_error::oauth(StatusCode::BAD_REQUEST, "invalid_grant", description)
}

pub(crate) async fn token(
    State(sandbox): State<Sandbox>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let fault = {
        let mut world = sandbox.lock();
        world.count_call("oauth.token");
        world.take_fault("oauth.token")
    };
    if let Some(response) = apply_fault(fault).await {
        return response;
    }
    if !http_util::content_type_is(&headers, "application/x-www-form-urlencoded") {
        return invalid_request("Request body must be application/x-www-form-urlencoded.");
    }
    let form = Params::parse(&body);
    let (client_id, client_secret) = match http_util::basic_credentials(&headers) {
        Some(pair) => pair,
        None => match form.get("client_id") {
            Some(id) => (
                id.to_owned(),
                form.get("client_secret").unwrap_or_default().to_owned(),
            ),
            None => return invalid_request("Could not determine client ID from request."),
        },
    };
    let mut world = sandbox.lock();
    let authenticated = world
        .clients
        .get(&client_id)
        .is_some_and(|c| c.client_secret == client_secret);
    if !authenticated {
        return google_error::oauth(StatusCode::UNAUTHORIZED, "invalid_client", "Unauthorized");
    }
    match form.get("grant_type") {
        Some("authorization_code") => {
            world.count_call("oauth.token.authorization_code");
            exchange_code(&mut world, &client_id, &client_secret, &form)
        }
        Some("refresh_token") => {
            world.count_call("oauth.token.refresh_token");
            refresh(&mut world, &client_id, &client_secret, &form)
        }
        None => invalid_request("Missing required parameter: grant_type"),
        Some(other) => google_error::oauth(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            &format!("Invalid grant_type: {other}"),
        ),
    }
}

fn pkce_matches(challenge: &str, method: PkceMethod, verifier: &str) -> bool {
    match method {
        PkceMethod::Plain => challenge == verifier,
        PkceMethod::S256 => {
            URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes())) == challenge
        }
    }
}

fn exchange_code(
    world: &mut World,
    client_id: &str,
    client_secret: &str,
    form: &Params,
) -> Response {
    let Some(code_value) = form.get("code") else {
        return invalid_request("Missing required parameter: code");
    };
    let now = world.now();
    let Some(code) = world.codes.get_mut(code_value) else {
        return invalid_grant("Malformed auth code.");
    };
    if code.client_id != client_id || code.used || code.expires_at <= now {
        return invalid_grant("Bad Request");
    }
    let Some(redirect_uri) = form.get("redirect_uri") else {
        return invalid_request("Missing required parameter: redirect_uri");
    };
    if redirect_uri != code.redirect_uri {
        return google_error::oauth(
            StatusCode::BAD_REQUEST,
            "redirect_uri_mismatch",
            "Bad Request",
        );
    }
    if let Some((challenge, method)) = &code.code_challenge {
        match form.get("code_verifier") {
            None => return invalid_grant("Missing code verifier."),
            Some(verifier) if !pkce_matches(challenge, *method, verifier) => {
                return invalid_grant("Invalid code verifier.");
            }
            Some(_) => {}
        }
    }
    code.used = true;
    let code = code.clone();
    let Some(account) = world.account(&code.email).cloned() else {
        return invalid_grant("Bad Request");
    };
    let access_token = issue_access_token(world, client_id, &account.email, &code.scopes);
    let mut body = json!({
        "access_token": access_token,
        "expires_in": ACCESS_TOKEN_SECONDS,
        "scope": scopes::join(&code.scopes),
        "token_type": "Bearer",
    });
    let grant = world
        .grants
        .entry(grant_key(client_id, &account.email))
        .or_default();
    if code.offline && (!grant.refresh_issued || code.prompt_consent) {
        grant.refresh_issued = true;
        let refresh_token = format!("1//0Sbx{}", random_token(90));
        world.refresh_tokens.insert(
            refresh_token.clone(),
            RefreshToken {
                client_id: client_id.to_owned(),
                email: account.email.clone(),
                scopes: code.scopes.clone(),
                revoked: false,
            },
        );
        body["refresh_token"] = json!(refresh_token);
    }
    if code.scopes.contains(scopes::OPENID) {
        body["id_token"] = json!(id_token(
            world,
            client_id,
            client_secret,
            &account.email,
            &code.scopes,
            code.nonce.as_deref()
        ));
    }
    token_success(body)
}

fn refresh(world: &mut World, client_id: &str, client_secret: &str, form: &Params) -> Response {
    let Some(refresh_value) = form.get("refresh_token") else {
        return invalid_request("Missing required parameter: refresh_token");
    };
    let Some(stored) = world.refresh_tokens.get(refresh_value).cloned() else {
        return invalid_grant("Token has been expired or revoked.");
    };
    if stored.revoked || stored.client_id != client_id {
        return invalid_grant("Token has been expired or revoked.");
    }
    let access_token = issue_access_token(world, client_id, &stored.email, &stored.scopes);
    let mut body = json!({
        "access_token": access_token,
        "expires_in": ACCESS_TOKEN_SECONDS,
        "scope": scopes::join(&stored.scopes),
        "token_type": "Bearer",
    });
    if stored.scopes.contains(scopes::OPENID) {
        body["id_token"] = json!(id_token(
            world,
            client_id,
            client_secret,
            &stored.email,
            &stored.scopes,
            None
        ));
    }
    token_success(body)
}

pub(crate) fn issue_access_token(
    world: &mut World,
    client_id: &str,
    email: &str,
    scopes: &BTreeSet<String>,
) -> String {
    let token = format!("ya29.sandbox-{}", random_token(120));
    let expires_at = world.now() + Duration::seconds(ACCESS_TOKEN_SECONDS);
    world.access_tokens.insert(
        token.clone(),
        AccessToken {
            client_id: client_id.to_owned(),
            email: email.to_owned(),
            scopes: scopes.clone(),
            expires_at,
            revoked: false,
        },
    );
    token
}

/// HMAC-SHA256 (RFC 2104) over SHA-256, small enough to not need a crate.
pub(crate) fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    let mut block = [0u8; 64];
    if key.len() > 64 {
        block[..32].copy_from_slice(Sha256::digest(key).as_slice());
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let inner_pad: Vec<u8> = block.iter().map(|b| b ^ 0x36).collect();
    let outer_pad: Vec<u8> = block.iter().map(|b| b ^ 0x5c).collect();
    let inner = Sha256::new()
        .chain_update(&inner_pad)
        .chain_update(message)
        .finalize();
    let outer = Sha256::new()
        .chain_update(&outer_pad)
        .chain_update(inner.as_slice())
        .finalize();
    let mut out = [0u8; 32];
    out.copy_from_slice(outer.as_slice());
    out
}

/// An OpenID Connect ID token. Google signs RS256 with keys published at
/// its JWKS URL; the sandbox has no JWKS endpoint and instead signs HS256
/// with the client's secret (allowed by OIDC Core §10.1), so a test can
/// verify it with what it already knows.
fn id_token(
    world: &World,
    client_id: &str,
    client_secret: &str,
    email: &str,
    granted: &BTreeSet<String>,
    nonce: Option<&str>,
) -> String {
    let now = world.now().timestamp();
    let mut claims = json!({
        "iss": ISSUER,
        "azp": client_id,
        "aud": client_id,
        "iat": now,
        "exp": now + 3600,
    });
    if let Some(account) = world.account(email) {
        claims["sub"] = json!(account.sub);
        if granted.contains(scopes::USERINFO_EMAIL) {
            claims["email"] = json!(account.email);
            claims["email_verified"] = json!(true);
        }
        if granted.contains(scopes::USERINFO_PROFILE) {
            claims["name"] = json!(account.name);
            claims["given_name"] = json!(account.given_name());
            claims["picture"] = json!(picture_url(&account.sub));
        }
    }
    if let Some(nonce) = nonce {
        claims["nonce"] = json!(nonce);
    }
    let header = json!({ "alg": "HS256", "kid": "sandbox", "typ": "JWT" });
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let signature = hmac_sha256(client_secret.as_bytes(), signing_input.as_bytes());
    format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(signature))
}

pub(crate) fn picture_url(sub: &str) -> String {
    format!("https://lh3.googleusercontent.com/a/sandbox-{sub}=s96-c")
}

pub(crate) async fn revoke(
    State(sandbox): State<Sandbox>,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    let fault = {
        let mut world = sandbox.lock();
        world.count_call("oauth.revoke");
        world.take_fault("oauth.revoke")
    };
    if let Some(response) = apply_fault(fault).await {
        return response;
    }
    let form = Params::parse(&body);
    let query = Params::from_query(query.as_deref());
    let Some(token) = form
        .get("token")
        .or_else(|| query.get("token"))
        .map(str::to_owned)
    else {
        return google_error::oauth(StatusCode::BAD_REQUEST, "invalid_request", "Bad Request");
    };
    let mut world = sandbox.lock();
    let now = world.now();
    let owner = if let Some(access) = world.access_tokens.get(&token) {
        (!access.revoked && access.expires_at > now)
            .then(|| (access.client_id.clone(), access.email.clone()))
    } else {
        world
            .refresh_tokens
            .get(&token)
            .filter(|r| !r.revoked)
            .map(|r| (r.client_id.clone(), r.email.clone()))
    };
    match owner {
        Some((client_id, email)) => {
            world.revoke_grant(&client_id, &email);
            Json(json!({})).into_response()
        }
        None => google_error::oauth(
            StatusCode::BAD_REQUEST,
            "invalid_token",
            "Token expired or revoked",
        ),
    }
}

pub(crate) async fn userinfo(State(sandbox): State<Sandbox>, headers: HeaderMap) -> Response {
    let invalid = || {
        let mut response = google_error::oauth(
            StatusCode::UNAUTHORIZED,
            "invalid_request",
            "Invalid Credentials",
        );
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static(
                "Bearer realm=\"https://accounts.google.com/\", error=\"invalid_token\"",
            ),
        );
        response
    };
    let fault = {
        let mut world = sandbox.lock();
        world.count_call("oauth.userinfo");
        world.take_fault("oauth.userinfo")
    };
    if let Some(response) = apply_fault(fault).await {
        return response;
    }
    let Some(token) = http_util::bearer(&headers) else {
        return invalid();
    };
    let world = sandbox.lock();
    let now = world.now();
    let Some(access) = world
        .access_tokens
        .get(&token)
        .filter(|t| !t.revoked && t.expires_at > now)
    else {
        return invalid();
    };
    let Some(account) = world.account(&access.email) else {
        return invalid();
    };
    let mut body = json!({ "sub": account.sub });
    if access.scopes.contains(scopes::USERINFO_EMAIL) {
        body["email"] = json!(account.email);
        body["email_verified"] = json!(true);
    }
    if access.scopes.contains(scopes::USERINFO_PROFILE) {
        body["name"] = json!(account.name);
        body["given_name"] = json!(account.given_name());
        body["picture"] = json!(picture_url(&account.sub));
    }
    Json(body).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn hmac_matches_rfc4231_test_case_2() {
        let mac = hmac_sha256(b"Jefe", b"what do ya want for nothing?");
        assert_eq!(
            hex(&mac),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn pkce_s256_matches_rfc7636_appendix_b() {
        assert!(pkce_matches(
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
            PkceMethod::S256,
            "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk",
        ));
        assert!(!pkce_matches(
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
            PkceMethod::S256,
            "wrong"
        ));
    }
}
