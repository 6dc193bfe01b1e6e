//! The Microsoft identity platform (v2 authorization-code flow with PKCE)
//! and Microsoft Graph's `/v1.0/me`, mail and subscriptions, emulated for
//! Outlook connections.
//! Mounted under `/microsoft` of the sandbox's router: `{tenant}` is any
//! tenant name (`common`, a domain, a directory id).
//!
//! * **`GET /{tenant}/oauth2/v2.0/authorize`**: an HTML page labelled
//!   "Sandbox" (account field, requested scopes as ticked checkboxes,
//!   Accept/Cancel). An unknown `client_id` is refused on the page
//!   (`AADSTS700016`), an unregistered `redirect_uri` too (`AADSTS50011`),
//!   both without a redirect; `response_type` must be `code`, `scope` must
//!   be present, and a `code_challenge` needs `code_challenge_method`
//!   `S256` or `plain`. Cancel redirects with `error=access_denied`.
//!   [`MicrosoftSandbox::approve`] does the same without HTTP.
//! * **`POST /{tenant}/oauth2/v2.0/token`**: form bodies only; client
//!   credentials in the body or HTTP Basic (a wrong secret is 401
//!   `invalid_client` `AADSTS7000215`, an unknown app 400
//!   `unauthorized_client` `AADSTS700016`). `authorization_code`: single use
//!   (`AADSTS54005` on reuse), 10-minute life (`AADSTS70008`), the exact
//!   `redirect_uri` (`AADSTS50148`), the PKCE verifier (`AADSTS501481`).
//!   `refresh_token`: **rotates strictly**: every refresh answers with a new
//!   refresh token and the one presented stops working at once
//!   (`invalid_grant` `AADSTS70000`), so a client that loses the new one
//!   loses the connection, as the issue's Microsoft does after a while.
//!   Withdrawn consent answers `invalid_grant` `AADSTS65001`. The answer's
//!   `scope` lists the consented Graph permissions by short name plus
//!   `openid`, `profile`, `email`, never `offline_access`; a refresh token
//!   comes only with `offline_access`. No `id_token` is issued.
//! * **`GET /v1.0/me`**: Bearer access token; `User.Read` needed (403
//!   `Authorization_RequestDenied` otherwise); 401
//!   `InvalidAuthenticationToken` for an unknown or expired token.
//! * **Graph mail** (`/v1.0/me/...`, module `graph`, model in `mail`).
//!   Every call: Bearer token (401 `InvalidAuthenticationToken`: "Access
//!   token is empty.", unknown, or "Lifetime validation failed, the token is
//!   expired."), then injected faults, then permissions compared
//!   case-insensitively (a `https://graph.microsoft.com/` prefix is
//!   ignored): reading needs `Mail.Read` or `Mail.ReadWrite`, writing
//!   (create, PATCH, DELETE, createReply) `Mail.ReadWrite`, sending
//!   `Mail.Send`; else 403 `ErrorAccessDenied`. Errors carry Graph's
//!   `{"error":{"code","message","innerError":{..}}}`. Each mailbox has the
//!   well-known folders `inbox`, `drafts`, `sentitems`, `deleteditems`
//!   (path segments take the id or the name, any case).
//!   - `GET messages/{id}`, `GET mailFolders/{f}/messages/{id}` (404
//!     `ErrorItemNotFound`), `$select` (plus `id`, `@odata.etag`;
//!     `internetMessageHeaders` only when selected), `$expand=
//!     singleValueExtendedProperties($filter=id eq '..')`.
//!   - `GET messages/{id}/$value`: the MIME text, **`Content-Type:
//!     message/rfc822`** (a choice). Inbound raw mail is served as
//!     delivered; other mail is synthesised (From, To, Cc, Bcc on the
//!     sender's copies, Subject, Date, Message-ID, In-Reply-To,
//!     References, custom `X-` headers, a text/plain or text/html body,
//!     `7bit` when ASCII else base64; extended properties are not headers).
//!   - `GET messages`, `GET mailFolders/{f}/messages`: newest first
//!     (`$orderby=receivedDateTime asc` reverses, other orders are
//!     ignored), `$top` (10, at most 1000), `$skip`, absolute
//!     `@odata.nextLink`; `$filter` with ` and ` of `conversationId eq`,
//!     `internetMessageId eq`, `subject eq`, `receivedDateTime ge|gt|le|lt`,
//!     `isDraft eq`, `isRead eq`, and `singleValueExtendedProperties/Any(ep:
//!     ep/id eq '..' and ep/value eq '..')` (type and GUID of the id
//!     compare in any case, its name exactly; the value in any case);
//!     anything else is 400 `ErrorInvalidUrlQueryFilter` naming the clause.
//!   - `GET mailFolders/{f}/messages/delta`: pages of `Prefer:
//!     odata.maxpagesize=N` (10; at most 1000; `Preference-Applied` echoed)
//!     with `@odata.nextLink` (`$skiptoken`), the last with
//!     `@odata.deltaLink` (`$deltatoken`), both absolute
//!     `http://{Host}{path}`. `$select` and `$filter=receivedDateTime ge|gt`
//!     on the first request only (kept for later rounds). A later round
//!     lists messages created, moved in or changed since, and removed or
//!     moved-out ones as `{"id", "@removed": {"reason": "deleted"}}`. An
//!     expired, unknown **or malformed** token (delta or skip) is **410
//!     `SyncStateNotFound`** (a choice: never 400).
//!   - `POST messages` (a draft in `drafts`, new `conversationId`;
//!     `internetMessageHeaders` must be `X-` headers, else 400
//!     `InvalidInternetMessageHeader`), `PATCH messages/{id}` (drafts: any
//!     of subject, body, recipients, headers, extended properties, isRead;
//!     other mail only isRead and extended properties, else **400
//!     `ErrorInvalidPropertyUpdateSentMessage`**), `DELETE messages/{id}`
//!     (204; moves to `deleteditems` under a new id, deletes for good from
//!     there; the old folder's delta shows `@removed`).
//!   - `POST messages/{id}/createReply` and `createReplyAll` (201 draft:
//!     same `conversationId`, `RE: ` once, To = the original's `replyTo`
//!     else `from` (reply-all adds To/Cc but the user), In-Reply-To and
//!     References; body = `message.body` if given, else `comment`, then the
//!     original quoted under an Outlook-style header block; other
//!     `message` properties applied).
//!   - `POST messages/{id}/send` (202; a non-draft is **400
//!     `ErrorInvalidOperation`**, no recipients 400
//!     `ErrorInvalidRecipients`) and `POST sendMail` (`saveToSentItems`
//!     default true): the draft leaves `drafts`, a copy (new id, same
//!     internetMessageId and extended properties) lands in `sentitems`, and
//!     every sandbox account among To/Cc/Bcc gets an unread inbox copy
//!     without Bcc and **without the extended properties** (a choice).
//!   - Threading: inbound mail and replies join the conversation of the
//!     message their In-Reply-To/References name in that mailbox, else a
//!     new one.
//! * **Subscriptions** (`/v1.0/subscriptions`, module `subscriptions`):
//!   `POST` needs a messages resource of the user (`me/mailFolders('Inbox')
//!   /messages`, `/me/mailfolders/inbox/messages`, `me/messages`,
//!   `users/{id or email}/...`, any case; else 400 `ExtensionError`),
//!   `changeType` of created/updated/deleted, an http(s) `notificationUrl`
//!   (Graph requires https; the sandbox takes http too), and
//!   `expirationDateTime` in the future and at most 10080 minutes ahead
//!   (else 400 `ExtensionError`; missing fields 400 `InvalidRequest`); at
//!   most 100 per user (403 `ExtensionError`). Before creating, the
//!   **validation handshake**: `POST {notificationUrl}?validationToken=..`
//!   (`text/plain`, empty body, 10 s) must answer 200, `text/plain` and
//!   the token; else 400 `ValidationError`. `GET`/`PATCH`
//!   (`expirationDateTime`)/`DELETE /subscriptions/{id}` and `GET
//!   /subscriptions`. A message stored in a watched folder (delivery,
//!   sending, drafts, moves) of the user posts a `created` notification
//!   (`Users/{userId}/Messages/{id}`, `clientState`, `tenantId`) from a
//!   spawned task, three tries, recorded ([`MicrosoftSandbox::notifications`]);
//!   expired subscriptions send nothing. Only `created` is ever notified.
//! * **Faults**: [`GraphFault`] makes the next N Graph calls (optionally
//!   only on a path substring or user) answer a status, 429
//!   `ApplicationThrottled` or 503 `ServiceNotAvailable` with
//!   `Retry-After`. Every Graph call is counted (`graph.messages.get`,
//!   `graph.messages.value`, `graph.messages.list`, `graph.messages.create`,
//!   `graph.messages.update`, `graph.messages.delete`, `graph.delta`,
//!   `graph.createReply`, `graph.createReplyAll`, `graph.send`,
//!   `graph.sendMail`, `graph.subscriptions.create|get|list|update|delete`,
//!   `graph.fault`).
//! * **Lost answers** ([`GraphFault::lost_answer`], `after_commit`): the
//!   call does its work, then answers 504, as when a connection breaks
//!   after Graph acted. **Held answers** ([`GraphFault::held_answer`], or
//!   `.held_for(..)` on a lost answer; `hold_millis`): the call does its
//!   work and answers only after the hold (counted `graph.held`), so a
//!   client killed meanwhile never learns Graph acted.
//! * **Controls**: accounts, registered apps, consent withdrawal, access
//!   token expiry, the next N token calls failing with a status, and call
//!   counters; for mail: [`MicrosoftSandbox::issue_access_token`],
//!   [`deliver`](MicrosoftSandbox::deliver) /
//!   [`deliver_raw`](MicrosoftSandbox::deliver_raw),
//!   [`messages`](MicrosoftSandbox::messages),
//!   [`expire_delta_tokens`](MicrosoftSandbox::expire_delta_tokens),
//!   [`fail_graph_calls`](MicrosoftSandbox::fail_graph_calls),
//!   [`notifications`](MicrosoftSandbox::notifications),
//!   [`subscriptions`](MicrosoftSandbox::subscriptions),
//!   [`expire_subscription`](MicrosoftSandbox::expire_subscription). Over
//!   HTTP under `/_sandbox/microsoft/...`: `accounts`, `withdraw-consent`,
//!   `expire-access-tokens`, `token-faults`, `calls`, `deliver` (POST
//!   [`MicrosoftInbound`] JSON → `{id, conversationId,
//!   internetMessageId}`), `messages?email=&folder=`,
//!   `expire-delta-tokens` (`{email, older_than_seconds?}`), `graph-faults`
//!   ([`GraphFault`] JSON), `notifications`, `subscriptions?email=`,
//!   `access-tokens` (`{email, scopes}`).
//!
//! Sources: Microsoft's "OAuth 2.0 authorization code flow" and "Scopes and
//! permissions" pages (parameters, answer fields, `offline_access` never in
//! `scope`, confirmed by a Microsoft Q&A answer), and its AADSTS error code
//! list for the codes above (from memory where noted in the code). For
//! Graph: the `message` resource page (properties, `internetMessageHeaders`
//! only on `$select`), "Get incremental changes to messages in a folder"
//! (delta: `Prefer: odata.maxpagesize`, `$skiptoken`/`$deltatoken` links,
//! `@removed`, `receivedDateTime` filter), the 410 Gone `SyncStateNotFound`
//! answer quoted in microsoftgraph/microsoft-graph-docs issue #2350,
//! `message: createReply`, `message: send` (202) and `user: sendMail`,
//! "Change notifications" / "Create subscription" (10080-minute limit for
//! Outlook resources, the validation handshake and its 10 s, notification
//! payload), "Microsoft Graph throttling guidance" (429 with
//! `Retry-After`), and "Get singleValueLegacyExtendedProperty" (the
//! `$expand`/`$filter` syntax). Error codes and messages not quoted in
//! those pages (`ErrorInvalidPropertyUpdateSentMessage`,
//! `ErrorInvalidOperation`, `ApplicationThrottled`'s message, the
//! subscription `ExtensionError` wordings) are from memory or chosen.
//!
//! Not emulated: ID tokens, the device-code and client-credential flows,
//! admin consent, conditional access, national clouds; in Graph: other
//! folders (custom folders, `mailFolders` listing, `move`/`copy`; a test
//! files a message elsewhere with [`MicrosoftSandbox::file_message`]),
//! attachments, `forward`, `$search`, `$count`, `$orderby` beyond
//! `receivedDateTime`, immutable ids, `updated`/`deleted` notifications,
//! lifecycle notifications, rich notifications, JSON batching, `/users/{id}`
//! paths, and real throttling limits (faults are injected).

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::fmt::Write;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Duration, Utc};
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use url::Url;

