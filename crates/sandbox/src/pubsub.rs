//! Cloud Pub/Sub push, as Gmail's `users.watch` uses it: while a mailbox is
//! watched, each change to a watched label is published to the watch's
//! topic, and a push subscription ([`PushSubscription`]) posts it to an
//! HTTP endpoint with `Authorization: Bearer <ID token>`. The token is
//! signed RS256 with a key generated for this sandbox, published at
//! `/oauth2/v3/certs` (Google's is `www.googleapis.com/oauth2/v3/certs`);
//! its claims are Google's: `iss` `https://accounts.google.com`, `aud` the
//! subscription's audience, `email` (verified) the service account, `sub`
//! and `azp` its numeric id, one hour of life.
//!
//! Bodies are Pub/Sub's push envelope, `{"message": {"data",
//! "messageId", "message_id", "publishTime", "publish_time", "attributes"},
//! "subscription"}`, with `data` = base64 of Gmail's
//! `{"emailAddress", "historyId"}`. A non-2xx answer is retried with
//! backoff (a few times; Pub/Sub keeps trying for days), and every
//! attempt's outcome is kept for tests ([`Sandbox::push_deliveries`]).

use std::sync::{Arc, OnceLock};
use std::time::Duration as StdDuration;

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rsa::pkcs1::EncodeRsaPrivateKey;
use rsa::traits::PublicKeyParts;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::Sandbox;

/// The issuer Google's ID tokens carry.
pub const PUSH_ISSUER: &str = "https://accounts.google.com";
/// How long a push token is valid, as Google's.
const TOKEN_LIFETIME_SECONDS: i64 = 3600;
/// How often the publisher looks for changes when nothing woke it.
const PUBLISH_TICK: StdDuration = StdDuration::from_millis(200);
/// Attempts per message before the sandbox gives up on it.
const PUSH_ATTEMPTS: u32 = 5;
const PUSH_TIMEOUT: StdDuration = StdDuration::from_secs(10);
/// Deliveries remembered for [`Sandbox::push_deliveries`].
const DELIVERIES_KEPT: usize = 1_000;

/// A push subscription on the topic every watch publishes to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushSubscription {
    /// Where pushes are posted, e.g. `https://mail.example.com/api/push/gmail`.
    pub endpoint: String,
    /// The ID token's `aud`.
    pub audience: String,
    /// The ID token's `email`: the service account the subscription
    /// authenticates as.
    pub service_account: String,
}

/// One push attempt.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PushDelivery {
    pub email: String,
    pub history_id: u64,
    pub attempt: u32,
    /// The endpoint's HTTP status; `None` when it could not be reached.
    pub status: Option<u16>,
    pub at: DateTime<Utc>,
}

/// The sandbox's signing key and the JWKS that publishes it.
pub(crate) struct Signer {
    kid: String,
    key: EncodingKey,
    jwks: Value,
}

impl Signer {
    fn generate() -> Signer {
        let private = rsa::RsaPrivateKey::new(&mut rand::thread_rng(), 2048)
            .expect("an RSA key can be generated");
        let public = private.to_public_key();
        let kid = format!("sandbox-{}", crate::state::random_token(8));
        let jwks = json!({ "keys": [{
            "kty": "RSA", "alg": "RS256", "use": "sig", "kid": kid,
            "n": URL_SAFE_NO_PAD.encode(public.n().to_bytes_be()),
            "e": URL_SAFE_NO_PAD.encode(public.e().to_bytes_be()),
        }]});
        let der = private.to_pkcs1_der().expect("the key encodes");
        Signer {
            kid,
            key: EncodingKey::from_rsa_der(der.as_bytes()),
            jwks,
        }
    }
}

/// Made on first use: an RSA key takes a moment, and most sandboxes never
/// push.
#[derive(Clone, Default)]
pub(crate) struct SignerCell(Arc<OnceLock<Signer>>);

impl SignerCell {
    fn get(&self) -> &Signer {
        self.0.get_or_init(Signer::generate)
    }
}

/// A deterministic numeric id for a service account (Google's `sub`).
fn numeric_id(email: &str) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(email.as_bytes());
    let mut number = 0u64;
    for byte in &digest[..8] {
        number = number << 8 | u64::from(*byte);
    }
    format!("1{:020}", number)
}

