//! Google tokens held by Clerk (issue "Gmail in production", the path of
//! the first seed report): a person signed in through Clerk connects the
//! Gmail account Clerk holds a token for; Mailwright asks Clerk's Backend
//! API for the token (never Google's token endpoint), checks its scopes as
//! Google's, marks the connection `needs_reauth` (with one notice) when
//! Clerk no longer holds one, and its reconnect asks Clerk again or sends
//! the person to re-authorise in Clerk. The sandbox emulates Clerk.

mod common;

use std::sync::Arc;

use common::autodraft::{deliver, from_bob, minutes_ago, poll};
use common::google::{ANN, World, world_with};
use common::idp::TestIdp;
use domain::scopes::{IntegrationType, ScopeSet};
use engine::health::{CHECK_EVERY, ConnectionHealth};
use sandbox::{CLERK_CLIENT_ID, CLERK_SECRET_KEY};
use serde_json::{Value, json};

const CLERK_USER: &str = "user_2abcAnnClerk";
const REAUTHORIZE: &str = "https://app.example.test/account/google";

/// Every scope a Gmail connection needs, and sign-in's.
fn gmail_scopes() -> Vec<String> {
    let mut scopes = ScopeSet::parse("").missing_for(IntegrationType::Gmail);
    scopes.extend(["openid", "email", "profile"].map(str::to_owned));
    scopes
}

struct ClerkWorld {
    w: World,
    /// A Clerk session JWT of Ann (`sub` = her Clerk user).
    jwt: String,
    _idp: TestIdp,
}

async fn clerk_world() -> ClerkWorld {
    let idp = TestIdp::start().await;
    let mut env = idp.settings();
    env.extend([
        ("MAILWRIGHT_CLERK_SECRET_KEY", CLERK_SECRET_KEY.to_owned()),
        ("MAILWRIGHT_CLERK_API_URL", "{sandbox}/clerk".to_owned()),
        ("MAILWRIGHT_CLERK_REAUTHORIZE_URL", REAUTHORIZE.to_owned()),
    ]);
    let w = world_with(&env).await;
    let jwt = idp.rs256(&TestIdp::claims(
        CLERK_USER,
        json!({"org_id": "org_clerk", "email": ANN}),
    ));
    ClerkWorld { w, jwt, _idp: idp }
}

impl ClerkWorld {
    async fn connect(&self) -> (u16, Value) {
        let answer = self
            .w
            .app
            .client
            .post(self.w.app.url("/api/integrations/clerk"))
            .bearer_auth(&self.jwt)
            .json(&json!({"type": "gmail"}))
            .send()
            .await
            .unwrap();
        (answer.status().as_u16(), answer.json().await.unwrap())
    }

    async fn get(&self, path: &str) -> reqwest::Response {
        self.w.app.get_as(path, &self.jwt).await
    }

    async fn integration(&self, id: &str) -> Value {
        let answer = self.get(&format!("/api/integrations/{id}")).await;
        answer.json().await.unwrap()
    }
}

