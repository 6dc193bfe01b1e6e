//! The built-in connections page: where the OAuth callback comes back to,
//! explaining in words what is connected, what is missing and what to do.

mod common;

use common::google::world;
use common::ui::{page, post_form, session};
use sandbox::Consent;

#[tokio::test]
async fn connect_from_the_page_see_what_is_missing_then_disconnect() {
    let w = world().await;
    let (cookie, csrf) = session(&w, w.tenant.user, w.tenant.workspace).await;

    let signed_out = w.app.get("/integrations").await;
    assert_eq!(
        (
            signed_out.status().as_u16(),
            signed_out.headers()["location"].to_str().unwrap()
        ),
        (303, "/signin")
    );

    let (status, html) = page(&w, &cookie, "/integrations").await;
    assert_eq!(status, 200);
    assert!(
        html.contains("Nothing is connected yet") && html.contains("Connect Gmail"),
        "{html}"
    );

    // The button goes straight to Google's consent screen.
    let to_google = post_form(
        &w,
        &cookie,
        "/integrations/connect",
        &[("type", "gmail"), ("csrf", &csrf)],
    )
    .await;
    assert_eq!(to_google.status(), 303);
    let consent = to_google.headers()["location"].to_str().unwrap().to_owned();
    assert!(consent.starts_with(&w.sandbox_url), "{consent}");
    let forged = post_form(
        &w,
        &cookie,
        "/integrations/connect",
        &[("type", "gmail"), ("csrf", "forged")],
    )
    .await;
    assert_eq!(forged.status(), 403);

    // Consent without the compose scope; the callback lands on this page.
    let scopes: Vec<&str> = domain::scopes::IntegrationType::Gmail
        .requested_scopes()
        .into_iter()
        .filter(|scope| !scope.ends_with("gmail.compose"))
        .collect();
    let redirect = w
        .sandbox
        .approve(&consent, Consent::allow_only(scopes))
        .unwrap();
    let back = w
        .app
        .client
        .get(&redirect)
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    let location = back.headers()["location"].to_str().unwrap().to_owned();
    assert!(
        location.starts_with("/integrations?connected=gmail&integration_id="),
        "{location}"
    );
    let (status, html) = page(&w, &cookie, &location).await;
    assert_eq!(status, 200);
    assert!(html.contains("Gmail connected."), "{html}");
    assert!(
        html.contains("Connected, but missing permissions"),
        "{html}"
    );
    assert!(
        html.contains("create drafts (gmail.compose)"),
        "the missing permission in words: {html}"
    );
    assert!(html.contains("/reconnect"), "a reconnect button");

    // Another workspace cannot disconnect it.
    let id = location.rsplit('=').next().unwrap().to_owned();
    let other = w.app.bare_tenant("other").await;
    let (other_cookie, other_csrf) = session(&w, other.user, other.workspace).await;
    let foreign = post_form(
        &w,
        &other_cookie,
        &format!("/integrations/{id}/disconnect"),
        &[("csrf", &other_csrf)],
    )
    .await;
    assert_eq!(foreign.status(), 404);

    let stale = post_form(
        &w,
        &cookie,
        &format!("/integrations/{id}/disconnect"),
        &[("csrf", "stale")],
    )
    .await;
    assert_eq!(stale.status(), 403);
    let done = post_form(
        &w,
        &cookie,
        &format!("/integrations/{id}/disconnect"),
        &[("csrf", &csrf)],
    )
    .await;
    assert_eq!(
        (
            done.status().as_u16(),
            done.headers()["location"].to_str().unwrap()
        ),
        (303, "/integrations?disconnected=1")
    );
    let (_, html) = page(&w, &cookie, "/integrations?disconnected=1").await;
    assert!(
        html.contains("Disconnected. Mailwright no longer uses that account.")
            && html.contains("status-disconnected"),
        "{html}"
    );
}

#[tokio::test]
async fn a_failed_connection_is_explained_in_words() {
    let w = world().await;
    let (cookie, _) = session(&w, w.tenant.user, w.tenant.workspace).await;
    for (code, words) in [
        (
            "access_denied",
            "You cancelled on Google's or Microsoft's screen",
        ),
        ("state_expired", "longer than 10 minutes"),
        ("something_new", "The connection did not complete"),
    ] {
        let (_, html) = page(&w, &cookie, &format!("/integrations?error={code}")).await;
        assert!(html.contains(words), "{code}: {html}");
    }
}

