//! Connecting a mailbox by IMAP and SMTP against real servers (Dovecot and
//! an aiosmtpd submission server, `tests/mailservers`): both servers are
//! tried first, each way it can fail answers its own code and field, and
//! the password is stored sealed, never shown again.

mod common;

use common::mailservers::{ALICE, ALICE_PASSWORD, MailServers, NO_DRAFTS, NO_DRAFTS_PASSWORD};
use common::{TestApp, assert_problem, spawn_app_with};
use serde_json::{Value, json};

async fn post(app: &TestApp, key: &str, body: &Value) -> reqwest::Response {
    app.client
        .post(app.url("/api/integrations/imap"))
        .bearer_auth(key)
        .json(body)
        .send()
        .await
        .unwrap()
}

fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test]
async fn connecting_tries_both_servers_and_keeps_the_password_sealed() {
    let servers = MailServers::start();
    let env = servers.app_env();
    let env: Vec<(&str, String)> = env.iter().map(|(k, v)| (*k, v.clone())).collect();
    let app = spawn_app_with(&env).await;
    let tenant = app.bare_tenant("acme").await;

    let response = post(
        &app,
        &tenant.key,
        &servers.connect_body(ALICE, ALICE_PASSWORD),
    )
    .await;
    assert_eq!(response.status(), 201);
    let integration: Value = response.json().await.unwrap();
    assert_eq!(integration["provider"], "imap");
    assert_eq!(integration["type"], "imap");
    assert_eq!(integration["status"], "connected");
    assert_eq!(integration["email"], ALICE);
    assert_eq!(integration["token_source"], "password");
    assert_eq!(integration["granted_scopes"], json!([]));
    assert!(integration["reconnect_url"].is_null());
    assert!(!integration.to_string().contains(ALICE_PASSWORD));
    let id: domain::IntegrationId = integration["id"].as_str().unwrap().parse().unwrap();

    // Sealed at rest: the stored bytes are not the password.
    let tokens = app
        .store
        .tokens(tenant.workspace, id)
        .await
        .unwrap()
        .unwrap();
    assert!(
        !tokens
            .access_token
            .bytes
            .windows(ALICE_PASSWORD.len())
            .any(|window| window == ALICE_PASSWORD.as_bytes())
    );
    assert!(tokens.refresh_token.is_none());
    let servers_row = app.store.mail_servers(tenant.workspace, id).await.unwrap();
    assert_eq!(servers_row.imap.port, servers.port("imaps"));
    assert_eq!(servers_row.username, ALICE);

    // The same login again updates the same connection.
    let again: Value = post(
        &app,
        &tenant.key,
        &servers.connect_body(ALICE, ALICE_PASSWORD),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(again["id"], integration["id"]);
    let list: Value = app
        .get_as("/api/integrations", &tenant.key)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list["integrations"].as_array().unwrap().len(), 1);

    // Another workspace sees nothing of it, and cannot read its servers.
    let stranger = app.bare_tenant("stranger").await;
    let foreign = app
        .get_as(&format!("/api/integrations/{id}"), &stranger.key)
        .await;
    assert_problem(foreign, 404, "not_found").await;
    assert!(matches!(
        app.store.mail_servers(stranger.workspace, id).await,
        Err(store::StoreError::NotFound)
    ));

    // It is reconnected with its password (on the connections page, its
    // servers filled in), never through Google.
    let reconnect = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(app.url(&format!("/api/integrations/{id}/reconnect")))
        .bearer_auth(&tenant.key)
        .send()
        .await
        .unwrap();
    assert_eq!(reconnect.status(), 302);
    assert_eq!(
        reconnect.headers()["location"].to_str().unwrap(),
        format!("/integrations?reconnect={id}#connect-imap")
    );

    // Disconnecting deletes the password (nobody to revoke it at).
    let disconnected = app
        .client
        .delete(app.url(&format!("/api/integrations/{id}")))
        .bearer_auth(&tenant.key)
        .send()
        .await
        .unwrap();
    assert!(
        disconnected.status().is_success(),
        "{}",
        disconnected.status()
    );
    assert!(
        app.store
            .tokens(tenant.workspace, id)
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn each_way_a_server_can_refuse_has_its_own_code_and_field() {
    let mut servers = MailServers::start();
    let env = servers.app_env();
    let env: Vec<(&str, String)> = env.iter().map(|(k, v)| (*k, v.clone())).collect();
    let app = spawn_app_with(&env).await;
    let tenant = app.bare_tenant("acme").await;
    let refused = |response, code: &'static str, field: &'static str| async move {
        let body = assert_problem(response, 422, code).await;
        assert_eq!(body["errors"][0]["field"], field, "{body}");
        body
    };

    let body = refused(
        post(&app, &tenant.key, &servers.connect_body(ALICE, "wrong")).await,
        "auth_failed",
        "password",
    )
    .await;
    assert!(
        body["detail"].as_str().unwrap().contains("app password"),
        "{body}"
    );

    let mut mismatch = servers.connect_body(ALICE, ALICE_PASSWORD);
    mismatch["imap"]["port"] = json!(servers.port("imaps_wrong_cert"));
    let body = refused(
        post(&app, &tenant.key, &mismatch).await,
        "tls_failed",
        "imap",
    )
    .await;
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("certificate mismatch"),
        "{body}"
    );

    let mut not_tls = servers.connect_body(ALICE, ALICE_PASSWORD);
    not_tls["imap"]["port"] = json!(servers.port("imap_starttls"));
    refused(
        post(&app, &tenant.key, &not_tls).await,
        "tls_failed",
        "imap",
    )
    .await;

    let mut starttls = servers.connect_body(ALICE, ALICE_PASSWORD);
    starttls["imap"] =
        json!({"host": "localhost", "port": servers.port("imap_starttls"), "security": "starttls"});
    starttls["smtp"] =
        json!({"host": "localhost", "port": servers.port("smtps"), "security": "tls"});
    assert_eq!(post(&app, &tenant.key, &starttls).await.status(), 201);

    let mut nobody_home = servers.connect_body(ALICE, ALICE_PASSWORD);
    nobody_home["imap"]["port"] = json!(closed_port());
    refused(
        post(&app, &tenant.key, &nobody_home).await,
        "unreachable",
        "imap",
    )
    .await;

    let mut no_smtp = servers.connect_body(ALICE, ALICE_PASSWORD);
    no_smtp["smtp"]["port"] = json!(closed_port());
    refused(
        post(&app, &tenant.key, &no_smtp).await,
        "unreachable",
        "smtp",
    )
    .await;

    refused(
        post(
            &app,
            &tenant.key,
            &servers.connect_body(NO_DRAFTS, NO_DRAFTS_PASSWORD),
        )
        .await,
        "no_drafts_folder",
        "imap",
    )
    .await;

    // A password changed on the server is refused by SMTP too.
    servers.command(&format!("password {ALICE} changed-secret"));
    let body = refused(
        post(
            &app,
            &tenant.key,
            &servers.connect_body(ALICE, ALICE_PASSWORD),
        )
        .await,
        "auth_failed",
        "password",
    )
    .await;
    assert!(body["detail"].as_str().unwrap().contains("IMAP"), "{body}");

    // Input that is wrong before any server is asked.
    let mut bad = servers.connect_body(ALICE, "line\nbreak");
    bad["imap"]["port"] = json!(0);
    bad["smtp"]["security"] = json!("none");
    bad["email"] = json!("not an address");
    let body = assert_problem(
        post(&app, &tenant.key, &bad).await,
        422,
        "validation_failed",
    )
    .await;
    let fields: Vec<&str> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|error| error["field"].as_str().unwrap())
        .collect();
    assert_eq!(
        fields,
        ["email", "imap.port", "smtp.security", "password"],
        "{body}"
    );
    assert_eq!(
        app.store
            .integrations(tenant.workspace)
            .await
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test]
async fn an_untrusted_certificate_and_a_private_address_are_refused_by_default() {
    let servers = MailServers::start();
    // No SSL_CERT_FILE: the test CA is nobody's.
    let app = spawn_app_with(&[(
        "MAILWRIGHT_OUTBOUND_ALLOW_PRIVATE_NETWORKS",
        "true".to_owned(),
    )])
    .await;
    let tenant = app.bare_tenant("acme").await;
    let body = assert_problem(
        post(
            &app,
            &tenant.key,
            &servers.connect_body(ALICE, ALICE_PASSWORD),
        )
        .await,
        422,
        "tls_failed",
    )
    .await;
    assert!(
        body["detail"].as_str().unwrap().contains("SSL_CERT_FILE"),
        "{body}"
    );

    // Private networks are not for tenants to reach unless the operator says.
    let app = spawn_app_with(&[("SSL_CERT_FILE", servers.ca())]).await;
    let tenant = app.bare_tenant("acme").await;
    let body = assert_problem(
        post(
            &app,
            &tenant.key,
            &servers.connect_body(ALICE, ALICE_PASSWORD),
        )
        .await,
        422,
        "unreachable",
    )
    .await;
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("MAILWRIGHT_OUTBOUND_ALLOW_PRIVATE_NETWORKS"),
        "{body}"
    );
}

