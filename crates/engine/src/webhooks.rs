//! Outbound webhooks: the workspace's endpoints (create, change, rotate the
//! secret, delete), the events Mailwright emits to them, and their delivery
//! by the job queue, signed as the Standard Webhooks specification says
//! (`webhook-id`, `webhook-timestamp`, `webhook-signature: v1,<base64
//! HMAC-SHA256 of "id.timestamp.body">`, secrets `whsec_<base64>`).
//!
//! Delivery is at least once: each event gets one row per endpoint, queued
//! with its job in one transaction, retried with the queue's backoff up to
//! the retry horizon; an endpoint that has failed every delivery for the
//! horizon is switched off, and its owner told once. Payloads carry ids and
//! states, never tokens or message bodies.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::Utc;
use domain::WorkspaceId;
use domain::retry::RetryPolicy;
use domain::webhooks::{EventType, OutboundUrl};
use hmac::{Hmac, Mac};
use providers::outbound::{Answer, OutboundClient, OutboundError};
use rand::RngCore;
use serde_json::{Value, json};
use sha2::Sha256;
use store::jobs::ClaimedJob;
use store::webhooks::DeliveryAttempt;
pub use store::webhooks::{WebhookDelivery, WebhookEndpoint};
use store::{Store, StoreError};
use uuid::Uuid;

use crate::error::ServiceError;
use crate::keyring::Keyring;
use crate::notify::Notifier;
use crate::worker::{
    GiveUpFuture, JobError, JobFuture, JobHandler, next_attempt_at, recorded_by_worker,
};

pub const DELIVER_WEBHOOK: &str = "webhook.deliver";
pub const WEBHOOK_DELIVERIES: &str = "mailwright_webhook_deliveries_total";

/// Endpoints one workspace may have.
pub const MAX_ENDPOINTS: usize = 20;
/// Longest description.
const MAX_DESCRIPTION_CHARS: usize = 200;
/// Deliveries an endpoint's log shows.
pub const DELIVERY_LOG_SIZE: i64 = 50;

/// Emits events: one delivery per interested endpoint, queued. Cheap to
/// clone; every service that changes something an event reports holds one.
#[derive(Clone)]
pub struct Events {
    store: Store,
}

impl Events {
    pub fn new(store: Store) -> Events {
        Events { store }
    }

    /// Queue `event` with `data` for the workspace's endpoints that want it.
    /// A failure is logged, never passed to the caller: the change the event
    /// reports has happened either way.
    pub async fn emit(&self, workspace: WorkspaceId, event: EventType, data: Value) {
        let id = format!("msg_{}", Uuid::now_v7().simple());
        let body = json!({
            "type": event.as_str(),
            "timestamp": Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            "data": data,
        })
        .to_string();
        if let Err(error) = self
            .store
            .queue_webhook_event(workspace, event.as_str(), &id, &body, DELIVER_WEBHOOK)
            .await
        {
            tracing::error!(
                event = event.as_str(),
                error = format!("{error:#}"),
                "cannot queue a webhook event"
            );
        }
    }
}

/// `integration.status_changed`'s data: ids and the status, never the
/// account's tokens.
pub fn integration_status_data(
    integration: &store::integrations::Integration,
    error_code: Option<&str>,
) -> Value {
    json!({
        "integration_id": integration.id.to_string(),
        "provider": integration.provider,
        "type": integration.integration_type.as_str(),
        "status": integration.status.as_str(),
        "error_code": error_code,
    })
}

/// A new signing secret: `whsec_` and 32 random bytes, base64.
fn new_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    format!("whsec_{}", STANDARD.encode(bytes))
}

/// The signature header's value for a message, as Standard Webhooks
/// defines it. `secret` is the `whsec_` form.
pub fn signature(secret: &str, id: &str, timestamp: i64, body: &str) -> String {
    let key = STANDARD
        .decode(secret.strip_prefix("whsec_").unwrap_or(secret))
        .unwrap_or_default();
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).expect("HMAC takes a key of any length");
    mac.update(format!("{id}.{timestamp}.{body}").as_bytes());
    format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
}

fn secret_context(endpoint: Uuid) -> String {
    format!("webhook_endpoint:{endpoint}")
}

/// An endpoint as given: URL, event types, description, switch.
#[derive(Debug, Clone)]
pub struct EndpointInput {
    pub url: String,
    pub events: Vec<String>,
    pub description: Option<String>,
    pub enabled: Option<bool>,
}

pub struct Webhooks {
    store: Store,
    keyring: Arc<Keyring>,
    allow_private: bool,
}

impl Webhooks {
    pub fn new(store: Store, keyring: Arc<Keyring>, allow_private: bool) -> Webhooks {
        Webhooks {
            store,
            keyring,
            allow_private,
        }
    }

