//! `mailwright demo`: the whole product with no credentials. The Google
//! sandbox is mounted in-process at `/sandbox/google` (OAuth consent screen
//! and Gmail API), a demo account is signed in through a one-time link, and
//! `/sandbox/inbox` drops mail into the connected mailbox. Not for
//! production: the sandbox's controls are unauthenticated.

use std::sync::Mutex;

use domain::{UserId, WorkspaceId};
use sandbox::{PushSubscription, Sandbox};

use crate::auth::secrets;

/// Where the sandbox is mounted.
pub const SANDBOX_PATH: &str = "/sandbox/google";
/// The demo's OAuth client (registered with the sandbox only).
pub const CLIENT_ID: &str = "mailwright-demo.apps.sandbox";
pub const CLIENT_SECRET: &str = "mailwright-demo-secret";
/// The Gmail account that exists in the sandbox from the start.
pub const MAILBOX: &str = "you@demo.mailwright.test";
pub const MAILBOX_NAME: &str = "Demo User";
/// The person signed in to Mailwright.
pub const USER_EMAIL: &str = "demo@demo.mailwright.test";
/// The demo's Pub/Sub topic and the service account its push subscription
/// authenticates as: the demo runs on signed push, as production would.
pub const PUBSUB_TOPIC: &str = "projects/mailwright-demo/topics/gmail";
pub const PUSH_SERVICE_ACCOUNT: &str = "gmail-push@mailwright-demo.iam.gserviceaccount.com";

/// The settings that point a Mailwright served at `public` to the sandbox
/// mounted in it: Google's OAuth and Gmail endpoints, and Pub/Sub push
/// signed by the sandbox.
pub fn sandbox_settings(public: &str) -> Vec<(&'static str, String)> {
    let google = format!("{public}{SANDBOX_PATH}");
    vec![
        ("MAILWRIGHT_GOOGLE_CLIENT_ID", CLIENT_ID.to_owned()),
        ("MAILWRIGHT_GOOGLE_CLIENT_SECRET", CLIENT_SECRET.to_owned()),
        (
            "MAILWRIGHT_GOOGLE_AUTH_URL",
            format!("{google}/o/oauth2/v2/auth"),
        ),
        ("MAILWRIGHT_GOOGLE_TOKEN_URL", format!("{google}/token")),
        ("MAILWRIGHT_GOOGLE_REVOKE_URL", format!("{google}/revoke")),
        (
            "MAILWRIGHT_GOOGLE_USERINFO_URL",
            format!("{google}/v1/userinfo"),
        ),
        ("MAILWRIGHT_GMAIL_API_URL", google.clone()),
        ("MAILWRIGHT_GMAIL_PUBSUB_TOPIC", PUBSUB_TOPIC.to_owned()),
        ("MAILWRIGHT_PUSH_AUDIENCE", push_endpoint(public)),
        (
            "MAILWRIGHT_PUSH_SERVICE_ACCOUNT",
            PUSH_SERVICE_ACCOUNT.to_owned(),
        ),
        (
            "MAILWRIGHT_GOOGLE_CERTS_URL",
            format!("{google}{}", Sandbox::CERTS_PATH),
        ),
    ]
}

fn push_endpoint(public: &str) -> String {
    format!("{public}/api/push/gmail")
}

/// The sandbox's push subscription for a Mailwright served at `public`
/// (the audience is the endpoint, Pub/Sub's default).
pub fn push_subscription(public: &str) -> PushSubscription {
    PushSubscription {
        endpoint: push_endpoint(public),
        audience: push_endpoint(public),
        service_account: PUSH_SERVICE_ACCOUNT.to_owned(),
    }
}

pub struct Demo {
    pub sandbox: Sandbox,
    pub user: UserId,
    pub workspace: WorkspaceId,
    /// SHA-256 of the one-time sign-in token, until it is used.
    signin_token_hash: Mutex<Option<String>>,
}

impl std::fmt::Debug for Demo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Demo")
            .field("user", &self.user)
            .field("workspace", &self.workspace)
            .finish_non_exhaustive()
    }
}

impl Demo {
    /// The demo and its one-time sign-in token (shown once, at start).
    pub fn new(sandbox: Sandbox, user: UserId, workspace: WorkspaceId) -> (Demo, String) {
        let token = secrets::random_token(24);
        let demo = Demo {
            sandbox,
            user,
            workspace,
            signin_token_hash: Mutex::new(Some(secrets::sha256_hex(&token))),
        };
        (demo, token)
    }

    /// Whether `token` is the sign-in token; it works once.
    pub fn take_signin(&self, token: &str) -> bool {
        let mut slot = self.signin_token_hash.lock().expect("demo token lock");
        let matches = slot.as_deref().is_some_and(|expected| {
            secrets::constant_time_eq(expected.as_bytes(), secrets::sha256_hex(token).as_bytes())
        });
        if matches {
            *slot = None;
        }
        matches
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signin_link_works_once() {
        let (demo, token) = Demo::new(
            Sandbox::new(sandbox::SandboxConfig::default()),
            UserId::new(),
            WorkspaceId::new(),
        );
        assert!(!demo.take_signin("wrong"));
        assert!(demo.take_signin(&token));
        assert!(!demo.take_signin(&token), "used up");
    }
}