impl Sandbox {
    /// Push every watched mailbox's changes to `subscription` from now on
    /// (replacing any earlier subscription). Needs a Tokio runtime: the
    /// publisher runs as a task until the sandbox is dropped.
    pub fn set_push_subscription(&self, subscription: PushSubscription) {
        let start = {
            let mut world = self.lock();
            world.push_subscription = Some(subscription);
            !std::mem::replace(&mut world.publisher_running, true)
        };
        if start {
            tokio::spawn(publish(
                Arc::downgrade(&self.world),
                self.signer.clone(),
                Arc::clone(&self.push_wake),
            ));
        }
        self.push_wake.notify_one();
    }

    /// Every push attempt so far, oldest first.
    pub fn push_deliveries(&self) -> Vec<PushDelivery> {
        self.lock().push_deliveries.iter().cloned().collect()
    }

    /// Until when `email`'s mailbox is watched, if it is.
    pub fn watch_expiration(&self, email: &str) -> Option<DateTime<Utc>> {
        let world = self.lock();
        let expiration = world.mailbox(email)?.watch_expiration?;
        (expiration > world.now()).then_some(expiration)
    }

    /// A push token as the subscription would send it, for `audience` and
    /// `service_account`: tests use it to check what a receiver accepts.
    pub fn sign_push_token(&self, audience: &str, service_account: &str) -> String {
        sign(self.signer.get(), audience, service_account)
    }

    /// Any claims, signed with the sandbox's push key (tests of what a
    /// receiver refuses: another issuer, an expired token, ...).
    pub fn sign_push_claims(&self, claims: &Value) -> String {
        let signer = self.signer.get();
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(signer.kid.clone());
        jsonwebtoken::encode(&header, claims, &signer.key).expect("the token signs")
    }

    /// The URL path (below the sandbox's mount point) of its certificates.
    pub const CERTS_PATH: &'static str = "/oauth2/v3/certs";
}

fn sign(signer: &Signer, audience: &str, service_account: &str) -> String {
    let now = Utc::now().timestamp();
    let id = numeric_id(service_account);
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(signer.kid.clone());
    let claims = json!({
        "aud": audience,
        "azp": id,
        "email": service_account,
        "email_verified": true,
        "exp": now + TOKEN_LIFETIME_SECONDS,
        "iat": now,
        "iss": PUSH_ISSUER,
        "sub": id,
    });
    jsonwebtoken::encode(&header, &claims, &signer.key).expect("the token signs")
}

/// `GET /oauth2/v3/certs`: the keys push tokens are signed with.
pub(crate) async fn certs(State(sandbox): State<Sandbox>) -> Response {
    Json(sandbox.signer.get().jwks.clone()).into_response()
}

/// One notification to publish.
struct Notification {
    email: String,
    history_id: u64,
    message_id: u64,
}

/// Changes since each watched mailbox's last publication, on watched labels.
fn due_notifications(sandbox: &Sandbox) -> Option<(PushSubscription, Vec<Notification>)> {
    let mut world = sandbox.lock();
    let subscription = world.push_subscription.clone()?;
    let now = world.now();
    let mut due = Vec::new();
    let mut emails: Vec<String> = world.mailboxes.keys().cloned().collect();
    emails.sort();
    for email in emails {
        let Some(mailbox) = world.mailboxes.get_mut(&email) else {
            continue;
        };
        if mailbox.watch_expiration.is_none_or(|until| until <= now) {
            continue;
        }
        let since = mailbox.watch_published;
        let labels = &mailbox.watch_labels;
        let relevant = mailbox.history.iter().any(|record| {
            record.id > since
                && (labels.is_empty()
                    || labels
                        .iter()
                        .any(|watched| record.change.concerns_label(watched)))
        });
        mailbox.watch_published = mailbox.history_id;
        if relevant {
            due.push((email, mailbox.history_id));
        }
    }
    let due = due
        .into_iter()
        .map(|(email, history_id)| Notification {
            email,
            history_id,
            message_id: world.next_id(),
        })
        .collect();
    Some((subscription, due))
}

/// The publisher: wakes on a delivery (or every [`PUBLISH_TICK`]) and posts
/// what is due, each notification on its own task so a slow endpoint does
/// not hold up the others. Ends when the sandbox is gone.
async fn publish(
    world: std::sync::Weak<std::sync::Mutex<crate::state::State>>,
    signer: SignerCell,
    wake: Arc<tokio::sync::Notify>,
) {
    let http = reqwest::Client::new();
    loop {
        let _ = tokio::time::timeout(PUBLISH_TICK, wake.notified()).await;
        let Some(world) = world.upgrade() else {
            return;
        };
        let sandbox = Sandbox::from_parts(world, signer.clone(), Arc::clone(&wake));
        let Some((subscription, due)) = due_notifications(&sandbox) else {
            continue;
        };
        for notification in due {
            tokio::spawn(push_one(
                sandbox.clone(),
                http.clone(),
                subscription.clone(),
                notification,
            ));
        }
    }
}

