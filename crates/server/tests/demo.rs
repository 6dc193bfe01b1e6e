//! `mailwright demo`'s own pages: the one-time sign-in link, the in-process
//! Google sandbox, and the sandbox inbox where a dropped email gets its draft.

mod common;

use std::sync::Arc;

use mailwright::Application;
use mailwright::demo::{self, Demo};
use sandbox::{Consent, Sandbox};
use store::testing::TestDatabase;

struct DemoApp {
    url: String,
    client: reqwest::Client,
    sandbox: Sandbox,
    token: String,
    worker: engine::worker::Worker,
    _db: TestDatabase,
}

async fn demo_app() -> DemoApp {
    demo_app_with(Err("not in this test".into()), 0).await
}

/// The demo with `local_mailbox` and `workers` background workers (with
/// any, the poller and IMAP IDLE run too).
async fn demo_app_with(
    local_mailbox: Result<mailwright::demo_mailbox::LocalMailbox, String>,
    workers: usize,
) -> DemoApp {
    let db = TestDatabase::new().await;
    let store = db.connect().await;
    store.migrate().await.unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    drop(listener);
    let url = format!("http://{address}");
    let mut settings = demo::sandbox_settings(&url);
    settings.extend([
        ("MAILWRIGHT_LISTEN", address.to_string()),
        ("MAILWRIGHT_PUBLIC_URL", url.clone()),
        (
            "MAILWRIGHT_OUTBOUND_ALLOW_PRIVATE_NETWORKS",
            "true".to_owned(),
        ),
    ]);
    if let Ok(mailbox) = &local_mailbox {
        settings.push(("SSL_CERT_FILE", mailbox.ca().display().to_string()));
    }
    let config = common::test_config(&db, &settings);
    let sandbox = demo::sandbox(&config);
    let email = domain::EmailAddress::parse(demo::USER_EMAIL).unwrap();
    let (user, workspace) = mailwright::auth::accounts::create_local_user(
        &store,
        &email,
        "a-long-demo-password",
        Some("Demo"),
    )
    .await
    .unwrap();
    sandbox.set_push_subscription(demo::push_subscription(&url));
    let (demo, token) = Demo::new(sandbox.clone(), user.id, workspace.id);
    let demo = demo.with_local_mailbox(local_mailbox);
    let application = Application::build_demo(config, store, Arc::new(demo))
        .await
        .unwrap()
        .with_background_workers(workers);
    let worker = application.worker();
    tokio::spawn(application.run_until(std::future::pending()));
    DemoApp {
        url,
        client: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
        sandbox,
        token,
        worker,
        _db: db,
    }
}

/// Switch auto-draft on from its page's form.
async fn switch_autodraft_on(app: &DemoApp, cookie: &str, csrf: &str, integration: &str) {
    let on = app
        .client
        .post(format!("{}/autodraft/{integration}/switch", app.url))
        .header("cookie", cookie)
        .form(&[("csrf", csrf), ("enabled", "on")])
        .send()
        .await
        .unwrap();
    assert_eq!(on.status(), 303);
}

