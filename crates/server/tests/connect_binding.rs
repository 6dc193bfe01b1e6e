//! Who may finish a connection (issue "Abuse-proof", finding 6; decision
//! 0013). A workspace that sends its connect link to a stranger does not get
//! the stranger's mailbox: the stranger is shown which workspace asks for
//! which address, and nothing is stored unless they confirm. A connection
//! started in the web UI finishes only in that signed-in browser.

mod common;

use std::collections::HashMap;

use common::google::{World, outcome, world};
use common::ui::{decoded, post_form, session};
use sandbox::Consent;
use serde_json::json;

const STRANGER: &str = "stranger@example.com";

/// Nothing of a connection is stored: no integration, no token.
async fn nothing_stored(w: &World) {
    assert_eq!(w.rows().await, 0, "no integration");
    assert!(
        w.app.store.token_key_ids().await.unwrap().is_empty(),
        "no token"
    );
}

/// The confirmation form's hidden field.
fn confirmation_of(html: &str) -> String {
    html.split(r#"name="confirmation" value=""#)
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("the confirmation page carries its form")
        .to_owned()
}

async fn answer(w: &World, confirmation: &str, decision: &str) -> HashMap<String, String> {
    let answered = w
        .app
        .client
        .post(w.app.url("/connect/confirm"))
        .form(&[("confirmation", confirmation), ("decision", decision)])
        .send()
        .await
        .unwrap();
    assert_eq!(answered.status(), 302);
    outcome(answered.headers()["location"].to_str().unwrap())
}

/// The stranger's browser after Google's consent screen: the page it shows.
async fn stranger_consents(w: &World) -> String {
    let url = w.authorization_url(json!({"type": "gmail"})).await;
    let redirect = w
        .sandbox
        .approve(&url, Consent::allow_all().as_account(STRANGER))
        .unwrap();
    let page = w.app.client.get(&redirect).send().await.unwrap();
    assert_eq!(page.status(), 200, "a page, not a redirect to `connected`");
    decoded(page.text().await.unwrap())
}

#[tokio::test]
async fn a_stranger_finishing_a_link_sent_by_a_workspace_is_asked_and_nothing_is_stored_unless_they_confirm()
 {
    let w = world().await;
    w.sandbox.create_account(STRANGER, "A Stranger");

    let page = stranger_consents(&w).await;
    assert!(page.contains(STRANGER), "the address: {page}");
    assert!(page.contains("acme"), "the workspace asking: {page}");
    assert!(page.contains("owner@acme.example"), "who asked: {page}");
    nothing_stored(&w).await;

    // They did not ask for this: cancel, and nothing is connected; the
    // grant is given back to Google.
    let revoked_before = w.sandbox.call_count("oauth.revoke");
    let cancelled = answer(&w, &confirmation_of(&page), "cancel").await;
    assert_eq!(cancelled["error"], "access_denied");
    nothing_stored(&w).await;
    assert_eq!(w.sandbox.call_count("oauth.revoke"), revoked_before + 1);

    // A forged or altered form connects nothing either.
    let mut forged = confirmation_of(&stranger_consents(&w).await);
    forged.replace_range(forged.len() - 4.., "AAAA");
    assert_eq!(
        answer(&w, &forged, "confirm").await["error"],
        "state_invalid"
    );
    nothing_stored(&w).await;

    // Someone who does want it confirms: connected to that workspace.
    let page = stranger_consents(&w).await;
    let connected = answer(&w, &confirmation_of(&page), "confirm").await;
    assert_eq!(connected["connected"], "gmail");
    let integration = w.integration(&connected["integration_id"]).await;
    assert_eq!(integration["email"], STRANGER);
    assert_eq!(integration["status"], "connected");
}

#[tokio::test]
async fn a_connection_started_in_the_web_ui_finishes_only_in_that_signed_in_browser() {
    let w = world().await;
    let (cookie, csrf) = session(&w, w.tenant.user, w.tenant.workspace).await;
    let start = || async {
        let started = post_form(
            &w,
            &cookie,
            "/integrations/connect",
            &[("csrf", &csrf), ("type", "gmail")],
        )
        .await;
        assert!(started.status().is_redirection());
        let google = started.headers()["location"].to_str().unwrap().to_owned();
        w.sandbox.approve(&google, Consent::allow_all()).unwrap()
    };

    // Another browser (no session) cannot finish it, not even by confirming.
    let redirect = start().await;
    let elsewhere = w.app.client.get(&redirect).send().await.unwrap();
    assert_eq!(elsewhere.status(), 302);
    let location = elsewhere.headers()["location"].to_str().unwrap();
    assert_eq!(outcome(location)["error"], "state_invalid");
    nothing_stored(&w).await;

    // The browser that started it finishes it at once.
    let redirect = start().await;
    let location = w.callback(&redirect, Some(&cookie)).await;
    assert_eq!(outcome(&location)["connected"], "gmail");
    assert_eq!(w.rows().await, 1);
}

/// An API client's person who is signed in to Mailwright as that same user
/// (e.g. testing from the UI's own browser) is not asked again.
#[tokio::test]
async fn an_api_started_connection_finished_by_its_signed_in_starter_needs_no_confirmation() {
    let w = world().await;
    let (cookie, _) = session(&w, w.tenant.user, w.tenant.workspace).await;
    let url = w.authorization_url(json!({"type": "gmail"})).await;
    let redirect = w.sandbox.approve(&url, Consent::allow_all()).unwrap();
    let location = w.callback(&redirect, Some(&cookie)).await;
    assert_eq!(outcome(&location)["connected"], "gmail");
}
