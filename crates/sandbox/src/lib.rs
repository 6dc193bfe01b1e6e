//! Google (OAuth 2.0 + Gmail v1), Microsoft (the identity platform and
//! Graph's `/me`, mail, delta and subscriptions, see the `microsoft`
//! module) and an OpenAI-compatible chat endpoint, emulated in memory as
//! axum `Router`s, for tests and `mailwright demo`.
//!
//! # Use
//!
//! ```no_run
//! use mailwright_sandbox::{AccountSpec, OAuthClient, Sandbox, SandboxConfig};
//! # async fn demo() -> std::io::Result<()> {
//! let sandbox = Sandbox::new(
//!     SandboxConfig::default()
//!         .with_client(OAuthClient::new("id", "secret", ["http://localhost:8080/callback"]))
//!         .with_account(AccountSpec::new("ann@example.com", "Ann Example")),
//! );
//! // Mount under any prefix, e.g. demo mode's `/sandbox/google` ...
//! let app = axum::Router::<()>::new().nest("/sandbox/google", sandbox.router());
//! # let _ = app;
//! // ... or serve it alone.
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! mailwright_sandbox::serve(listener, sandbox).await
//! # }
//! ```
//!
//! Paths are Google's, relative to the mount point: `/o/oauth2/v2/auth`
//! (accounts.google.com), `/token` and `/revoke` (oauth2.googleapis.com),
//! `/v1/userinfo` (openidconnect.googleapis.com), `/gmail/v1/users/{userId}/…`
//! (gmail.googleapis.com). Test controls live under `/_sandbox/…` and as
//! methods on [`Sandbox`]. [`LlmSandbox`] serves `/v1/chat/completions`.
//!
//! # What is emulated
//!
//! * **Consent** (`GET/POST /o/oauth2/v2/auth`): an HTML page labelled
//!   "Sandbox" listing requested scopes as ticked checkboxes, an account
//!   field (default: `login_hint` or the first account; an unknown email
//!   creates the account), Allow/Deny. Success redirects with `state`,
//!   `code`, `scope`, `authuser=0`, `prompt=consent`; Deny with
//!   `error=access_denied`. Unknown client → 401 page `invalid_client`;
//!   unregistered redirect URI → 400 page `redirect_uri_mismatch` (no
//!   redirect). `include_granted_scopes=true` adds earlier grants; PKCE
//!   `S256` and `plain`; `access_type=offline`; `prompt=consent`; `nonce`.
//!   [`Sandbox::approve`] does the same without HTTP.
//! * **`/token`**: form bodies only (anything else → 400 `invalid_request`);
//!   client auth in the body or HTTP Basic; `authorization_code` (single
//!   use, 10-minute life, exact `redirect_uri`, PKCE verifier) and
//!   `refresh_token`. `refresh_token` is returned only for
//!   `access_type=offline` on the first consent of that user+client, or with
//!   `prompt=consent`. Short `email`/`profile` scopes come back as the
//!   userinfo URLs. `expires_in` is 3599.
//! * **`id_token`** when `openid` was granted. Google signs RS256 with
//!   rotating keys from its JWKS; the sandbox signs ID tokens
//!   **HS256 with the client secret** (`kid: "sandbox"`), which OIDC Core
//!   §10.1 permits, so a test can verify it with what it already holds.
//!   (Its one JWKS, `/oauth2/v3/certs`, holds the RS256 key of Pub/Sub
//!   push tokens.)
//! * **`/revoke`** (token in form body or query) revokes the whole grant:
//!   every access and refresh token of that user+client.
//! * **`/v1/userinfo`**: `sub` always, `email`/`email_verified` with the
//!   email scope, `name`/`given_name`/`picture` with the profile scope.
//! * **Gmail**: `profile`, `messages` (list with `q`, `labelIds`,
//!   `maxResults`, `pageToken`, `includeSpamTrash`; get with
//!   `format=full|metadata|raw|minimal` and `metadataHeaders`),
//!   `messages/send`, `drafts` (create, list, get, delete, send),
//!   `messages/{id}/modify` (`addLabelIds`/`removeLabelIds`: system labels
//!   but `SENT`/`DRAFT`, and the mailbox's user labels; `labelsAdded`/
//!   `labelsRemoved` history), `threads/{id}`, `history`, `labels` (list:
//!   system then user labels; create: `Label_N` ids, 409 for a taken or
//!   system name), `watch`,
//!   `stop`, `settings/sendAs` (list: the primary address), and the batch
//!   endpoint (`/batch/gmail/v1`, `/batch`: `multipart/mixed` of
//!   `application/http` parts). Google's own Python client
//!   (google-api-python-client) is tested against all of them but
//!   `messages.modify` and `labels.create`.
//!   `drafts.list` takes `q` and `includeSpamTrash` too. Bearer
//!   auth, per-method scope checks, `userId` = `me` or the account's email.
//!   Threading follows Gmail's documented rule: a message joins `threadId`
//!   only if its `References`/`In-Reply-To` name a message of that thread
//!   and the subjects match once `Re:`/`Fwd:` prefixes are stripped;
//!   inbound mail joins a thread by the same rule. Sending delivers to
//!   `SENT` of the sender and `INBOX`+`UNREAD` of every sandbox account
//!   among To/Cc/Bcc (their copies without the `Bcc` header). Gmail fills
//!   in missing `From`, `Date`, `Message-ID`.
//!   `q` supports `rfc822msgid:`, `in:`, `is:unread|read|starred`,
//!   `label:`, `category:`, `after:`/`before:` (yyyy/mm/dd, UTC, or epoch
//!   seconds), `newer_than:`/`older_than:` (h, d, m, y), `from:`, `to:`,
//!   `subject:`, `-` negation of label terms, and bare words.
//! * **Pub/Sub push** ([`Sandbox::set_push_subscription`],
//!   `PUT /_sandbox/pubsub/subscription`): a watched mailbox's changes on its
//!   watched labels are posted to the subscription's endpoint in Pub/Sub's
//!   envelope, with a Google-style ID token signed RS256 by a key published
//!   at `/oauth2/v3/certs` (see the `pubsub` module).
//! * **Clerk** (under `/clerk`): the Backend API's Google tokens of a user
//!   linked with [`Sandbox::link_clerk_user`] (see the `clerk` module).
//! * **Quota** units per user with Google's per-method costs.
//! * **Test controls**: accounts, inbound delivery (optionally with
//!   attachments), user labels, faults (429, 403,
//!   500, 401, delay, any status) for the next N calls of a method, token
//!   expiry, grant revocation, call counters, sent/drafted mail, quota,
//!   history expiry and a movable clock ([`Sandbox::advance_clock`]).
//! * **Microsoft** (under `/microsoft`, see [`MicrosoftSandbox`]): the
//!   identity platform's authorization-code flow, and Graph v1.0 for `/me`:
//!   messages (get, `$value`, list with `$filter`/`$select`/`$top`/`$skip`,
//!   create, update, delete, createReply/createReplyAll, send, sendMail),
//!   per-folder delta with 410 `SyncStateNotFound` for expired tokens,
//!   subscriptions with the validation handshake and `created`
//!   notifications, and injectable throttling (429/503 + `Retry-After`).
//! * **Chaos** ([`Sandbox::set_chaos`], `/_sandbox/chaos`): a seeded share
//!   of Gmail calls fail with 429 (`Retry-After: 1`), 500, 503 or a dropped
//!   connection, and writes may lose their answer after taking effect.
//!
//! # What is not emulated
//!
//! Media uploads (`/upload/gmail/...`), `messages.insert/import/
//! trash/delete/batch*`, `threads.list/modify`, `drafts.update`,
//! labels get/update/patch/delete, label colors and counts, Gmail's other
//! reserved label names (e.g. `Muted`, answered 400), settings other than
//! `sendAs.list`, attachments by
//! `attachmentId` (bodies are always inlined as `data`), Pub/Sub beyond one
//! push subscription (topics, pull, acknowledgements, redelivery after the
//! sandbox's few retries), Gmail's search beyond the operators above (quoted
//! phrases, `OR`, `{}` groups, `has:attachment`, ...), `refresh_token`
//! downscoping with `scope`, the device/installed-app flows, discovery
//! documents, key rotation of the push key, Google's real consent-screen look, and the rate
//! limits themselves (quota is only counted; limits are hit by injecting
//! faults).
//!
//! # Sources of the Google facts
//!
//! * Per-method scopes: the Gmail discovery document
//!   (`gmail.googleapis.com/$discovery/rest?version=v1`): revision 20260907
//!   as vendored in a public repository, and the copy in
//!   googleapis/google-api-go-client `gmail/v1/gmail-api.json` (see
//!   [`scopes::GmailMethod::scopes`] for which method came from which).
//! * Message/MessagePart/Thread/ListMessagesResponse field shapes, the
//!   threading criteria (`threadId` + RFC 2822 References/In-Reply-To +
//!   matching Subject) and "history IDs are not contiguous": the same
//!   discovery document's schema descriptions.
//! * Quota units: developers.google.com/gmail/api/reference/quota
//!   (threads.get, watch, stop values from memory: 10, 100, 50;
//!   messages.modify and labels.create 5 each).
//! * Labels: `SENT` and `DRAFT` cannot be applied or removed, and no user
//!   label may take a system label's name (Gmail's "Manage labels"
//!   guide); 400 "Invalid label: SENT" for one (GitHub
//!   googleapis/google-api-php-client#1254); 400 "No label add or removes
//!   specified" (googleapis/google-api-nodejs-client#312); 409 "Label name
//!   exists or conflicts" (gauteh/lieer#29, GAM-team/got-your-back#105).
//!   Its `reason` `duplicate`, the `Label_N` numbering from 1, the
//!   default visibilities and what a label both added and removed does
//!   (removed) are from memory or guessed.
//! * `invalid_client` 401 body `{"error":"invalid_client",
//!   "error_description":"Unauthorized"}`: GitHub SocialiteProviders/Providers#564.
//! * 401 "Request had invalid authentication credentials. …" and
//!   `UNAUTHENTICATED`: GitHub rohitaryal/imageFX-api#2 and
//!   googleapis/google-api-php-client#2479 (missing-credential variant).
//! * 403 "Request had insufficient authentication scopes." /
//!   "Insufficient Permission" / `insufficientPermissions` /
//!   `PERMISSION_DENIED`: GitHub kwent/react-google-contacts#6,
//!   googleworkspace/apps-script-oauth2#177, m3talstorm/ymi.js#1.
//! * 429 `rateLimitExceeded` "Rate Limit Exceeded" in domain
//!   `usageLimits`: a Q&A quoting a Gmail API response. The 403
//!   `userRateLimitExceeded` and 500 `backendError` bodies are from memory
//!   of Gmail's "Resolve errors" guide; the `status` values
//!   (`RESOURCE_EXHAUSTED`, `PERMISSION_DENIED`, `INTERNAL`) follow
//!   google.rpc conventions.
//! * `/v1/userinfo` 401 `{"error":"invalid_request","error_description":
//!   "Invalid Credentials"}`: GitHub coderello/laravel-passport-social-grant#22.
//! * `after:<epoch seconds>` in `q`: a Q&A answer on Gmail quota
//!   (example-a.com/answer/37507571); history's 404 on an out-of-date
//!   `startHistoryId`: the discovery document's parameter description.
//! * Gmail emits padded base64url (a published body ending `ICA=`), and
//!   accepts unpadded input.
//! * From the brief/memory, not confirmed against a public copy: the token
//!   endpoint's "Malformed auth code.", "Missing code verifier.", "Invalid
//!   code verifier.", "Token has been expired or revoked.", revoke's
//!   `invalid_token`/"Token expired or revoked", Gmail's "'raw' RFC822
//!   payload message string or uploading message via /upload/* URL
//!   required", "Recipient address required", "Delegation denied for …",
//!   the metadata-scope restrictions' wording, and the exact error for a
//!   missing `startHistoryId`.

