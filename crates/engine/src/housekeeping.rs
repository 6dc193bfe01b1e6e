//! Deleting what no longer serves anyone: expired sign-in sessions and
//! consent states, and webhook deliveries that ended long ago, so no table
//! grows for as long as the service runs.

use std::time::Duration;

use chrono::{DateTime, Utc};
use store::{Store, StoreError};
use tokio::sync::watch;

/// How often each process purges (the deletes are idempotent across replicas).
pub const PURGE_INTERVAL: Duration = Duration::from_secs(3600);
/// Consent states are kept this long after they expire, so a late callback
/// is still told "expired" rather than "unknown".
const STATE_GRACE: chrono::Duration = chrono::Duration::days(1);
/// How long an endpoint's delivery log keeps a delivery after it ended.
pub const DELIVERY_RETENTION: chrono::Duration = chrono::Duration::days(30);

/// What one purge deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Purged {
    pub sessions: u64,
    pub oauth_states: u64,
    pub webhook_deliveries: u64,
}

pub async fn purge_expired(store: &Store, now: DateTime<Utc>) -> Result<Purged, StoreError> {
    Ok(Purged {
        sessions: store.purge_expired_sessions(now).await?,
        oauth_states: store.purge_expired_oauth_states(now - STATE_GRACE).await?,
        webhook_deliveries: store
            .purge_finished_webhook_deliveries(now - DELIVERY_RETENTION)
            .await?,
    })
}

/// Purge every `every` until `shutdown` turns true.
pub async fn run(store: Store, every: Duration, mut shutdown: watch::Receiver<bool>) {
    loop {
        match purge_expired(&store, store::now()).await {
            Ok(purged) if purged.sessions + purged.oauth_states + purged.webhook_deliveries > 0 => {
                tracing::info!(
                    sessions = purged.sessions,
                    oauth_states = purged.oauth_states,
                    webhook_deliveries = purged.webhook_deliveries,
                    "deleted expired sessions and consent states, and old webhook deliveries"
                );
            }
            Ok(_) => {}
            Err(error) => tracing::warn!(
                error = format!("{error:#}"),
                "cannot delete expired sessions, consent states or old webhook deliveries; trying again later"
            ),
        }
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = shutdown.changed() => {}
        }
        if *shutdown.borrow() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use domain::scopes::IntegrationType;
    use store::integrations::{OAuthState, StateLookup};
    use store::sessions::Session;
    use store::testing::TestDatabase;

    use super::*;

    #[tokio::test]
    async fn expired_sessions_go_at_once_and_expired_consent_states_after_a_day() {
        let (_db, store) = TestDatabase::migrated().await;
        let workspace = store.create_workspace("acme").await.unwrap();
        let user = store
            .create_user(Some("ann@example.com"), None)
            .await
            .unwrap();
        let now = store::now();
        let session = |hours: i64| Session {
            user: user.id,
            workspace: workspace.id,
            csrf_token: "csrf".into(),
            expires_at: now + chrono::Duration::hours(hours),
        };
        store.create_session("expired", &session(-1)).await.unwrap();
        store.create_session("current", &session(1)).await.unwrap();
        let state = |hours: i64| OAuthState {
            workspace: workspace.id,
            user: user.id,
            integration_type: IntegrationType::Gmail,
            code_verifier: "verifier".into(),
            requested_scopes: "openid".into(),
            return_to: "/integrations".into(),
            expires_at: now + chrono::Duration::hours(hours),
            started_by: store::integrations::StartedBy::Api,
        };
        store
            .create_oauth_state("long-gone", &state(-48))
            .await
            .unwrap();
        store
            .create_oauth_state("just-expired", &state(-1))
            .await
            .unwrap();
        store
            .create_oauth_state("pending", &state(1))
            .await
            .unwrap();

        let purged = purge_expired(&store, now).await.unwrap();
        assert_eq!(
            purged,
            Purged {
                sessions: 1,
                oauth_states: 1,
                webhook_deliveries: 0
            }
        );
        assert!(store.session("expired").await.unwrap().is_none());
        assert!(store.session("current").await.unwrap().is_some());
        assert!(matches!(
            store.consume_oauth_state("long-gone").await.unwrap(),
            StateLookup::Unknown
        ));
        assert!(matches!(
            store.consume_oauth_state("just-expired").await.unwrap(),
            StateLookup::Expired(_)
        ));
        assert_eq!(
            purge_expired(&store, now).await.unwrap(),
            Purged {
                sessions: 0,
                oauth_states: 0,
                webhook_deliveries: 0
            },
            "nothing left to purge"
        );
    }

    /// A delivery that ended goes after the retention; a pending one stays.
    #[tokio::test]
    async fn webhook_deliveries_are_kept_for_their_retention_once_ended() {
        let (_db, store) = TestDatabase::migrated().await;
        let workspace = store.create_workspace("acme").await.unwrap().id;
        let now = store::now();
        store
            .create_webhook_endpoint(&store::webhooks::WebhookEndpoint {
                id: uuid::Uuid::now_v7(),
                workspace,
                url: "https://hooks.example.com/in".into(),
                description: String::new(),
                events: vec!["workflow.run_failed".into()],
                secret: store::integrations::Sealed {
                    key_id: "k".into(),
                    bytes: vec![0; 48],
                },
                enabled: true,
                disabled_reason: None,
                failing_since: None,
                created_at: now,
                updated_at: now,
            })
            .await
            .unwrap();
        for id in ["msg_ended", "msg_pending"] {
            store
                .queue_webhook_event(workspace, "workflow.run_failed", id, "{}", "test.deliver")
                .await
                .unwrap();
        }
        let endpoint = store.webhook_endpoints(workspace).await.unwrap()[0].id;
        let deliveries = store
            .webhook_deliveries(workspace, endpoint, 10)
            .await
            .unwrap();
        let ended = deliveries
            .iter()
            .find(|d| d.event_id == "msg_ended")
            .unwrap();
        store
            .record_webhook_attempt(
                workspace,
                ended,
                &store::webhooks::DeliveryAttempt {
                    status: "delivered",
                    response_status: Some(204),
                    last_error: None,
                    next_attempt_at: None,
                },
            )
            .await
            .unwrap();
        assert_eq!(
            purge_expired(&store, now).await.unwrap().webhook_deliveries,
            0
        );
        let later = now + DELIVERY_RETENTION + chrono::Duration::hours(1);
        assert_eq!(
            purge_expired(&store, later)
                .await
                .unwrap()
                .webhook_deliveries,
            1
        );
        let left = store
            .webhook_deliveries(workspace, endpoint, 10)
            .await
            .unwrap();
        assert_eq!(left.len(), 1);
        assert_eq!(left[0].event_id, "msg_pending");
    }
}