#[tokio::test]
async fn the_connections_page_connects_a_mailbox_by_password_beside_gmail() {
    use common::ui::{page, post_form, session};
    let mut servers = MailServers::start();
    let w = common::google::world_with(&servers.app_env()).await;
    let gmail = w.connect(sandbox::Consent::allow_all()).await["integration_id"].clone();
    let (cookie, csrf) = session(&w, w.tenant.user, w.tenant.workspace).await;
    let (status, html) = page(&w, &cookie, "/integrations").await;
    assert_eq!(status, 200);
    assert!(html.contains("Connect another mailbox (IMAP)"), "{html}");

    let imap_port = servers.port("imaps").to_string();
    let smtp_port = servers.port("submission_starttls").to_string();
    let form = |password: &'static str| {
        vec![
            ("csrf", csrf.clone()),
            ("email", ALICE.to_owned()),
            ("imap_host", "localhost".to_owned()),
            ("imap_port", imap_port.clone()),
            ("imap_security", "tls".to_owned()),
            ("smtp_host", "localhost".to_owned()),
            ("smtp_port", smtp_port.clone()),
            ("smtp_security", "starttls".to_owned()),
            ("username", ALICE.to_owned()),
            ("password", password.to_owned()),
        ]
    };
    let wrong = form("not-the-password");
    let wrong: Vec<(&str, &str)> = wrong.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let refused = post_form(&w, &cookie, "/integrations/imap", &wrong).await;
    assert_eq!(refused.status(), 422);
    let html = common::ui::decoded(refused.text().await.unwrap());
    assert!(html.contains("refused the user name or password"), "{html}");
    assert!(
        html.contains("value=\"localhost\""),
        "what was typed stays: {html}"
    );
    assert!(
        !html.contains("not-the-password"),
        "the password is never shown"
    );

    let right = form(ALICE_PASSWORD);
    let right: Vec<(&str, &str)> = right.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let connected = post_form(&w, &cookie, "/integrations/imap", &right).await;
    assert_eq!(connected.status(), 303);
    assert_eq!(
        connected.headers()["location"].to_str().unwrap(),
        "/integrations?connected=imap"
    );
    let (_, html) = page(&w, &cookie, "/integrations?connected=imap").await;
    assert!(html.contains("The mailbox connected."), "{html}");
    assert!(html.contains(&format!("IMAP mailbox: {ALICE}")), "{html}");
    assert!(
        html.contains(&format!("Gmail: {}", common::google::ANN)),
        "{html}"
    );
    assert!(html.contains(&format!("/autodraft/{gmail}")));
    let list: Value = w
        .app
        .get_as("/api/integrations", &w.tenant.key)
        .await
        .json()
        .await
        .unwrap();
    let imap = list["integrations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|integration| integration["provider"] == "imap")
        .unwrap()
        .clone();
    let id = imap["id"].as_str().unwrap().to_owned();
    assert!(html.contains(&format!("/autodraft/{id}")), "{html}");
    let (status, _) = page(&w, &cookie, &format!("/autodraft/{id}")).await;
    assert_eq!(status, 200);

    // The server stops taking the password: the daily check finds it, and
    // Reconnect opens the form with the servers filled in.
    servers.command(&format!("password {ALICE} changed-again"));
    let id: domain::IntegrationId = id.parse().unwrap();
    assert!(matches!(
        w.app.vault.check(w.tenant.workspace, id).await,
        Err(engine::vault::VaultError::NeedsReauth)
    ));
    let (_, html) = page(&w, &cookie, "/integrations").await;
    assert!(
        html.contains(&format!("/api/integrations/{id}/reconnect")),
        "{html}"
    );
    let (status, html) = page(&w, &cookie, &format!("/integrations?reconnect={id}")).await;
    assert_eq!(status, 200);
    assert!(
        html.contains("Enter the mailbox's current password"),
        "{html}"
    );
    assert!(html.contains(&format!("value=\"{imap_port}\"")), "{html}");
}