mod chaos;
mod clerk;
mod config;
mod control;
mod gmail;
mod google_error;
mod html;
mod http_util;
mod llm;
mod microsoft;
mod oauth;
mod pubsub;
pub mod scopes;
mod state;

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use axum::Router;
use axum::routing::{get, post};

pub use chaos::{Chaos, ChaosError, ChaosReport};
pub use clerk::{CLERK_CLIENT_ID, CLERK_SECRET_KEY};
pub use config::{AccountSpec, OAuthClient, SandboxConfig};
pub use control::{
    AccountInfo, Attachment, Consent, ControlError, Delivered, DraftView, Fault, InboundMessage,
    LabelView, MessageView,
};
pub use llm::{LlmReply, LlmSandbox};
pub use microsoft::{
    EmailAddress, GraphFault, MAX_SUBSCRIPTION_MINUTES, MS_ACCESS_TOKEN_SECONDS, MicrosoftAccount,
    MicrosoftDelivered, MicrosoftInbound, MicrosoftMessageView, MicrosoftSandbox,
    MicrosoftSubscription, NotificationDelivery, SANDBOX_TENANT_ID, WELL_KNOWN_FOLDERS,
};
pub use oauth::{ACCESS_TOKEN_SECONDS, AuthorizationError, CODE_LIFETIME_MINUTES, ISSUER};
pub use pubsub::{PUSH_ISSUER, PushDelivery, PushSubscription};