mod control;
mod graph;
mod mail;
mod subscriptions;

pub use control::{GraphFault, MicrosoftDelivered, MicrosoftInbound, MicrosoftMessageView};
pub use mail::{EmailAddress, WELL_KNOWN_FOLDERS};
pub use subscriptions::{
    MAX_SUBSCRIPTION_MINUTES, MicrosoftSubscription, NotificationDelivery, SANDBOX_TENANT_ID,
};

use crate::config::OAuthClient;
use crate::html::escape;
use crate::http_util::{self, Params};
use crate::state::random_token;
use crate::{Consent, Sandbox};

/// `expires_in` of an access token, as Microsoft reports it.
pub const MS_ACCESS_TOKEN_SECONDS: i64 = 3599;
const CODE_LIFETIME_MINUTES: i64 = 10;
/// Never listed in a token answer's `scope`.
const OFFLINE_ACCESS: &str = "offline_access";
const USER_READ: &str = "User.Read";

/// A Microsoft account of the sandbox.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MicrosoftAccount {
    pub email: String,
    pub display_name: String,
    /// The user's object id (a GUID), stable across renames.
    pub id: String,
}

struct Code {
    client_id: String,
    email: String,
    redirect_uri: String,
    scopes: BTreeSet<String>,
    challenge: Option<(String, bool)>,
    expires_at: DateTime<Utc>,
    used: bool,
}