async fn push_one(
    sandbox: Sandbox,
    http: reqwest::Client,
    subscription: PushSubscription,
    notification: Notification,
) {
    let data = STANDARD.encode(
        json!({ "emailAddress": notification.email, "historyId": notification.history_id })
            .to_string(),
    );
    let published = Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let id = notification.message_id.to_string();
    let body = json!({
        "message": {
            "attributes": {},
            "data": data,
            "messageId": id, "message_id": id,
            "publishTime": published, "publish_time": published,
        },
        "subscription": "projects/sandbox/subscriptions/gmail-push",
    });
    for attempt in 1..=PUSH_ATTEMPTS {
        let token = sign(
            sandbox.signer.get(),
            &subscription.audience,
            &subscription.service_account,
        );
        let status = http
            .post(&subscription.endpoint)
            .bearer_auth(token)
            .json(&body)
            .timeout(PUSH_TIMEOUT)
            .send()
            .await
            .ok()
            .map(|response| response.status().as_u16());
        {
            let mut world = sandbox.lock();
            let at = world.now();
            if world.push_deliveries.len() >= DELIVERIES_KEPT {
                world.push_deliveries.pop_front();
            }
            world.push_deliveries.push_back(PushDelivery {
                email: notification.email.clone(),
                history_id: notification.history_id,
                attempt,
                status,
                at,
            });
        }
        if status.is_some_and(|status| (200..300).contains(&status)) || attempt == PUSH_ATTEMPTS {
            return;
        }
        tokio::time::sleep(StdDuration::from_millis(200 << attempt)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::InboundMessage;
    use crate::{AccountSpec, SandboxConfig};

    const ANN: &str = "ann@example.com";

    /// Whether a publication is due for Ann, after `change` ran on a
    /// mailbox watching `watched` with one inbound message in it.
    fn due_after(watched: &[&str], change: impl FnOnce(&Sandbox, &str)) -> bool {
        let sandbox =
            Sandbox::new(SandboxConfig::default().with_account(AccountSpec::new(ANN, "Ann")));
        let id = sandbox
            .deliver(&InboundMessage::new("x@outside.test", ANN, "Hi", "x"))
            .unwrap()[0]
            .id
            .clone();
        sandbox.create_label(ANN, "Receipts").unwrap();
        {
            let mut world = sandbox.lock();
            world.push_subscription = Some(PushSubscription {
                endpoint: "http://127.0.0.1:9/push".into(),
                audience: "aud".into(),
                service_account: "sa@example.com".into(),
            });
            let expiration = world.now() + chrono::Duration::days(1);
            let mailbox = world.mailbox_mut(ANN).unwrap();
            mailbox.watch_expiration = Some(expiration);
            mailbox.watch_labels = watched.iter().map(|l| (*l).to_owned()).collect();
            mailbox.watch_published = mailbox.history_id;
        }
        change(&sandbox, &id);
        due_notifications(&sandbox).is_some_and(|(_, due)| !due.is_empty())
    }

    fn modify(add: &[&str], remove: &[&str]) -> impl FnOnce(&Sandbox, &str) {
        let add: Vec<String> = add.iter().map(|l| (*l).to_owned()).collect();
        let remove: Vec<String> = remove.iter().map(|l| (*l).to_owned()).collect();
        move |sandbox, id| {
            let mut world = sandbox.lock();
            let ids = [world.next_history_id(), world.next_history_id()];
            world
                .mailbox_mut(ANN)
                .unwrap()
                .modify_labels(id, &add, &remove, ids)
                .unwrap()
                .unwrap();
        }
    }

    #[test]
    fn label_changes_are_published_when_they_concern_a_watched_label() {
        assert!(!due_after(&["INBOX"], |_, _| {}), "nothing changed");
        // The message is in INBOX: a new label on it concerns INBOX watchers.
        assert!(due_after(&["INBOX"], modify(&["Label_1"], &[])));
        // Archiving removes INBOX: still about INBOX.
        assert!(due_after(&["INBOX"], modify(&[], &["INBOX"])));
        assert!(due_after(&["Label_1"], modify(&["Label_1"], &[])));
        assert!(!due_after(&["SPAM"], modify(&["STARRED"], &[])));
        assert!(due_after(&[], modify(&["STARRED"], &[])));
    }
}