/// The Google emulator. Cheap to clone; clones share one world.
#[derive(Clone)]
pub struct Sandbox {
    world: Arc<Mutex<state::State>>,
    /// Signs Pub/Sub push tokens (made on first use).
    signer: pubsub::SignerCell,
    /// Wakes the Pub/Sub publisher when mail arrives.
    push_wake: Arc<tokio::sync::Notify>,
    /// Microsoft's identity platform and Graph (a world of their own).
    microsoft: MicrosoftSandbox,
}

impl Sandbox {
    pub fn new(config: SandboxConfig) -> Self {
        Self::from_parts(
            Arc::new(Mutex::new(state::State::new(config))),
            pubsub::SignerCell::default(),
            Arc::new(tokio::sync::Notify::new()),
        )
    }

    fn from_parts(
        world: Arc<Mutex<state::State>>,
        signer: pubsub::SignerCell,
        push_wake: Arc<tokio::sync::Notify>,
    ) -> Self {
        Self {
            world,
            signer,
            push_wake,
            microsoft: MicrosoftSandbox::default(),
        }
    }

    /// The Microsoft emulator's controls.
    pub fn microsoft(&self) -> MicrosoftSandbox {
        self.microsoft.clone()
    }

    /// Something may be worth publishing to a watch's topic.
    pub(crate) fn wake_publisher(&self) {
        self.push_wake.notify_one();
    }