struct Access {
    email: String,
    scopes: BTreeSet<String>,
    expires_at: DateTime<Utc>,
    /// The app the token was issued to (a subscription's `applicationId`).
    client_id: String,
}

struct Refresh {
    client_id: String,
    email: String,
    scopes: BTreeSet<String>,
    /// Redeemed: a newer refresh token replaced it.
    redeemed: bool,
}

/// The Microsoft side of the sandbox's world.
#[derive(Default)]
pub(crate) struct World {
    apps: BTreeMap<String, OAuthClient>,
    accounts: Vec<MicrosoftAccount>,
    /// (email, client id) → the scopes consented to (accumulated).
    consents: HashMap<(String, String), BTreeSet<String>>,
    codes: HashMap<String, Code>,
    access: HashMap<String, Access>,
    refresh: HashMap<String, Refresh>,
    calls: BTreeMap<String, u64>,
    /// Statuses the next token calls answer with, in order.
    token_faults: VecDeque<u16>,
    /// Graph mailboxes by lower-case email.
    mailboxes: HashMap<String, mail::Mailbox>,
    /// The change sequence (delta compares against it).
    seq: u64,
    delta_tokens: HashMap<String, graph::DeltaState>,
    delta_pages: HashMap<String, graph::DeltaPage>,
    subscriptions: BTreeMap<String, MicrosoftSubscription>,
    /// Notifications queued under the lock, posted after it.
    outbox: Vec<subscriptions::Pending>,
    notifications: Vec<NotificationDelivery>,
    graph_faults: Vec<GraphFault>,
}

impl World {
    fn count(&mut self, name: &str) {
        *self.calls.entry(name.to_owned()).or_default() += 1;
    }