fn location(response: &reqwest::Response) -> String {
    response.headers()["location"].to_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_visitor_signs_in_connects_the_sandbox_mailbox_and_sees_a_draft_appear() {
    let app = demo_app().await;
    let get = |path: &str, cookie: &str| {
        app.client
            .get(format!("{}{path}", app.url))
            .header("cookie", cookie.to_owned())
            .send()
    };

    let wrong = get("/demo/signin?token=nope", "").await.unwrap();
    assert_eq!(wrong.status(), 403);
    let cookie = demo_session(&app).await;
    // Signed out, in another browser or after a reload: the link works
    // again for the demo's lifetime (its account has no password).
    let again = get(&format!("/demo/signin?token={}", app.token), "")
        .await
        .unwrap();
    assert_eq!(again.status(), 303, "the link works again");

    // The page's CSRF token, then Connect Gmail through the mounted sandbox.
    let page = get("/integrations", &cookie)
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = page
        .split(r#"name="csrf" value=""#)
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap()
        .to_owned();
    let connect = app
        .client
        .post(format!("{}/integrations/connect", app.url))
        .header("cookie", &cookie)
        .form(&[("csrf", csrf.as_str()), ("type", "gmail")])
        .send()
        .await
        .unwrap();
    let consent = location(&connect);
    assert!(
        consent.starts_with(&format!("{}/sandbox/google/o/oauth2/v2/auth?", app.url)),
        "{consent}"
    );
    let consent_page = get(consent.trim_start_matches(&app.url), &cookie)
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        consent_page.contains("Sandbox"),
        "the sandbox says what it is"
    );
    let callback = app.sandbox.approve(&consent, Consent::allow_all()).unwrap();
    let back = get(callback.trim_start_matches(&app.url), &cookie)
        .await
        .unwrap();
    let back = location(&back);
    assert!(back.contains("connected=gmail"), "{back}");
    let integration = back
        .split("integration_id=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap()
        .to_owned();

    switch_autodraft_on(&app, &cookie, &csrf, &integration).await;

    let inbox = get("/sandbox/inbox", &cookie)
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(inbox.contains(r#"<span class="badge">Sandbox</span>"#));
    let bad = app
        .client
        .post(format!("{}/sandbox/inbox", app.url))
        .header("cookie", &cookie)
        .form(&[
            ("csrf", csrf.as_str()),
            ("from", "not an address"),
            ("subject", "Hi"),
            ("text", ""),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 422);
    let bad = bad.text().await.unwrap();
    assert!(
        bad.contains("From must be an address") && bad.contains("Message is required"),
        "field-level errors: {bad}"
    );

    let delivered = app
        .client
        .post(format!("{}/sandbox/inbox", app.url))
        .header("cookie", &cookie)
        .form(&[
            ("csrf", csrf.as_str()),
            ("from", "Alex Sender <alex@example.com>"),
            ("subject", "Meeting next week"),
            ("text", "Could we meet on Tuesday at 10?"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(delivered.status(), 303);
    // The sandbox pushes (signed, as Pub/Sub would); the push queues a
    // sync, and a worker drafts it.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let inbox = loop {
        app.worker.drain().await.unwrap();
        let inbox = get("/sandbox/inbox", &cookie)
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if inbox.contains("Draft in this conversation") {
            break inbox;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no draft; pushes: {:?}\n{inbox}",
            app.sandbox.push_deliveries()
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    assert!(inbox.contains("Re: Meeting next week"), "{inbox}");
    let pushes = app.sandbox.push_deliveries();
    assert!(
        pushes.iter().any(|push| push.status == Some(200)),
        "found through the signed push: {pushes:?}"
    );

    // The sandbox's requests are counted under their own routes.
    let metrics = app
        .client
        .get(format!("{}/metrics", app.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(r#"route="/sandbox/google/token""#),
        "{metrics}"
    );
    assert!(
        !metrics
            .lines()
            .any(|line| line.contains(r#"route="unmatched""#) && line.contains(r#"status="200""#)),
        "{metrics}"
    );
}

#[tokio::test]
async fn outside_demo_mode_the_demo_pages_do_not_exist() {
    let app = common::spawn_app().await;
    assert_eq!(app.get("/sandbox/inbox").await.status(), 404);
    // Posted by someone signed out: not found either, not "sign in first".
    let posted = app
        .client
        .post(format!("{}/sandbox/inbox", app.address))
        .form(&[
            ("csrf", "x"),
            ("from", "a@b.c"),
            ("subject", "s"),
            ("text", "t"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(posted.status(), 404);
    assert_eq!(app.get("/demo/signin?token=x").await.status(), 404);
    assert_eq!(
        app.get("/sandbox/google/o/oauth2/v2/auth").await.status(),
        404
    );
}

/// The demo's session cookie, signed in through its link.
async fn demo_session(app: &DemoApp) -> String {
    let signed_in = app
        .client
        .get(format!("{}/demo/signin?token={}", app.url, app.token))
        .send()
        .await
        .unwrap();
    assert_eq!(signed_in.status(), 303);
    signed_in
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|value| {
            value
                .to_str()
                .unwrap()
                .split(';')
                .next()
                .unwrap()
                .to_owned()
        })
        .find(|pair| pair.starts_with("mw_session="))
        .expect("a session cookie")
}

/// The value of the form field `name` in `html` (its first one).
fn field(html: &str, name: &str) -> String {
    html.split(&format!(r#"name="{name}" value=""#))
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| panic!("no field {name}"))
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_local_imap_mailbox_connects_in_one_click_and_gets_a_draft() {
    mailwright::app::install_crypto_provider();
    let mailbox = mailwright::demo_mailbox::LocalMailbox::start()
        .await
        .expect("Dovecot runs here (scripts/install-test-tools.sh installs it)");
    let app = demo_app_with(Ok(mailbox), 1).await;
    let cookie = demo_session(&app).await;
    let get = |path: String| {
        app.client
            .get(format!("{}{path}", app.url))
            .header("cookie", cookie.clone())
            .send()
    };
    let page = get("/integrations".into())
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("Connect the local IMAP mailbox"), "{page}");
    // The one-click form: its hidden fields, as the browser would send them.
    let form = page
        .split(r#"id="demo-imap">"#)
        .nth(1)
        .and_then(|rest| rest.split("</form>").next())
        .unwrap()
        .to_owned();
    let names = [
        "csrf",
        "email",
        "imap_host",
        "imap_port",
        "imap_security",
        "smtp_host",
        "smtp_port",
        "smtp_security",
        "username",
        "password",
    ];
    let values: Vec<(&str, String)> = names
        .iter()
        .map(|name| (*name, field(&form, name)))
        .collect();
    let connected = app
        .client
        .post(format!("{}/integrations/imap", app.url))
        .header("cookie", &cookie)
        .form(&values)
        .send()
        .await
        .unwrap();
    assert_eq!(
        location(&connected),
        "/integrations?connected=imap",
        "{}",
        connected.text().await.unwrap_or_default()
    );
    let page = get("/integrations".into())
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
        .replace("&#x2f;", "/");
    let integration = page
        .split("/autodraft/")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| panic!("no auto-draft link: {page}"))
        .to_owned();
    let csrf = field(&page, "csrf");
    switch_autodraft_on(&app, &cookie, &csrf, &integration).await;

    let delivered = app
        .client
        .post(format!("{}/sandbox/inbox", app.url))
        .header("cookie", &cookie)
        .form(&[
            ("csrf", csrf.as_str()),
            ("to", "imap"),
            ("from", "Alex Sender <alex@example.com>"),
            ("subject", "Lunch next week?"),
            ("text", "Are you free for lunch next week?"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(location(&delivered), "/sandbox/inbox?delivered=imap");

    // IMAP IDLE (or the poll) finds it; the draft is listed on its page.
    let give_up = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let page = get(format!("/autodraft/{integration}"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if page.contains("Lunch next week?") {
            let found = page.split("autodraft-watch").nth(1).unwrap_or_default();
            assert!(
                page.contains("IMAP IDLE"),
                "{}",
                &found[..found.len().min(600)]
            );
            break;
        }
        assert!(std::time::Instant::now() < give_up, "no draft: {page}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn connect_outlook_on_the_emulated_microsoft_screen() {
    let app = demo_app().await;
    let cookie = demo_session(&app).await;
    let page = app
        .client
        .get(format!("{}/integrations", app.url))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains(r#"id="connect-outlook">"#), "enabled: {page}");
    let csrf = field(&page, "csrf");
    let connect = app
        .client
        .post(format!("{}/integrations/connect", app.url))
        .header("cookie", &cookie)
        .form(&[("csrf", csrf.as_str()), ("type", "outlook")])
        .send()
        .await
        .unwrap();
    let consent = location(&connect);
    assert!(
        consent.starts_with(&format!(
            "{}/sandbox/google/microsoft/common/oauth2/v2.0/authorize?",
            app.url
        )),
        "{consent}"
    );
    // Microsoft's (emulated) screen, answered as a browser would: the form
    // posts back to the same address with every permission ticked.
    let screen = app
        .client
        .get(&consent)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(screen.contains("Microsoft emulator"), "{screen}");
    assert!(
        screen.contains(demo::OUTLOOK_MAILBOX),
        "the demo mailbox is offered"
    );
    let request = field(&screen, "request").replace("&amp;", "&");
    let mut form = vec![
        ("request".to_owned(), request),
        ("email".to_owned(), demo::OUTLOOK_MAILBOX.to_owned()),
        ("decision".to_owned(), "accept".to_owned()),
    ];
    for scope in domain::scopes::IntegrationType::Outlook.requested_scopes() {
        form.push(("granted_scope".to_owned(), scope.to_owned()));
    }
    let accepted = app.client.post(&consent).form(&form).send().await.unwrap();
    let callback = location(&accepted);
    let back = app
        .client
        .get(&callback)
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    let back = location(&back);
    assert!(back.contains("connected=outlook"), "{back}");
    let page = app
        .client
        .get(format!("{}/integrations", app.url))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("Outlook") && page.contains(demo::OUTLOOK_MAILBOX),
        "{page}"
    );
}
