//! `mailwright demo`: the whole product with no credentials. The Google
//! sandbox is mounted in-process at `/sandbox/google` (OAuth consent screen
//! and Gmail API; Microsoft's sign-in and Graph below it at `/microsoft`),
//! a demo account is signed in through a link printed at
//! start (valid while the demo runs), and
//! `/sandbox/inbox` drops mail into the connected mailbox. With Dovecot
//! installed, a local IMAP mailbox too ([`crate::demo_mailbox`]). Not for
//! production: the sandbox's controls are unauthenticated.

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
/// The emulated Microsoft app and the Outlook mailbox of the demo.
pub const MICROSOFT_CLIENT_ID: &str = "00000000-0000-4000-8000-mailwrightdemo";
pub const MICROSOFT_CLIENT_SECRET: &str = "mailwright~demo~secret";
pub const OUTLOOK_MAILBOX: &str = "you@outlook.demo.mailwright.test";
/// The person signed in to Mailwright.
pub const USER_EMAIL: &str = "demo@demo.mailwright.test";
/// The demo's Pub/Sub topic and the service account its push subscription
/// authenticates as: the demo runs on signed push, as production would.
pub const PUBSUB_TOPIC: &str = "projects/mailwright-demo/topics/gmail";
pub const PUSH_SERVICE_ACCOUNT: &str = "gmail-push@mailwright-demo.iam.gserviceaccount.com";

/// The settings that point a Mailwright served at `public` to the sandbox
/// mounted in it: Google's OAuth and Gmail endpoints, and Pub/Sub push
/// signed by the sandbox.
/// The demo's emulated Google and Microsoft: the apps registered with the
/// callbacks of `config`, and the two mailboxes that exist from the start.
pub fn sandbox(config: &crate::config::Config) -> Sandbox {
    use sandbox::{AccountSpec, OAuthClient, SandboxConfig};
    let sandbox = Sandbox::new(
        SandboxConfig::default()
            .with_client(OAuthClient::new(
                CLIENT_ID,
                CLIENT_SECRET,
                [config.oauth_redirect_uri()],
            ))
            .with_account(AccountSpec::new(MAILBOX, MAILBOX_NAME)),
    );
    sandbox.microsoft().register_app(OAuthClient::new(
        MICROSOFT_CLIENT_ID,
        MICROSOFT_CLIENT_SECRET,
        [config.microsoft_redirect_uri()],
    ));
    sandbox
        .microsoft()
        .create_account(OUTLOOK_MAILBOX, MAILBOX_NAME);
    sandbox
}

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
        (
            "MAILWRIGHT_MICROSOFT_CLIENT_ID",
            MICROSOFT_CLIENT_ID.to_owned(),
        ),
        (
            "MAILWRIGHT_MICROSOFT_CLIENT_SECRET",
            MICROSOFT_CLIENT_SECRET.to_owned(),
        ),
        (
            "MAILWRIGHT_MICROSOFT_AUTH_URL",
            format!("{google}/microsoft/common/oauth2/v2.0/authorize"),
        ),
        (
            "MAILWRIGHT_MICROSOFT_TOKEN_URL",
            format!("{google}/microsoft/common/oauth2/v2.0/token"),
        ),
        ("MAILWRIGHT_GRAPH_API_URL", format!("{google}/microsoft")),
    ]
}

/// The demo's folder when none is given: the user's data folder
/// (`$XDG_DATA_HOME`, else `~/.local/share`) under `mailwright/demo`, so a
/// second run finds the first one's account, workflows and history; with
/// neither variable set, `./mailwright-demo`.
pub fn default_data_dir(
    xdg_data_home: Option<std::ffi::OsString>,
    home: Option<std::ffi::OsString>,
) -> std::path::PathBuf {
    let absolute = |value: Option<std::ffi::OsString>| {
        value
            .map(std::path::PathBuf::from)
            .filter(|path| path.is_absolute())
    };
    if let Some(data) = absolute(xdg_data_home) {
        return data.join("mailwright").join("demo");
    }
    if let Some(home) = absolute(home) {
        return home.join(".local/share/mailwright/demo");
    }
    std::path::PathBuf::from("mailwright-demo")
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
    /// SHA-256 of the sign-in token. It works for the demo's lifetime: a
    /// demo account has no password, and a sign-out, another browser or a
    /// reloaded tab must not lock its visitor out.
    signin_token_hash: String,
    /// The local IMAP test mailbox, or why there is none (Dovecot missing).
    pub local_mailbox: Result<crate::demo_mailbox::LocalMailbox, String>,
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
    /// The demo and its sign-in token (printed at start).
    pub fn new(sandbox: Sandbox, user: UserId, workspace: WorkspaceId) -> (Demo, String) {
        let token = secrets::random_token(24);
        let demo = Demo {
            sandbox,
            user,
            workspace,
            signin_token_hash: secrets::sha256_hex(&token),
            local_mailbox: Err("the demo was started without a local IMAP mailbox".into()),
        };
        (demo, token)
    }

    /// With the local IMAP test mailbox (or the reason there is none).
    pub fn with_local_mailbox(
        mut self,
        mailbox: Result<crate::demo_mailbox::LocalMailbox, String>,
    ) -> Demo {
        self.local_mailbox = mailbox;
        self
    }

    /// Whether `token` is the sign-in token.
    pub fn signin_matches(&self, token: &str) -> bool {
        secrets::constant_time_eq(
            self.signin_token_hash.as_bytes(),
            secrets::sha256_hex(token).as_bytes(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_demo_folder_follows_the_xdg_data_home_then_home() {
        use std::path::PathBuf;
        assert_eq!(
            default_data_dir(Some("/data".into()), Some("/home/ada".into())),
            PathBuf::from("/data/mailwright/demo")
        );
        assert_eq!(
            default_data_dir(None, Some("/home/ada".into())),
            PathBuf::from("/home/ada/.local/share/mailwright/demo")
        );
        // The XDG rule: a relative value is ignored.
        assert_eq!(
            default_data_dir(Some("rel".into()), None),
            PathBuf::from("mailwright-demo")
        );
    }

    #[test]
    fn the_signin_link_works_again_and_no_other_token_does() {
        let (demo, token) = Demo::new(
            Sandbox::new(sandbox::SandboxConfig::default()),
            UserId::new(),
            WorkspaceId::new(),
        );
        assert!(!demo.signin_matches("wrong"));
        assert!(demo.signin_matches(&token));
        assert!(demo.signin_matches(&token), "again, after a sign-out");
    }
}
