//! Clerk's Backend API, as far as Mailwright uses it: Google tokens Clerk
//! holds for its users. Under `/clerk` (give `<sandbox>/clerk` as the API
//! URL), with the secret key [`CLERK_SECRET_KEY`]:
//!
//! * `GET /v1/users/{user_id}/oauth_access_tokens/{google|oauth_google}`:
//!   `[{"object": "oauth_access_token", "token", "scopes", "expires_at",
//!   "provider": "oauth_google", ...}]` (with `?paginated=true`:
//!   `{"data": [...], "total_count"}`); `[]` when the user's Google grant to
//!   Clerk is gone (revoked at Google); 404 for an unknown user; 401 for a
//!   wrong key.
//! * `GET /v1/users` (the key check): `[]`.
//!
//! A Clerk user is linked to a sandbox Google account with the scopes it
//! granted Clerk's Google client ([`Sandbox::link_clerk_user`]); the tokens
//! handed out are real sandbox tokens of that client ([`CLERK_CLIENT_ID`]),
//! so Gmail honours exactly those scopes, and
//! `revoke_grant(email, CLERK_CLIENT_ID)` is "the person removed Clerk's
//! access in their Google account".

use std::collections::BTreeSet;

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::Sandbox;
use crate::state::{Grant, grant_key};

/// The secret key the emulated Clerk instance accepts.
pub const CLERK_SECRET_KEY: &str = "sk_test_mailwright_sandbox";
/// The OAuth client Clerk's Google tokens belong to.
pub const CLERK_CLIENT_ID: &str = "clerk-google.apps.sandbox";

impl Sandbox {
    /// Clerk user `user_id` signed in with Google as `email`, granting
    /// Clerk's Google client `scopes` (short `email`/`profile` accepted).
    pub fn link_clerk_user<S: AsRef<str>>(&self, user_id: &str, email: &str, scopes: &[S]) {
        let mut world = self.lock();
        world.ensure_account(email, None);
        let scopes: BTreeSet<String> = scopes
            .iter()
            .map(|scope| crate::scopes::normalize(scope.as_ref()))
            .collect();
        world.grants.insert(
            grant_key(CLERK_CLIENT_ID, email),
            Grant {
                scopes,
                refresh_issued: true,
            },
        );
        world
            .clerk_users
            .insert(user_id.to_owned(), email.to_ascii_lowercase());
    }
}

fn clerk_error(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        Json(json!({"errors": [{"code": code, "message": message, "long_message": message}]})),
    )
        .into_response()
}

fn authorized(headers: &HeaderMap) -> bool {
    crate::http_util::bearer(headers).as_deref() == Some(CLERK_SECRET_KEY)
}

pub(crate) async fn oauth_access_tokens(
    State(sandbox): State<Sandbox>,
    Path((user_id, provider)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let mut world = sandbox.lock();
    world.count_call("clerk.oauth_access_tokens");
    if !authorized(&headers) {
        return clerk_error(
            StatusCode::UNAUTHORIZED,
            "authentication_invalid",
            "Unauthorized request",
        );
    }
    let Some(email) = world.clerk_users.get(&user_id).cloned() else {
        return clerk_error(StatusCode::NOT_FOUND, "resource_not_found", "not found");
    };
    let mut tokens = Vec::new();
    let granted = world
        .grants
        .get(&grant_key(CLERK_CLIENT_ID, &email))
        .map(|grant| grant.scopes.clone());
    if let (true, Some(scopes)) = (
        matches!(provider.as_str(), "google" | "oauth_google"),
        granted,
    ) {
        let token = crate::oauth::issue_access_token(&mut world, CLERK_CLIENT_ID, &email, &scopes);
        let expires_at =
            world.now() + chrono::Duration::seconds(crate::oauth::ACCESS_TOKEN_SECONDS);
        let sub = world.account(&email).map(|account| account.sub.clone());
        tokens.push(json!({
            "object": "oauth_access_token",
            "external_account_id": format!("eac_{user_id}"),
            "provider_user_id": sub,
            "token": token,
            "provider": "oauth_google",
            "public_metadata": {},
            "label": null,
            "scopes": scopes,
            "token_secret": null,
            "expires_at": expires_at.timestamp(),
        }));
    }
    let paginated = query
        .as_deref()
        .is_some_and(|query| query.split('&').any(|pair| pair == "paginated=true"));
    if paginated {
        let total = tokens.len();
        Json(json!({"data": tokens, "total_count": total})).into_response()
    } else {
        Json(json!(tokens)).into_response()
    }
}

pub(crate) async fn users(headers: HeaderMap) -> Response {
    if !authorized(&headers) {
        return clerk_error(
            StatusCode::UNAUTHORIZED,
            "authentication_invalid",
            "Unauthorized request",
        );
    }
    Json(json!([])).into_response()
}