    fn ensure_account(&mut self, email: &str, name: Option<&str>) -> MicrosoftAccount {
        let email = email.trim().to_ascii_lowercase();
        if let Some(account) = self.accounts.iter().find(|a| a.email == email) {
            return account.clone();
        }
        let local = email.split('@').next().unwrap_or(&email);
        let account = MicrosoftAccount {
            display_name: name.map(str::to_owned).unwrap_or_else(|| local.to_owned()),
            id: object_id(),
            email,
        };
        self.accounts.push(account.clone());
        account
    }

    fn account(&self, email: &str) -> Option<&MicrosoftAccount> {
        self.accounts
            .iter()
            .find(|a| a.email.eq_ignore_ascii_case(email.trim()))
    }
}

/// A GUID-shaped object id.
fn object_id() -> String {
    let hex: String = (0..32)
        .map(|_| char::from(b"0123456789abcdef"[fastrand::usize(..16)]))
        .collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

/// The Microsoft emulator's controls. Cheap to clone; shares the
/// sandbox's world.
#[derive(Clone)]
pub struct MicrosoftSandbox {
    world: Arc<Mutex<World>>,
}

impl Default for MicrosoftSandbox {
    fn default() -> Self {
        MicrosoftSandbox {
            world: Arc::new(Mutex::new(World::default())),
        }
    }
}

impl MicrosoftSandbox {
    fn lock(&self) -> MutexGuard<'_, World> {
        self.world.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Register an app (what the Entra admin center would hold).
    pub fn register_app(&self, app: OAuthClient) {
        self.lock().apps.insert(app.client_id.clone(), app);
    }

    /// Create an account (idempotent on the address).
    pub fn create_account(&self, email: &str, display_name: &str) -> MicrosoftAccount {
        self.lock().ensure_account(email, Some(display_name))
    }

    pub fn accounts(&self) -> Vec<MicrosoftAccount> {
        self.lock().accounts.clone()
    }

    /// The person withdraws the app's consent (in their account's "apps and
    /// services"): every token of that user and app stops working.
    pub fn withdraw_consent(&self, email: &str, client_id: &str) -> bool {
        let mut world = self.lock();
        let email = email.trim().to_ascii_lowercase();
        let had = world
            .consents
            .remove(&(email.clone(), client_id.to_owned()))
            .is_some();
        world.access.retain(|_, token| token.email != email);
        world
            .refresh
            .retain(|_, token| !(token.email == email && token.client_id == client_id));
        had
    }

    /// Every access token of `email` expires now (refresh tokens stay).
    pub fn expire_access_tokens(&self, email: &str) {
        let mut world = self.lock();
        let now = Utc::now();
        for token in world.access.values_mut() {
            if token.email.eq_ignore_ascii_case(email) {
                token.expires_at = now - Duration::seconds(1);
            }
        }
    }

    /// The next `times` token calls answer HTTP `status` (503, 429, ...).
    pub fn fail_token_calls(&self, status: u16, times: usize) {
        self.lock()
            .token_faults
            .extend(std::iter::repeat_n(status, times));
    }

    /// How often `name` was called: `token.authorization_code`,
    /// `token.refresh_token`, `token.refused`, `authorize`, `graph.me`.
    pub fn call_count(&self, name: &str) -> u64 {
        self.lock().calls.get(name).copied().unwrap_or(0)
    }

    /// Every counter, for a test's failure message.
    pub fn call_counts(&self) -> BTreeMap<String, u64> {
        self.lock().calls.clone()
    }

    /// How many refresh tokens of `email` still work (rotation leaves one
    /// per connection).
    pub fn live_refresh_tokens(&self, email: &str) -> usize {
        self.lock()
            .refresh
            .values()
            .filter(|token| token.email.eq_ignore_ascii_case(email) && !token.redeemed)
            .count()
    }

    /// Drives the consent screen without HTTP: validates the authorization
    /// URL, applies `consent` and returns the URL Microsoft would redirect
    /// the browser to (with `code` or `error`), or the page's refusal.
    pub fn approve(&self, authorization_url: &str, consent: Consent) -> Result<String, String> {
        let mut world = self.lock();
        world.count("authorize");
        let query = authorization_url
            .split_once('?')
            .map_or("", |(_, query)| query);
        let request = AuthorizeRequest::parse(&world, query).map_err(|(_, text)| text)?;
        Ok(complete(&mut world, &request, &consent).into())
    }
}

/// A validated authorization request.
struct AuthorizeRequest {
    client_id: String,
    redirect_uri: String,
    redirect: Url,
    scopes: Vec<String>,
    state: Option<String>,
    challenge: Option<(String, bool)>,
    login_hint: Option<String>,
    query: String,
}

impl AuthorizeRequest {
    /// The request, or the refusal shown on Microsoft's page (status, text).
    fn parse(world: &World, query: &str) -> Result<AuthorizeRequest, (StatusCode, String)> {
        let params = Params::parse(query.as_bytes());
        let refuse = |text: &str| Err((StatusCode::BAD_REQUEST, text.to_owned()));
        let Some(client_id) = params.get("client_id") else {
            return refuse(
                "AADSTS900144: The request body must contain the following parameter: 'client_id'.",
            );
        };
        let Some(app) = world.apps.get(client_id) else {
            return refuse(&format!(
                "AADSTS700016: Application with identifier '{client_id}' was not found in the directory."
            ));
        };
        let Some(redirect_uri) = params.get("redirect_uri") else {
            return refuse(
                "AADSTS900144: The request body must contain the following parameter: 'redirect_uri'.",
            );
        };
        if !app.redirect_uris.iter().any(|uri| uri == redirect_uri) {
            return refuse(&format!(
                "AADSTS50011: The redirect URI '{redirect_uri}' specified in the request does not match the redirect URIs configured for the application."
            ));
        }
        let Ok(redirect) = Url::parse(redirect_uri) else {
            return refuse("AADSTS50011: The redirect URI is not a URL.");
        };
        if params.get("response_type") != Some("code") {
            return refuse(
                "AADSTS900144: response_type must be 'code' (the sandbox emulates the authorization-code flow only).",
            );
        }
        let Some(scope) = params.get("scope") else {
            return refuse(
                "AADSTS900144: The request body must contain the following parameter: 'scope'.",
            );
        };
        let challenge = match (
            params.get("code_challenge"),
            params.get("code_challenge_method"),
        ) {
            (None, _) => None,
            (Some(challenge), Some("S256")) => Some((challenge.to_owned(), true)),
            (Some(challenge), None | Some("plain")) => Some((challenge.to_owned(), false)),
            (Some(_), Some(_)) => {
                return refuse("AADSTS501491: Invalid code_challenge_method.");
            }
        };
        Ok(AuthorizeRequest {
            client_id: client_id.to_owned(),
            redirect_uri: redirect_uri.to_owned(),
            redirect,
            scopes: scope.split_whitespace().map(str::to_owned).collect(),
            state: params.get("state").map(str::to_owned),
            challenge,
            login_hint: params.get("login_hint").map(str::to_owned),
            query: query.to_owned(),
        })
    }
}

/// The browser's next stop after the consent screen.
fn complete(world: &mut World, request: &AuthorizeRequest, consent: &Consent) -> Url {
    let mut url = request.redirect.clone();
    if !consent.allow {
        let mut pairs = url.query_pairs_mut();
        pairs.append_pair("error", "access_denied");
        pairs.append_pair(
            "error_description",
            "AADSTS65004: User declined to consent to access the app.",
        );
        if let Some(state) = &request.state {
            pairs.append_pair("state", state);
        }
        drop(pairs);
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
    let ticked: BTreeSet<String> = match &consent.scopes {
        None => request.scopes.iter().cloned().collect(),
        Some(ticked) => request
            .scopes
            .iter()
            .filter(|scope| ticked.iter().any(|t| t.eq_ignore_ascii_case(scope)))
            .cloned()
            .collect(),
    };
    // Consent accumulates: the token covers what was consented before too.
    let consented = world
        .consents
        .entry((account.email.clone(), request.client_id.clone()))
        .or_default();
    consented.extend(ticked);
    let scopes = consented.clone();
    let code = format!("M.C5{}", random_token(60));
    world.codes.insert(
        code.clone(),
        Code {
            client_id: request.client_id.clone(),
            email: account.email,
            redirect_uri: request.redirect_uri.clone(),
            scopes,
            challenge: request.challenge.clone(),
            expires_at: Utc::now() + Duration::minutes(CODE_LIFETIME_MINUTES),
            used: false,
        },
    );
    let mut pairs = url.query_pairs_mut();
    pairs.append_pair("code", &code);
    if let Some(state) = &request.state {
        pairs.append_pair("state", state);
    }
    drop(pairs);
    url
}

pub(crate) fn routes() -> Router<Sandbox> {
    Router::new()
        .route(
            "/microsoft/{tenant}/oauth2/v2.0/authorize",
            get(authorize_page).post(authorize_submit),
        )
        .route("/microsoft/{tenant}/oauth2/v2.0/token", post(token))
        .route("/microsoft/v1.0/me", get(me))
        .route("/_sandbox/microsoft/accounts", post(control_account))
        .route(
            "/_sandbox/microsoft/withdraw-consent",
            post(control_withdraw_consent),
        )
        .route(
            "/_sandbox/microsoft/expire-access-tokens",
            post(control_expire),
        )
        .route(
            "/_sandbox/microsoft/token-faults",
            post(control_token_faults),
        )
        .route("/_sandbox/microsoft/calls", get(control_calls))
        .merge(mail_routes())
}

/// A Graph call that did its work but whose answer a lost-answer fault
/// ([`GraphFault::lost_answer`]) swallows: 504 instead; a held answer
/// ([`GraphFault::held_answer`], [`GraphFault::held_for`]) comes late.
pub(crate) async fn lose_answers(
    State(sandbox): State<Sandbox>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let path = request.uri().path().to_owned();
    let response = next.run(request).await;
    if !path.starts_with("/microsoft/v1.0/") || !response.status().is_success() {
        return response;
    }
    let microsoft = sandbox.microsoft();
    let fault = microsoft.lock().take_fault_when("", &path, true);
    let Some(fault) = fault else {
        return response;
    };
    if let Some(hold) = fault.hold_millis {
        microsoft.lock().count("graph.held");
        tokio::time::sleep(std::time::Duration::from_millis(hold)).await;
    }
    if fault.answers_itself() {
        return response;
    }
    microsoft.lock().count("graph.fault");
    graph::fault_response(&fault)
}

/// Graph's mail and subscription endpoints and their controls.
fn mail_routes() -> Router<Sandbox> {
    const ME: &str = "/microsoft/v1.0/me";
    Router::new()
        .route(
            &format!("{ME}/messages"),
            get(graph::list_messages).post(graph::create_message),
        )
        .route(
            &format!("{ME}/messages/{{id}}"),
            get(graph::get_message)
                .patch(graph::update_message)
                .delete(graph::delete_message),
        )
        .route(
            &format!("{ME}/messages/{{id}}/$value"),
            get(graph::get_mime),
        )
        .route(
            &format!("{ME}/messages/{{id}}/createReply"),
            post(graph::create_reply),
        )
        .route(
            &format!("{ME}/messages/{{id}}/createReplyAll"),
            post(graph::create_reply_all),
        )
        .route(
            &format!("{ME}/messages/{{id}}/send"),
            post(graph::send_draft),
        )
        .route(&format!("{ME}/sendMail"), post(graph::send_mail))
        .route(
            &format!("{ME}/mailFolders/{{folder}}"),
            get(graph::get_folder),
        )
        .route(
            &format!("{ME}/mailFolders/{{folder}}/messages"),
            get(graph::list_folder_messages),
        )
        .route(
            &format!("{ME}/mailFolders/{{folder}}/messages/delta"),
            get(graph::delta),
        )
        .route(
            &format!("{ME}/mailFolders/{{folder}}/messages/{{id}}"),
            get(graph::get_folder_message),
        )
        .route(
            "/microsoft/v1.0/subscriptions",
            get(subscriptions::list).post(subscriptions::create),
        )
        .route(
            "/microsoft/v1.0/subscriptions/{id}",
            get(subscriptions::get_one)
                .patch(subscriptions::renew)
                .delete(subscriptions::delete),
        )
        .route("/_sandbox/microsoft/deliver", post(control::deliver))
        .route("/_sandbox/microsoft/messages", get(control::messages))
        .route(
            "/_sandbox/microsoft/expire-delta-tokens",
            post(control::expire_delta),
        )
        .route(
            "/_sandbox/microsoft/graph-faults",
            post(control::graph_faults),
        )
        .route(
            "/_sandbox/microsoft/notifications",
            get(control::notifications),
        )
        .route(
            "/_sandbox/microsoft/subscriptions",
            get(control::subscriptions),
        )
        .route(
            "/_sandbox/microsoft/access-tokens",
            post(control::access_token),
        )
}

fn page(status: StatusCode, title: &str, body: &str) -> Response {
    (
        status,
        Html(format!(
            "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><link rel=\"icon\" href=\"data:,\">\
<title>Sandbox: {title}</title><style>body{{font-family:sans-serif;max-width:36em;margin:2em auto;padding:0 1em}}\
.badge{{background:#0067b8;color:#fff;padding:.2em .6em;border-radius:.3em;font-size:.8em}}p,li,code,label{{overflow-wrap:anywhere}}\
button{{margin:0 1em .5em 0;padding:.4em 1.2em;font:inherit}}</style></head><body>\n\
<p><span class=\"badge\">Sandbox</span> This is Mailwright's Microsoft emulator, not Microsoft.</p>\n{body}</body></html>\n",
            title = escape(title)
        )),
    )
        .into_response()
}

async fn authorize_page(
    State(sandbox): State<Sandbox>,
    Path(_tenant): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let query = query.unwrap_or_default();
    let microsoft = sandbox.microsoft();
    let mut world = microsoft.lock();
    world.count("authorize");
    let request = match AuthorizeRequest::parse(&world, &query) {
        Ok(request) => request,
        Err((status, text)) => {
            return page(
                status,
                "Sign in error",
                &format!(
                    "<h1>Sorry, but we're having trouble signing you in.</h1><p>{}</p>",
                    escape(&text)
                ),
            );
        }
    };
    let default_account = request
        .login_hint
        .clone()
        .or_else(|| world.accounts.first().map(|a| a.email.clone()))
        .unwrap_or_default();
    let mut scopes = String::new();
    for scope in &request.scopes {
        let scope = escape(scope);
        let _ = writeln!(
            scopes,
            "<li><label><input type=\"checkbox\" name=\"granted_scope\" value=\"{scope}\" checked> {scope}</label></li>"
        );
    }
    page(
        StatusCode::OK,
        "Permissions requested (Microsoft, emulated)",
        &format!(
            "<h1>Permissions requested</h1>\n<p><strong>{client}</strong> wants to access your Microsoft account and will be sent back to <code>{redirect}</code>.</p>\n\
<form method=\"post\">\n<input type=\"hidden\" name=\"request\" value=\"{request}\">\n\
<label>Account <input type=\"email\" name=\"email\" value=\"{account}\" required></label>\n\
<fieldset><legend>This app would like to</legend><ul>\n{scopes}</ul></fieldset>\n\
<button type=\"submit\" name=\"decision\" value=\"accept\" id=\"ms-accept\">Accept</button>\
<button type=\"submit\" name=\"decision\" value=\"cancel\">Cancel</button>\n</form>",
            client = escape(&request.client_id),
            redirect = escape(&request.redirect_uri),
            request = escape(&request.query),
            account = escape(&default_account),
        ),
    )
}

async fn authorize_submit(
    State(sandbox): State<Sandbox>,
    Path(_tenant): Path<String>,
    body: Bytes,
) -> Response {
    let form = Params::parse(&body);
    let query = form.get("request").unwrap_or_default().to_owned();
    let microsoft = sandbox.microsoft();
    let mut world = microsoft.lock();
    let request = match AuthorizeRequest::parse(&world, &query) {
        Ok(request) => request,
        Err((status, text)) => return page(status, "Sign in error", &escape(&text)),
    };
    let consent = Consent {
        allow: form.get("decision") == Some("accept"),
        account: form.get("email").map(|email| email.trim().to_owned()),
        scopes: Some(
            form.all("granted_scope")
                .into_iter()
                .map(str::to_owned)
                .collect(),
        ),
    };
    let url = complete(&mut world, &request, &consent);
    (StatusCode::FOUND, [(header::LOCATION, url.to_string())]).into_response()
}

/// An error answer of the token endpoint, shaped like Microsoft's.
fn token_error(status: StatusCode, error: &str, code: u64, description: &str) -> Response {
    (
        status,
        Json(json!({
            "error": error,
            "error_description": format!("AADSTS{code}: {description} Trace ID: {} Correlation ID: {} Timestamp: {}",
                object_id(), object_id(), Utc::now().format("%Y-%m-%d %H:%M:%SZ")),
            "error_codes": [code],
            "timestamp": Utc::now().format("%Y-%m-%d %H:%M:%SZ").to_string(),
            "trace_id": object_id(),
            "correlation_id": object_id(),
        })),
    )
        .into_response()
}

fn issue_tokens(
    world: &mut World,
    client_id: &str,
    email: &str,
    scopes: &BTreeSet<String>,
) -> Value {
    let access_token = format!("EwB{}", random_token(80));
    world.access.insert(
        access_token.clone(),
        Access {
            email: email.to_owned(),
            scopes: scopes.clone(),
            expires_at: Utc::now() + Duration::seconds(MS_ACCESS_TOKEN_SECONDS),
            client_id: client_id.to_owned(),
        },
    );
    let listed: Vec<&str> = scopes
        .iter()
        .map(String::as_str)
        .filter(|scope| !scope.eq_ignore_ascii_case(OFFLINE_ACCESS))
        .collect();
    let mut answer = json!({
        "token_type": "Bearer",
        "scope": listed.join(" "),
        "expires_in": MS_ACCESS_TOKEN_SECONDS,
        "ext_expires_in": MS_ACCESS_TOKEN_SECONDS,
        "access_token": access_token,
    });
    if scopes
        .iter()
        .any(|scope| scope.eq_ignore_ascii_case(OFFLINE_ACCESS))
    {
        let refresh_token = format!("M.R3{}", random_token(90));
        world.refresh.insert(
            refresh_token.clone(),
            Refresh {
                client_id: client_id.to_owned(),
                email: email.to_owned(),
                scopes: scopes.clone(),
                redeemed: false,
            },
        );
        answer["refresh_token"] = json!(refresh_token);
    }
    answer
}

async fn token(
    State(sandbox): State<Sandbox>,
    Path(_tenant): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let microsoft = sandbox.microsoft();
    let mut world = microsoft.lock();
    world.count("token");
    if let Some(status) = world.token_faults.pop_front() {
        world.count("token.fault");
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
        return token_error(
            status,
            "temporarily_unavailable",
            50196,
            "The server is temporarily unavailable (sandbox fault).",
        );
    }
    if !http_util::content_type_is(&headers, "application/x-www-form-urlencoded") {
        return token_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            900144,
            "The request body must be application/x-www-form-urlencoded.",
        );
    }
    let form = Params::parse(&body);
    let (client_id, secret) = match http_util::basic_credentials(&headers) {
        Some(credentials) => credentials,
        None => (
            form.get("client_id").unwrap_or_default().to_owned(),
            form.get("client_secret").unwrap_or_default().to_owned(),
        ),
    };
    let Some(app) = world.apps.get(&client_id).cloned() else {
        world.count("token.refused");
        return token_error(
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            700016,
            &format!("Application with identifier '{client_id}' was not found in the directory."),
        );
    };
    if app.client_secret != secret {
        world.count("token.refused");
        return token_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            7000215,
            "Invalid client secret provided.",
        );
    }
    match form.get("grant_type") {
        Some("authorization_code") => {
            world.count("token.authorization_code");
            redeem_code(&mut world, &client_id, &form)
        }
        Some("refresh_token") => {
            world.count("token.refresh_token");
            redeem_refresh(&mut world, &client_id, &form)
        }
        _ => token_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            70003,
            "The app requested an unsupported grant type.",
        ),
    }
}