#[tokio::test]
async fn the_autodraft_page_explains_a_disabled_switch_then_shows_new_drafts() {
    let w = world().await;
    let (cookie, csrf) = session(&w, w.tenant.user, w.tenant.workspace).await;
    let without_compose: Vec<&str> = domain::scopes::IntegrationType::Gmail
        .requested_scopes()
        .into_iter()
        .filter(|scope| *scope != domain::scopes::GMAIL_COMPOSE)
        .collect();
    let id = w.connect(Consent::allow_only(without_compose)).await["integration_id"].clone();
    let path = format!("/autodraft/{id}");

    let (status, html) = page(&w, &cookie, &path).await;
    assert_eq!(status, 200);
    assert!(html.contains(r#"id="autodraft-toggle" disabled"#), "{html}");
    assert!(
        html.contains("Auto-draft needs permission to create drafts"),
        "{html}"
    );
    assert!(html.contains(&format!("/api/integrations/{id}/reconnect")));
    let (_, connections) = page(&w, &cookie, "/integrations").await;
    assert!(
        connections.contains(&path),
        "the connections page links to it"
    );

    // Reconnect with everything, then switch on from the page.
    let id = w.connect(Consent::allow_all()).await["integration_id"].clone();
    let switched = post_form(
        &w,
        &cookie,
        &format!("/autodraft/{id}/switch"),
        &[("csrf", &csrf), ("enabled", "on")],
    )
    .await;
    assert_eq!(switched.status(), 303);
    let (_, html) = page(&w, &cookie, &format!("/autodraft/{id}?notice=on")).await;
    assert!(
        html.contains(r#"<strong id="autodraft-state">on</strong>"#),
        "{html}"
    );
    assert!(html.contains("No drafts yet."));

    let stale = post_form(
        &w,
        &cookie,
        &format!("/autodraft/{id}/switch"),
        &[("csrf", "wrong"), ("enabled", "off")],
    )
    .await;
    assert_eq!(stale.status(), 403, "a forged form changes nothing");

    w.sandbox
        .deliver(&sandbox::InboundMessage::new(
            "Bob Builder <bob@example.com>",
            common::google::ANN,
            "Lunch",
            "Could we meet for lunch on Friday?",
        ))
        .unwrap();
    store::testing::make_polls_due(&w.app.store).await;
    w.app.autodraft.poll_tick(store::now()).await.unwrap();
    w.app.worker.drain().await.unwrap();

    let (_, html) = page(&w, &cookie, &format!("/autodraft/{id}")).await;
    assert!(
        html.contains(r#"<strong id="drafts-created">1</strong>"#),
        "{html}"
    );
    assert!(
        html.contains(r#"<strong id="last-success">just now</strong>"#),
        "{html}"
    );
    // The recent drafts list says what each draft answers, what it says,
    // and where to open it.
    let recent = html
        .split(r#"id="recent-drafts""#)
        .nth(1)
        .expect("the recent drafts list");
    for shown in [
        "<strong>Lunch</strong>",
        "from Bob Builder &lt;bob@example.com&gt;",
        "scheduling",
        "built-in drafter",
        "https://mail.google.com/mail/?authuser=ann%40example.com#all/",
    ] {
        assert!(recent.contains(shown), "{shown} in {recent}");
    }
    assert!(
        recent.contains(r#"<p class="excerpt">"#),
        "the reply's start: {recent}"
    );
    let api = common::autodraft::drafts(&w, &id).await;
    assert_eq!(api[0]["subject"], "Lunch");
    assert_eq!(api[0]["from"], "Bob Builder <bob@example.com>");
    assert!(api[0]["reply_excerpt"].as_str().unwrap().len() > 10);

    // Redirect-after-post: the result rides to the page once, so a reload
    // neither runs the test again nor creates a second draft.
    w.sandbox
        .deliver(&sandbox::InboundMessage::new(
            "Bob Builder <bob@example.com>",
            common::google::ANN,
            "Friday",
            "Are you free on Friday afternoon for a call?",
        ))
        .unwrap();
    let tested = post_form(
        &w,
        &cookie,
        &format!("/autodraft/{id}/test"),
        &[("csrf", &csrf), ("create_draft", "on")],
    )
    .await;
    assert_eq!(tested.status(), 303);
    assert_eq!(
        tested.headers()["location"],
        format!("/autodraft/{id}#test-result")
    );
    let result_cookie = common::ui::set_cookie(&tested, "mw_test_result");
    let drafts_after_test = w.sandbox.drafts(common::google::ANN).unwrap().len();
    let (status, html) = page(&w, &format!("{cookie}; {result_cookie}"), &path).await;
    assert_eq!(status, 200);
    assert!(html.contains(r#"id="test-result""#), "{html}");
    assert!(html.contains("Created in Gmail as a draft."), "{html}");
    let (_, reloaded) = page(&w, &cookie, &path).await;
    assert!(!reloaded.contains(r#"id="test-result""#), "shown once");
    assert_eq!(
        w.sandbox.drafts(common::google::ANN).unwrap().len(),
        drafts_after_test,
        "the reload made no draft"
    );
}
