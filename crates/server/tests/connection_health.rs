//! The daily connection health check (issue "Gmail in production"): a grant
//! revoked at Google is found by the check itself, a day after the last
//! one, without any workflow or draft having needed the connection; and of
//! two processes, one checks each connection.

mod common;

use std::sync::Arc;

use common::google::{ANN, CLIENT_ID, world};
use common::ui::{page, session};
use common::workflows::{create_ok, send_step};
use engine::health::{CHECK_EVERY, ConnectionHealth};
use sandbox::Consent;

fn health(w: &common::google::World) -> ConnectionHealth {
    ConnectionHealth::new(w.app.store.clone(), Arc::clone(&w.app.vault))
}

/// A day (and a minute) passes.
async fn a_day_passes(w: &common::google::World) {
    store::testing::age_connection_checks(&w.app.store, CHECK_EVERY + chrono::Duration::minutes(1))
        .await;
}

#[tokio::test]
async fn a_grant_revoked_at_google_is_found_by_the_daily_check_with_one_notice() {
    let w = world().await;
    let id = w.connect(Consent::allow_all()).await["integration_id"].clone();
    let check = health(&w);
    let weekly = create_ok(
        &w,
        serde_json::json!({"name": "Weekly report", "trigger": {"type": "schedule", "cron": "0 9 * * 1"},
            "steps": [send_step(&id, "boss@example.com", "Report")]}),
    )
    .await;
    let weekly_page = format!("/workflows/{}", weekly["id"].as_str().unwrap());

    // Not due on the day it was connected.
    assert_eq!(check.tick(store::now()).await.unwrap(), 0);

    assert!(w.sandbox.revoke_grant(ANN, CLIENT_ID));
    a_day_passes(&w).await;
    let refreshes = w.refreshes();
    assert_eq!(check.tick(store::now()).await.unwrap(), 1);
    assert_eq!(w.refreshes() - refreshes, 1, "one refresh, refused");

    let view = w.integration(&id).await;
    assert_eq!(view["status"], "needs_reauth", "{view}");
    assert!(view["reconnect_url"].is_string());
    // The notice is queued; delivering it is the only job there is (no
    // workflow ran, no draft was attempted).
    assert_eq!(w.app.worker.drain().await.unwrap(), 1);
    let emails = w.outbox().await;
    assert_eq!(emails.len(), 1, "{emails:?}");
    assert_eq!(emails[0]["kind"], "integration_needs_reauth");
    let runbook = format!("{}/runbook#needs_reauth", w.app.address);
    assert!(
        emails[0]["text"].as_str().unwrap().contains(&runbook),
        "the notice links to its runbook entry: {}",
        emails[0]["text"]
    );

    // Every signed-in page says so until it is fixed.
    let (cookie, _) = session(&w, w.tenant.user, w.tenant.workspace).await;
    for path in ["/", "/workflows", "/settings"] {
        let (status, html) = page(&w, &cookie, path).await;
        assert_eq!(status, 200);
        assert!(
            html.contains(&format!(
                "A connection needs you: {ANN} (needs reconnecting)"
            )),
            "{path}: {html}"
        );
    }

    // The workflow that would have found out at send time says so now.
    let (_, html) = page(&w, &cookie, &weekly_page).await;
    assert!(
        html.contains("Step 1 cannot run: Mailwright") && html.contains("is no longer accepted"),
        "{html}"
    );

    // Broken connections are not checked again, and nobody is told twice.
    a_day_passes(&w).await;
    assert_eq!(check.tick(store::now()).await.unwrap(), 0);
    assert_eq!(w.outbox().await.len(), 1);
}

#[tokio::test]
async fn a_healthy_connection_is_refreshed_once_a_day_by_one_of_two_processes() {
    let w = world().await;
    let id = w.connect(Consent::allow_all()).await["integration_id"].clone();
    a_day_passes(&w).await;

    // Two processes tick at once: one of them checks it.
    let first = health(&w);
    let second = ConnectionHealth::new(
        w.app.db.connect().await,
        Arc::new(w.second_process_vault().await),
    );
    let refreshes = w.refreshes();
    let now = store::now();
    let (a, b) = tokio::join!(first.tick(now), second.tick(now));
    assert_eq!(a.unwrap() + b.unwrap(), 1, "checked once across processes");
    assert_eq!(w.refreshes() - refreshes, 1);
    assert_eq!(w.integration(&id).await["status"], "connected");
    let (cookie, _) = session(&w, w.tenant.user, w.tenant.workspace).await;
    let (_, html) = page(&w, &cookie, "/workflows").await;
    assert!(!html.contains("needs you"), "no banner while all is well");

    // Checked just now: not due again until a day has passed.
    assert_eq!(first.tick(store::now()).await.unwrap(), 0);
    a_day_passes(&w).await;
    assert_eq!(first.tick(store::now()).await.unwrap(), 1);
}