    /// Whether private addresses may be called (the operator's setting).
    pub fn allows_private_networks(&self) -> bool {
        self.allow_private
    }

    fn check(&self, input: &EndpointInput) -> Result<(String, Vec<String>, String), ServiceError> {
        let mut problems = Vec::new();
        let url = match OutboundUrl::parse(&input.url, self.allow_private) {
            Ok(url) => url.as_str().to_owned(),
            Err(problem) => {
                problems.push(domain::workflows::Invalid::new("url", problem));
                String::new()
            }
        };
        let mut events = Vec::new();
        if input.events.is_empty() {
            problems.push(domain::workflows::Invalid::new(
                "events",
                "needs at least one event type",
            ));
        }
        for (index, name) in input.events.iter().enumerate() {
            match EventType::parse(name) {
                Some(event) if !events.contains(&event.as_str().to_owned()) => {
                    events.push(event.as_str().to_owned())
                }
                Some(_) => {}
                None => problems.push(domain::workflows::Invalid::new(
                    format!("events[{index}]"),
                    format!(
                        "is not an event type; known: {}",
                        EventType::ALL.map(EventType::as_str).join(", ")
                    ),
                )),
            }
        }
        let description = input
            .description
            .clone()
            .unwrap_or_default()
            .trim()
            .to_owned();
        if description.chars().count() > MAX_DESCRIPTION_CHARS {
            problems.push(domain::workflows::Invalid::new(
                "description",
                "must be at most 200 characters",
            ));
        }
        if !problems.is_empty() {
            return Err(ServiceError::Invalid(problems));
        }
        Ok((url, events, description))
    }

    /// A new endpoint, and its signing secret (shown this once).
    pub async fn create(
        &self,
        workspace: WorkspaceId,
        input: &EndpointInput,
    ) -> Result<(WebhookEndpoint, String), ServiceError> {
        let (url, events, description) = self.check(input)?;
        if self.store.webhook_endpoints(workspace).await?.len() >= MAX_ENDPOINTS {
            return Err(ServiceError::Conflict(format!(
                "A workspace may have {MAX_ENDPOINTS} webhook endpoints; delete one first."
            )));
        }
        let id = Uuid::now_v7();
        let secret = new_secret();
        let at = store::now();
        let endpoint = WebhookEndpoint {
            id,
            workspace,
            url,
            description,
            events,
            secret: self.keyring.seal(secret.as_bytes(), &secret_context(id)),
            enabled: input.enabled.unwrap_or(true),
            disabled_reason: None,
            failing_since: None,
            created_at: at,
            updated_at: at,
        };
        self.store.create_webhook_endpoint(&endpoint).await?;
        Ok((endpoint, secret))
    }

    pub async fn list(&self, workspace: WorkspaceId) -> Result<Vec<WebhookEndpoint>, ServiceError> {
        Ok(self.store.webhook_endpoints(workspace).await?)
    }

    pub async fn get(
        &self,
        workspace: WorkspaceId,
        id: Uuid,
    ) -> Result<WebhookEndpoint, ServiceError> {
        Ok(self.store.webhook_endpoint(workspace, id).await?)
    }

    /// Replace the URL, events, description and (when given) the switch.
    pub async fn update(
        &self,
        workspace: WorkspaceId,
        id: Uuid,
        input: &EndpointInput,
    ) -> Result<WebhookEndpoint, ServiceError> {
        let mut endpoint = self.store.webhook_endpoint(workspace, id).await?;
        let (url, events, description) = self.check(input)?;
        endpoint.url = url;
        endpoint.events = events;
        endpoint.description = description;
        if let Some(enabled) = input.enabled {
            endpoint.enabled = enabled;
        }
        self.store.update_webhook_endpoint(&endpoint).await?;
        Ok(self.store.webhook_endpoint(workspace, id).await?)
    }

    pub async fn delete(&self, workspace: WorkspaceId, id: Uuid) -> Result<(), ServiceError> {
        Ok(self.store.delete_webhook_endpoint(workspace, id).await?)
    }

    /// A new signing secret (shown this once); the old one stops at once.
    pub async fn rotate_secret(
        &self,
        workspace: WorkspaceId,
        id: Uuid,
    ) -> Result<String, ServiceError> {
        self.store.webhook_endpoint(workspace, id).await?;
        let secret = new_secret();
        let sealed = self.keyring.seal(secret.as_bytes(), &secret_context(id));
        self.store
            .set_webhook_endpoint_secret(workspace, id, None, &sealed)
            .await?;
        Ok(secret)
    }

    pub async fn deliveries(
        &self,
        workspace: WorkspaceId,
        id: Uuid,
    ) -> Result<Vec<WebhookDelivery>, ServiceError> {
        self.store.webhook_endpoint(workspace, id).await?;
        Ok(self
            .store
            .webhook_deliveries(workspace, id, DELIVERY_LOG_SIZE)
            .await?)
    }