    /// A panic elsewhere must not wedge every later request.
    pub(crate) fn lock(&self) -> MutexGuard<'_, state::State> {
        self.world.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Google's endpoints and `/_sandbox/…` controls, relative to wherever
    /// the router is mounted.
    pub fn router(&self) -> Router {
        Router::new()
            .route(
                "/o/oauth2/v2/auth",
                get(oauth::authorize_page).post(oauth::authorize_submit),
            )
            .route("/token", post(oauth::token))
            .route("/revoke", post(oauth::revoke))
            .route("/v1/userinfo", get(oauth::userinfo))
            .route(Sandbox::CERTS_PATH, get(pubsub::certs))
            .route("/batch/gmail/v1", post(gmail::batch::batch))
            .route("/batch", post(gmail::batch::batch))
            .route(
                "/clerk/v1/users/{user_id}/oauth_access_tokens/{provider}",
                get(clerk::oauth_access_tokens),
            )
            .route("/clerk/v1/users", get(clerk::users))
            .merge(gmail::routes())
            .merge(microsoft::routes())
            .layer(axum::middleware::from_fn_with_state(
                self.clone(),
                microsoft::lose_answers,
            ))
            .merge(control::routes())
            .merge(chaos::routes())
            .with_state(self.clone())
    }
}

/// Serves the sandbox alone on `listener` until the task is dropped.
pub async fn serve(listener: tokio::net::TcpListener, sandbox: Sandbox) -> std::io::Result<()> {
    axum::serve(listener, sandbox.router()).await
}