fn redeem_code(world: &mut World, client_id: &str, form: &Params) -> Response {
    let invalid =
        |code: u64, text: &str| token_error(StatusCode::BAD_REQUEST, "invalid_grant", code, text);
    let Some(code_value) = form.get("code") else {
        return token_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            900144,
            "The request body must contain the following parameter: 'code'.",
        );
    };
    let Some(code) = world.codes.get_mut(code_value) else {
        return invalid(
            70000,
            "The provided value for the 'code' parameter is not valid.",
        );
    };
    if code.used {
        return invalid(
            54005,
            "OAuth2 Authorization code was already redeemed, please retry with a new valid code or use an existing refresh token.",
        );
    }
    if code.client_id != client_id {
        return invalid(70000, "The code was issued to another application.");
    }
    if code.expires_at < Utc::now() {
        return invalid(
            70008,
            "The provided authorization code or refresh token has expired due to inactivity.",
        );
    }
    if form.get("redirect_uri") != Some(code.redirect_uri.as_str()) {
        return invalid(
            50148,
            "The redirect_uri parameter does not match the redirect URI used to request the code.",
        );
    }
    if let Some((challenge, s256)) = &code.challenge {
        let verifier = form.get("code_verifier").unwrap_or_default();
        let expected = if *s256 {
            URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
        } else {
            verifier.to_owned()
        };
        if verifier.is_empty() || &expected != challenge {
            return invalid(
                501481,
                "The Code_Verifier does not match the code_challenge supplied in the authorization request.",
            );
        }
    }
    code.used = true;
    let (email, scopes) = (code.email.clone(), code.scopes.clone());
    Json(issue_tokens(world, client_id, &email, &scopes)).into_response()
}