#[tokio::test]
async fn connects_beyond_the_servers_share_wait_then_are_refused_as_busy() {
    let servers = MailServers::start();
    let app = spawn_app_with(&servers.app_env()).await;
    let tenant = app.bare_tenant("acme").await;
    // A server that takes connections and never greets: each connect to it
    // holds its turn until its 30 s deadline.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent_port = silent.local_addr().unwrap().port();
    let accepted = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = accepted.clone();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = silent.accept().await {
            held.push(socket);
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    });
    let mut stuck = servers.connect_body(ALICE, ALICE_PASSWORD);
    stuck["imap"] = json!({"host": "localhost", "port": silent_port, "security": "starttls"});
    let waiting: Vec<_> = (0..engine::mail_servers::CONCURRENT_CONNECTS)
        .map(|_| {
            let (client, url, key, body) = (
                app.client.clone(),
                app.url("/api/integrations/imap"),
                tenant.key.clone(),
                stuck.clone(),
            );
            tokio::spawn(async move { client.post(url).bearer_auth(key).json(&body).send().await })
        })
        .collect();
    // Every turn taken: the silent server holds them all.
    let give_up = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while accepted.load(std::sync::atomic::Ordering::SeqCst)
        < engine::mail_servers::CONCURRENT_CONNECTS
    {
        assert!(
            std::time::Instant::now() < give_up,
            "the connects never reached the server"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let started = std::time::Instant::now();
    let answer = post(
        &app,
        &tenant.key,
        &servers.connect_body(ALICE, ALICE_PASSWORD),
    )
    .await;
    assert!(
        started.elapsed() >= std::time::Duration::from_secs(9),
        "it waited for a turn"
    );
    let problem = assert_problem(answer, 429, "rate_limited").await;
    assert!(
        problem["detail"].as_str().unwrap().contains("try again"),
        "{problem}"
    );
    for request in waiting {
        request.abort();
    }
}

#[tokio::test]
async fn a_workspace_connecting_too_often_is_told_to_wait() {
    let servers = MailServers::start();
    let app = spawn_app_with(&servers.app_env()).await;
    let tenant = app.bare_tenant("acme").await;
    let mut nobody_home = servers.connect_body(ALICE, ALICE_PASSWORD);
    nobody_home["imap"]["port"] = json!(closed_port());
    for _ in 0..engine::mail_servers::CONNECTS_PER_WINDOW {
        assert_problem(
            post(&app, &tenant.key, &nobody_home).await,
            422,
            "unreachable",
        )
        .await;
    }
    let problem = assert_problem(
        post(&app, &tenant.key, &nobody_home).await,
        429,
        "rate_limited",
    )
    .await;
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("wait a few minutes"),
        "{problem}"
    );
    // Another workspace is not held back.
    let other = app.bare_tenant("other").await;
    assert_problem(
        post(&app, &other.key, &nobody_home).await,
        422,
        "unreachable",
    )
    .await;
}