    /// Send a delivery again, whatever became of it.
    pub async fn redeliver(
        &self,
        workspace: WorkspaceId,
        endpoint: Uuid,
        delivery: Uuid,
    ) -> Result<(), ServiceError> {
        Ok(self
            .store
            .redeliver_webhook(workspace, endpoint, delivery, DELIVER_WEBHOOK)
            .await?)
    }
}

/// Re-encrypt every endpoint secret under the keyring's first key; how many.
pub async fn reencrypt_secrets(store: &Store, keyring: &Keyring) -> anyhow::Result<usize> {
    let primary = keyring.primary_key_id().to_owned();
    let mut rewritten = 0;
    for (workspace, id, sealed) in store.webhook_endpoint_secrets().await? {
        if sealed.key_id == primary {
            continue;
        }
        let context = secret_context(id);
        let secret = keyring.open(&sealed, &context)?;
        let resealed = keyring.seal(&secret, &context);
        if store
            .set_webhook_endpoint_secret(workspace, id, Some(&sealed), &resealed)
            .await?
        {
            rewritten += 1;
        }
    }
    Ok(rewritten)
}

/// Delivers one event to one endpoint (job `webhook.deliver`).
pub struct DeliverWebhook {
    store: Store,
    keyring: Arc<Keyring>,
    client: OutboundClient,
    notifier: Arc<Notifier>,
    policy: RetryPolicy,
}

impl DeliverWebhook {
    pub fn new(
        store: Store,
        keyring: Arc<Keyring>,
        client: OutboundClient,
        notifier: Arc<Notifier>,
        policy: RetryPolicy,
    ) -> DeliverWebhook {
        DeliverWebhook {
            store,
            keyring,
            client,
            notifier,
            policy,
        }
    }

    /// The delivery the job names, in the job's workspace.
    async fn delivery(
        &self,
        job: &ClaimedJob,
    ) -> Result<Option<(WebhookDelivery, WebhookEndpoint)>, JobError> {
        let Some((workspace, id)) = job.workspace.zip(
            job.payload
                .get("delivery_id")
                .and_then(Value::as_str)
                .and_then(|id| Uuid::parse_str(id).ok()),
        ) else {
            return Err(JobError::Permanent("the job names no delivery".into()));
        };
        match self.store.webhook_delivery(workspace, id).await {
            Ok(found) => Ok(Some(found)),
            // The endpoint (and with it the delivery) was deleted.
            Err(StoreError::NotFound) => Ok(None),
            Err(error) => Err(JobError::Transient {
                message: format!("the delivery cannot be read ({error})"),
                retry_after: None,
            }),
        }
    }

    async fn attempt(&self, job: &ClaimedJob) -> Result<(), JobError> {
        let Some((delivery, endpoint)) = self.delivery(job).await? else {
            return Ok(());
        };
        if delivery.status != "pending" {
            // An earlier attempt finished it and died before its job did.
            return Ok(());
        }
        let workspace = delivery.workspace;
        if !endpoint.enabled {
            let reason = "the endpoint is switched off".to_owned();
            self.record(
                workspace,
                &delivery,
                "failed",
                None,
                Some(reason.clone()),
                None,
            )
            .await?;
            return Err(JobError::Permanent(reason));
        }
        let secret = self
            .keyring
            .open(&endpoint.secret, &secret_context(endpoint.id))
            .map_err(|error| {
                JobError::Permanent(format!("the endpoint's secret cannot be read ({error})"))
            })?;
        let secret = String::from_utf8(secret)
            .map_err(|_| JobError::Permanent("the endpoint's secret is damaged".into()))?;
        let timestamp = Utc::now().timestamp();
        let headers = [
            ("webhook-id", delivery.event_id.clone()),
            ("webhook-timestamp", timestamp.to_string()),
            (
                "webhook-signature",
                signature(&secret, &delivery.event_id, timestamp, &delivery.payload),
            ),
        ];
        let outcome = self
            .client
            .post_json(&endpoint.url, &headers, delivery.payload.clone())
            .await;
        let (status, words) = match &outcome {
            Ok(answer) if answer.is_success() => {
                metrics::counter!(WEBHOOK_DELIVERIES, "outcome" => "delivered").increment(1);
                self.record(
                    workspace,
                    &delivery,
                    "delivered",
                    Some(answer.status),
                    excerpt_of(answer),
                    None,
                )
                .await?;
                return Ok(());
            }
            Ok(answer) => (
                Some(answer.status),
                format!(
                    "answered {}{}",
                    answer.status,
                    match excerpt_of(answer) {
                        Some(excerpt) => format!(": {excerpt}"),
                        None if (300..400).contains(&answer.status) =>
                            " (redirects are not followed)".to_owned(),
                        None => String::new(),
                    }
                ),
            ),
            Err(OutboundError::Refused(reason) | OutboundError::NoAnswer(reason)) => {
                (None, reason.clone())
            }
        };
        metrics::counter!(WEBHOOK_DELIVERIES, "outcome" => "failed_attempt").increment(1);
        let at = next_attempt_at(&self.policy, job, None);
        let failing_since = self
            .record(
                workspace,
                &delivery,
                "pending",
                status,
                Some(words.clone()),
                Some(at),
            )
            .await?;
        // A whole horizon of failures: switch the endpoint off, tell its owner.
        if let Some(since) = failing_since
            && Utc::now() - since
                >= chrono::Duration::from_std(self.policy.horizon).unwrap_or_default()
        {
            self.switch_off(&endpoint, &words).await;
        }
        Err(JobError::RetryAt { message: words, at })
    }