fn redeem_refresh(world: &mut World, client_id: &str, form: &Params) -> Response {
    let invalid =
        |code: u64, text: &str| token_error(StatusCode::BAD_REQUEST, "invalid_grant", code, text);
    let Some(value) = form.get("refresh_token") else {
        return token_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            900144,
            "The request body must contain the following parameter: 'refresh_token'.",
        );
    };
    let Some(refresh) = world.refresh.get_mut(value) else {
        // Withdrawn consent deletes the tokens: say why, as Microsoft does.
        world.count("token.refused");
        return invalid(
            65001,
            "The user or administrator has not consented to use the application. Send an interactive authorization request for this user and resource.",
        );
    };
    if refresh.client_id != client_id {
        return invalid(
            70000,
            "The refresh token was issued to another application.",
        );
    }
    if refresh.redeemed {
        world.count("token.refused");
        return invalid(
            70000,
            "The provided value for the 'refresh_token' is not valid: it was already redeemed for a newer one (the sandbox rotates refresh tokens strictly).",
        );
    }
    refresh.redeemed = true;
    let (email, scopes) = (refresh.email.clone(), refresh.scopes.clone());
    Json(issue_tokens(world, client_id, &email, &scopes)).into_response()
}

/// Graph's error answer.
fn graph_error(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        Json(json!({"error": {"code": code, "message": message,
            "innerError": {"date": Utc::now().format("%Y-%m-%dT%H:%M:%S").to_string(),
                "request-id": object_id(), "client-request-id": object_id()}}})),
    )
        .into_response()
}

