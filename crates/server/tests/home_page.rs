//! The home page answers "is everything all right?": each mailbox with its
//! status and next action, today's and the week's numbers, the latest
//! drafts and runs, anything failing; and the charts of the auto-draft and
//! workflow pages drawn from real data.

mod common;

use common::google::{ANN, world};
use common::ui::{page, session};
use common::workflows::{BOB, create_ok, execute, finish, send_step};
use sandbox::Consent;
use serde_json::json;

#[tokio::test]
async fn home_shows_mailboxes_numbers_latest_drafts_and_runs_and_what_is_failing() {
    let w = world().await;
    let (cookie, _) = session(&w, w.tenant.user, w.tenant.workspace).await;

    // The `world` tenant has a placeholder connection; a new workspace
    // starts empty: Home offers to connect Gmail, coming back to Home.
    let newcomer = w.app.bare_tenant("newcomer").await;
    let (new_cookie, _) = session(&w, newcomer.user, newcomer.workspace).await;
    let (status, html) = page(&w, &new_cookie, "/").await;
    assert_eq!(status, 200);
    assert!(html.contains(r#"id="home-connect""#), "{html}");
    assert!(html.contains(r#"name="return_to" value="/""#), "{html}");

    let id = w.connect(Consent::allow_all()).await["integration_id"].clone();
    assert_eq!(common::autodraft::put_switch(&w, &id, true).await.0, 200);
    w.sandbox
        .deliver(&sandbox::InboundMessage::new(
            "Bob Builder <bob@example.com>",
            ANN,
            "Quarterly numbers",
            "Could you send me the quarterly numbers by Friday?",
        ))
        .unwrap();
    store::testing::make_polls_due(&w.app.store).await;
    w.app.autodraft.poll_tick(store::now()).await.unwrap();
    w.app.worker.drain().await.unwrap();

    let workflow = create_ok(
        &w,
        json!({"name": "Order shipped", "trigger": {"type": "manual"}, "steps": [send_step(&id, BOB, "Shipped")]}),
    )
    .await;
    let workflow_id = workflow["id"].as_str().unwrap().to_owned();
    let (_, started) = execute(
        &w,
        &workflow_id,
        json!({"name": "Bob", "order": "A-1"}),
        false,
        None,
    )
    .await;
    finish(&w, started["run"]["id"].as_str().unwrap()).await;

    let (status, html) = page(&w, &cookie, "/").await;
    assert_eq!(status, 200);
    let mailbox = html
        .split(r#"id="mailboxes""#)
        .nth(1)
        .expect("the mailboxes list");
    assert!(
        mailbox.contains(ANN) && mailbox.contains("Auto-draft on"),
        "{mailbox}"
    );
    assert!(mailbox.contains("today 1 drafted"), "{mailbox}");
    let totals = html.split(r#"id="totals""#).nth(1).unwrap();
    assert!(
        totals.contains("<strong>1</strong> drafted today"),
        "{totals}"
    );
    let drafts = html.split(r#"id="latest-drafts""#).nth(1).unwrap();
    assert!(
        drafts.contains("<strong>Quarterly numbers</strong>"),
        "{drafts}"
    );
    assert!(
        drafts.contains("from Bob Builder &lt;bob@example.com&gt;"),
        "{drafts}"
    );
    assert!(
        drafts.contains("https://mail.google.com/mail/?authuser="),
        "{drafts}"
    );
    let runs = html.split(r#"id="latest-runs""#).nth(1).unwrap();
    assert!(
        runs.contains("succeeded") && runs.contains("Order shipped"),
        "{runs}"
    );

    // The auto-draft and workflow pages draw their days.
    let (_, autodraft) = page(&w, &cookie, &format!("/autodraft/{id}")).await;
    let chart = autodraft.split(r#"id="autodraft-chart""#).nth(1).unwrap();
    assert!(chart.contains(r#"<svg class="chart""#), "{chart}");
    assert!(chart.contains(": 1 drafted</title>"), "{chart}");
    let (_, workflow_page) = page(&w, &cookie, &format!("/workflows/{workflow_id}")).await;
    let chart = workflow_page
        .split(r#"id="runs-chart""#)
        .nth(1)
        .expect("the runs chart");
    assert!(chart.contains(": 1 succeeded</title>"), "{chart}");
    assert!(chart.contains("mean run time"), "{chart}");

    // A connection that breaks is named first, with a reconnect that comes
    // back here; a failed run is counted.
    assert!(w.sandbox.revoke_grant(ANN, common::google::CLIENT_ID));
    w.sandbox.expire_access_tokens_of(ANN);
    let (_, failed) = execute(
        &w,
        &workflow_id,
        json!({"name": "Bob", "order": "A-2"}),
        false,
        None,
    )
    .await;
    finish(&w, failed["run"]["id"].as_str().unwrap()).await;
    let (_, html) = page(&w, &cookie, "/").await;
    let failing = html
        .split(r#"id="failing""#)
        .nth(1)
        .expect("the failing list");
    assert!(failing.contains(&format!("{ANN}: ")), "{failing}");
    assert!(
        failing.contains(&format!("/api/integrations/{id}/reconnect?return_to=%2F")),
        "{failing}"
    );
    assert!(
        failing.contains("1 workflow run(s) failed in the last 24 hours"),
        "{failing}"
    );
    assert!(!html.contains(r#"id="all-well""#));

    // Disconnected on purpose: listed with a reconnect, but not failing.
    let disconnected = w
        .app
        .client
        .delete(w.app.url(&format!("/api/integrations/{id}")))
        .bearer_auth(&w.tenant.key)
        .send()
        .await
        .unwrap();
    assert_eq!(disconnected.status(), 204);
    let (_, html) = page(&w, &cookie, "/").await;
    let failing = html.split(r#"id="failing""#).nth(1).unwrap_or_default();
    assert!(!failing.contains(&format!("{ANN}: ")), "{failing}");
    let mailboxes = html.split(r#"id="mailboxes""#).nth(1).unwrap();
    assert!(mailboxes.contains("Disconnected"), "{mailboxes}");
}

#[tokio::test]
async fn reconnecting_from_the_autodraft_page_comes_back_to_it() {
    let w = world().await;
    let (cookie, _) = session(&w, w.tenant.user, w.tenant.workspace).await;
    let id = w
        .connect(Consent::allow_only(
            domain::scopes::IntegrationType::Gmail
                .requested_scopes()
                .into_iter()
                .filter(|scope| *scope != domain::scopes::GMAIL_COMPOSE),
        ))
        .await["integration_id"]
        .clone();
    let (_, html) = page(&w, &cookie, &format!("/autodraft/{id}")).await;
    let back = format!("/api/integrations/{id}/reconnect?return_to=%2Fautodraft%2F{id}");
    assert!(html.contains(&back), "{html}");

    let to_google = w
        .app
        .client
        .get(w.app.url(&back))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(to_google.status(), 302);
    let consent = to_google.headers()["location"].to_str().unwrap().to_owned();
    let redirect = w.sandbox.approve(&consent, Consent::allow_all()).unwrap();
    let back_home = w.callback(&redirect, Some(&cookie)).await;
    assert!(
        back_home.starts_with(&format!("/autodraft/{id}?connected=gmail")),
        "{back_home}"
    );
    let (_, html) = page(&w, &cookie, &back_home).await;
    assert!(
        html.contains("Reconnected: auto-draft can use this connection again."),
        "{html}"
    );

    let refused = w
        .app
        .client
        .get(w.app.url(&format!(
            "/api/integrations/{id}/reconnect?return_to=https://evil.example"
        )))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 422);
    let problem: serde_json::Value = refused.json().await.unwrap();
    assert_eq!(problem["errors"][0]["field"], "return_to", "{problem}");
}