    async fn switch_off(&self, endpoint: &WebhookEndpoint, last_error: &str) {
        let hours = self.policy.horizon.as_secs() / 3600;
        let reason = format!(
            "Every delivery failed for {hours} hours (last: {last_error}); switched off by Mailwright. Fix the endpoint, then switch it on again."
        );
        match self
            .store
            .disable_webhook_endpoint(endpoint.workspace, endpoint.id, &reason)
            .await
        {
            Ok(true) => {
                tracing::warn!(endpoint = %endpoint.id, "webhook endpoint switched off after a day of failed deliveries");
                self.notifier
                    .webhook_endpoint_disabled(endpoint, &reason)
                    .await;
            }
            Ok(false) => {}
            Err(error) => {
                tracing::error!(endpoint = %endpoint.id, error = format!("{error:#}"), "cannot switch the failing endpoint off")
            }
        }
    }

    async fn record(
        &self,
        workspace: WorkspaceId,
        delivery: &WebhookDelivery,
        status: &'static str,
        response_status: Option<u16>,
        last_error: Option<String>,
        next_attempt_at: Option<chrono::DateTime<Utc>>,
    ) -> Result<Option<chrono::DateTime<Utc>>, JobError> {
        self.store
            .record_webhook_attempt(
                workspace,
                delivery,
                &DeliveryAttempt {
                    status,
                    response_status: response_status.map(i32::from),
                    last_error,
                    next_attempt_at,
                },
            )
            .await
            .map_err(|error| JobError::Transient {
                message: format!("the delivery cannot be recorded ({error})"),
                retry_after: None,
            })
    }
}

fn excerpt_of(answer: &Answer) -> Option<String> {
    (!answer.excerpt.is_empty()).then(|| answer.excerpt.clone())
}

impl JobHandler for DeliverWebhook {
    fn kind(&self) -> &'static str {
        DELIVER_WEBHOOK
    }

    fn run<'a>(&'a self, job: &'a ClaimedJob) -> JobFuture<'a> {
        recorded_by_worker(self.attempt(job))
    }

    /// Past the horizon: the delivery ends `failed`, its last error kept.
    fn give_up<'a>(&'a self, job: &'a ClaimedJob, reason: &'a str) -> GiveUpFuture<'a> {
        Box::pin(async move {
            let Ok(Some((delivery, _))) = self.delivery(job).await else {
                return Ok(());
            };
            if delivery.status != "pending" {
                return Ok(());
            }
            let error = match &delivery.last_error {
                Some(last) => format!("{last} ({reason})"),
                None => reason.to_owned(),
            };
            let failing_since = self
                .store
                .record_webhook_attempt(
                    delivery.workspace,
                    &delivery,
                    &DeliveryAttempt {
                        status: "failed",
                        response_status: delivery.response_status,
                        last_error: Some(error.clone()),
                        next_attempt_at: None,
                    },
                )
                .await?;
            // The endpoint has failed every delivery since this one's first
            // attempt, and this one for its whole horizon: switched off.
            if let (Some(since), Some(first), Ok(endpoint)) = (
                failing_since,
                delivery.first_attempt_at,
                self.store
                    .webhook_endpoint(delivery.workspace, delivery.endpoint_id)
                    .await,
            ) && since <= first
            {
                self.switch_off(&endpoint, &error).await;
            }
            Ok(())
        })
    }
}

/// How long one delivery may take.
pub const DELIVERY_TIMEOUT: Duration = providers::outbound::CALL_TIMEOUT;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_follow_the_standard_webhooks_example() {
        // The specification's worked example.
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let signed = signature(
            secret,
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            r#"{"test": 2432232314}"#,
        );
        assert_eq!(signed, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn secrets_are_whsec_and_random() {
        let secret = new_secret();
        assert!(secret.starts_with("whsec_"));
        assert_eq!(STANDARD.decode(&secret[6..]).unwrap().len(), 32);
        assert_ne!(secret, new_secret());
    }
}