async fn me(State(sandbox): State<Sandbox>, headers: HeaderMap) -> Response {
    let microsoft = sandbox.microsoft();
    let mut world = microsoft.lock();
    world.count("graph.me");
    let Some(token) = http_util::bearer(&headers) else {
        return graph_error(
            StatusCode::UNAUTHORIZED,
            "InvalidAuthenticationToken",
            "Access token is empty.",
        );
    };
    let Some(access) = world.access.get(&token) else {
        return graph_error(
            StatusCode::UNAUTHORIZED,
            "InvalidAuthenticationToken",
            "IDX14100: JWT is not well formed.",
        );
    };
    if access.expires_at < Utc::now() {
        return graph_error(
            StatusCode::UNAUTHORIZED,
            "InvalidAuthenticationToken",
            "Lifetime validation failed, the token is expired.",
        );
    }
    if !access
        .scopes
        .iter()
        .any(|scope| scope.eq_ignore_ascii_case(USER_READ))
    {
        return graph_error(
            StatusCode::FORBIDDEN,
            "Authorization_RequestDenied",
            "Insufficient privileges to complete the operation.",
        );
    }
    let Some(account) = world.account(&access.email).cloned() else {
        return graph_error(
            StatusCode::NOT_FOUND,
            "Request_ResourceNotFound",
            "The user no longer exists.",
        );
    };
    Json(json!({
        "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#users/$entity",
        "id": account.id,
        "displayName": account.display_name,
        "mail": account.email,
        "userPrincipalName": account.email,
    }))
    .into_response()
}

