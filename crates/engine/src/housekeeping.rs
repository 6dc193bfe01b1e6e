//! Deleting what no longer serves anyone: expired sign-in sessions and
//! consent states, so neither table grows for as long as the service runs.

use std::time::Duration;

use chrono::{DateTime, Utc};
use store::{Store, StoreError};
use tokio::sync::watch;

/// How often each process purges (the deletes are idempotent across replicas).
pub const PURGE_INTERVAL: Duration = Duration::from_secs(3600);
/// Consent states are kept this long after they expire, so a late callback
/// is still told "expired" rather than "unknown".
const STATE_GRACE: chrono::Duration = chrono::Duration::days(1);

/// What one purge deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Purged {
    pub sessions: u64,
    pub oauth_states: u64,
}

pub async fn purge_expired(store: &Store, now: DateTime<Utc>) -> Result<Purged, StoreError> {
    Ok(Purged {
        sessions: store.purge_expired_sessions(now).await?,
        oauth_states: store.purge_expired_oauth_states(now - STATE_GRACE).await?,
    })
}

/// Purge every `every` until `shutdown` turns true.
pub async fn run(store: Store, every: Duration, mut shutdown: watch::Receiver<bool>) {
    loop {
        match purge_expired(&store, store::now()).await {
            Ok(purged) if purged.sessions + purged.oauth_states > 0 => {
                tracing::info!(
                    sessions = purged.sessions,
                    oauth_states = purged.oauth_states,
                    "deleted expired sessions and consent states"
                );
            }
            Ok(_) => {}
            Err(error) => tracing::warn!(
                error = format!("{error:#}"),
                "cannot delete expired sessions and consent states; trying again later"
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
                oauth_states: 1
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
                oauth_states: 0
            },
            "nothing left to purge"
        );
    }
}