#[tokio::test]
async fn a_person_signed_in_through_clerk_connects_the_gmail_clerk_holds_and_auto_draft_uses_it() {
    let c = clerk_world().await;
    c.w.sandbox
        .link_clerk_user(CLERK_USER, ANN, &gmail_scopes());
    let (status, integration) = c.connect().await;
    assert_eq!(status, 201, "{integration}");
    assert_eq!(integration["token_source"], "clerk");
    assert_eq!(integration["status"], "connected");
    assert_eq!(integration["email"], ANN);
    let id = integration["id"].as_str().unwrap().to_owned();

    let switched =
        c.w.app
            .client
            .put(c.w.app.url(&format!("/api/integrations/{id}/auto-draft")))
            .bearer_auth(&c.jwt)
            .json(&json!({"enabled": true}))
            .send()
            .await
            .unwrap();
    assert_eq!(switched.status(), 200);
    let mut message = from_bob("Lunch?", "Are you free for lunch on Friday?");
    message.internal_date = Some(minutes_ago(5));
    deliver(&c.w, message);
    poll(&c.w).await;
    let listed: Value = c
        .get(&format!("/api/integrations/{id}/drafts"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listed["drafts"].as_array().unwrap().len(), 1, "{listed}");
    assert!(c.w.sandbox.call_count("clerk.oauth_access_tokens") >= 1);
    assert_eq!(
        c.w.refreshes(),
        0,
        "Mailwright never refreshes a Clerk-held grant with Google"
    );
}

#[tokio::test]
async fn too_few_scopes_at_clerk_read_missing_scopes_and_reconnect_asks_clerk_again() {
    let c = clerk_world().await;
    c.w.sandbox.link_clerk_user(
        CLERK_USER,
        ANN,
        &[
            "openid",
            "email",
            "profile",
            "https://www.googleapis.com/auth/gmail.readonly",
        ],
    );
    let (status, integration) = c.connect().await;
    assert_eq!(status, 201, "{integration}");
    assert_eq!(integration["status"], "missing_scopes");
    assert!(!integration["missing_scopes"].as_array().unwrap().is_empty());
    let reconnect = integration["reconnect_url"].as_str().unwrap().to_owned();

    // Still too few at Clerk: off to re-authorise there.
    let answer = c.get(&reconnect).await;
    assert_eq!(answer.status(), 302);
    assert_eq!(answer.headers()["location"], REAUTHORIZE);

    // The person re-authorised in Clerk with every scope: reconnect repairs it.
    c.w.sandbox
        .link_clerk_user(CLERK_USER, ANN, &gmail_scopes());
    let answer = c.get(&reconnect).await;
    assert_eq!(answer.status(), 302);
    let location = answer.headers()["location"].to_str().unwrap().to_owned();
    assert!(
        location.starts_with("/integrations?connected=gmail"),
        "{location}"
    );
    let id = integration["id"].as_str().unwrap();
    let view = c.integration(id).await;
    assert_eq!(view["status"], "connected", "{view}");
}

#[tokio::test]
async fn a_grant_gone_at_clerk_is_needs_reauth_with_one_notice_and_disconnect_leaves_it_to_clerk() {
    let c = clerk_world().await;
    c.w.sandbox
        .link_clerk_user(CLERK_USER, ANN, &gmail_scopes());
    let (status, integration) = c.connect().await;
    assert_eq!(status, 201);
    let id = integration["id"].as_str().unwrap().to_owned();

    // Ann removes Clerk's access in her Google account; a day later the
    // health check asks Clerk, which holds nothing any more.
    assert!(c.w.sandbox.revoke_grant(ANN, CLERK_CLIENT_ID));
    store::testing::age_connection_checks(
        &c.w.app.store,
        CHECK_EVERY + chrono::Duration::minutes(1),
    )
    .await;
    let check = ConnectionHealth::new(c.w.app.store.clone(), Arc::clone(&c.w.app.vault));
    assert_eq!(check.tick(store::now()).await.unwrap(), 1);
    let view = c.integration(&id).await;
    assert_eq!(view["status"], "needs_reauth", "{view}");
    assert_eq!(c.w.app.worker.drain().await.unwrap(), 1, "one notice");
    let emails: Value = c.get("/api/system-emails").await.json().await.unwrap();
    let emails = emails["emails"].as_array().unwrap();
    assert_eq!(emails.len(), 1);
    assert_eq!(emails[0]["kind"], "integration_needs_reauth");

    // Disconnecting forgets the token but revokes nothing: the grant is
    // Clerk's (Ann signs in with it).
    let revokes = c.w.sandbox.call_count("oauth.revoke");
    let gone =
        c.w.app
            .client
            .delete(c.w.app.url(&format!("/api/integrations/{id}")))
            .bearer_auth(&c.jwt)
            .send()
            .await
            .unwrap();
    assert!(gone.status().is_success(), "{}", gone.status());
    assert_eq!(c.w.sandbox.call_count("oauth.revoke"), revokes);
}

#[tokio::test]
async fn only_a_person_signed_in_through_clerk_may_connect_that_way() {
    let c = clerk_world().await;
    let answer =
        c.w.app
            .client
            .post(c.w.app.url("/api/integrations/clerk"))
            .bearer_auth(&c.w.tenant.key)
            .json(&json!({"type": "gmail"}))
            .send()
            .await
            .unwrap();
    assert_eq!(answer.status(), 403);
    // Signed in through Clerk, but Clerk holds no Google token for Ann.
    let (status, problem) = c.connect().await;
    assert_eq!(status, 409, "{problem}");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("sign in with Google through Clerk"),
        "{problem}"
    );
}