#[derive(Deserialize)]
struct AccountBody {
    email: String,
    #[serde(default)]
    display_name: Option<String>,
}

async fn control_account(
    State(sandbox): State<Sandbox>,
    Json(body): Json<AccountBody>,
) -> Response {
    let account = sandbox
        .microsoft()
        .lock()
        .ensure_account(&body.email, body.display_name.as_deref());
    Json(json!({"email": account.email, "display_name": account.display_name, "id": account.id}))
        .into_response()
}

#[derive(Deserialize)]
struct WithdrawBody {
    email: String,
    client_id: String,
}

async fn control_withdraw_consent(
    State(sandbox): State<Sandbox>,
    Json(body): Json<WithdrawBody>,
) -> Response {
    let withdrawn = sandbox
        .microsoft()
        .withdraw_consent(&body.email, &body.client_id);
    Json(json!({"withdrawn": withdrawn})).into_response()
}

#[derive(Deserialize)]
struct ExpireBody {
    email: String,
}

async fn control_expire(State(sandbox): State<Sandbox>, Json(body): Json<ExpireBody>) -> Response {
    sandbox.microsoft().expire_access_tokens(&body.email);
    StatusCode::NO_CONTENT.into_response()
}

#[derive(Deserialize)]
struct FaultBody {
    status: u16,
    #[serde(default = "one")]
    times: usize,
}

fn one() -> usize {
    1
}

async fn control_token_faults(
    State(sandbox): State<Sandbox>,
    Json(body): Json<FaultBody>,
) -> Response {
    if !(400..=599).contains(&body.status) || body.times > 1000 {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "status must be 400-599 and times at most 1000"})),
        )
            .into_response();
    }
    sandbox
        .microsoft()
        .fail_token_calls(body.status, body.times);
    StatusCode::NO_CONTENT.into_response()
}

async fn control_calls(State(sandbox): State<Sandbox>) -> Response {
    Json(json!(sandbox.microsoft().lock().calls.clone())).into_response()
}
