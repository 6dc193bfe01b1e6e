//! The workflow pages and the settings page: create a workflow with the form,
//! run it, read the run; field errors next to their fields; API keys made,
//! shown once, used and revoked; the system email outbox.

mod common;

use common::google::{World, world};
use common::ui::{decoded, page, post_form, session};
use sandbox::Consent;

const BOB: &str = "bob@example.com";

fn location(answer: &reqwest::Response) -> String {
    answer.headers()["location"].to_str().unwrap().to_owned()
}

/// Text between `start` and the next `end` after it.
fn between<'a>(html: &'a str, start: &str, end: &str) -> &'a str {
    let from = html
        .find(start)
        .unwrap_or_else(|| panic!("{start} in {html}"))
        + start.len();
    let to = html[from..].find(end).unwrap() + from;
    &html[from..to]
}

/// Run queued jobs (skipping retry backoff) until the run page shows an end.
async fn finish(w: &World, cookie: &str, run_page: &str) -> String {
    for _ in 0..20 {
        store::testing::make_jobs_due(&w.app.store).await;
        w.app.worker.drain().await.unwrap();
        let (_, html) = page(w, cookie, run_page).await;
        let status = between(&html, r#"id="run-status""#, "</strong>");
        if status.ends_with(">succeeded") || status.ends_with(">failed") {
            return html;
        }
    }
    panic!("the run did not end");
}

#[tokio::test]
async fn a_workflow_made_with_the_form_runs_and_its_email_arrives() {
    let w = world().await;
    w.sandbox.create_account(BOB, "Bob Builder");
    let integration = w.connect(Consent::allow_all()).await["integration_id"].clone();
    let (cookie, csrf) = session(&w, w.tenant.user, w.tenant.workspace).await;

    for path in [
        "/workflows",
        "/settings",
        &format!("/workflows/{}", uuid::Uuid::now_v7()),
    ] {
        let signed_out = w.app.get(path).await;
        assert_eq!(
            (signed_out.status().as_u16(), location(&signed_out)),
            (303, "/signin".to_owned()),
            "{path}"
        );
    }

    let (status, html) = page(&w, &cookie, "/workflows").await;
    assert_eq!(status, 200);
    assert!(
        html.contains(r#"id="workflow-name""#) && html.contains("No workflows yet"),
        "{html}"
    );
    assert!(
        html.contains(&format!(r#"<option value="{integration}" selected>"#)),
        "the Gmail connection is offered: {html}"
    );
    assert!(
        html.contains(r#"<a href="/workflows">Workflows</a> · <a href="/settings">Settings</a>"#)
    );

    let form = [
        ("csrf", csrf.as_str()),
        ("name", "Shipping <notice>"),
        ("enabled", "on"),
        ("trigger", "manual"),
        ("cron", ""),
        ("steps[0].action", "gmail.send_email"),
        ("steps[0].integration_id", &integration),
        ("steps[0].to", "Bob Builder <{{ input.email }}>"),
        ("steps[0].subject", "Order {{ input.order }} shipped"),
        (
            "steps[0].body",
            "Hello {{ input.name }},\r\nit is on its way.",
        ),
    ];
    let mut forged = form;
    forged[0].1 = "forged";
    assert_eq!(
        post_form(&w, &cookie, "/workflows", &forged).await.status(),
        403
    );
    let created = post_form(&w, &cookie, "/workflows", &form).await;
    assert_eq!(created.status(), 303);
    let workflow_page = location(&created);
    let id = between(&workflow_page, "/workflows/", "?").to_owned();
    assert_eq!(workflow_page, format!("/workflows/{id}?notice=created"));

    // Stored as the API would store it.
    let stored: serde_json::Value = w
        .app
        .get_as(&format!("/api/workflows/{id}"), &w.tenant.key)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        stored["steps"][0]["body"], "Hello {{ input.name }},\nit is on its way.",
        "{stored}"
    );
    assert_eq!(
        stored["steps"][0]["to"][0],
        "Bob Builder <{{ input.email }}>"
    );

    let (_, list) = page(&w, &cookie, "/workflows").await;
    assert!(
        list.contains(&format!(
            r#"<a href="/workflows/{id}"><strong>Shipping &lt;notice&gt;</strong></a>"#
        )),
        "listed, escaped: {list}"
    );
    assert!(list.contains("Manual · enabled"), "{list}");

    let (status, html) = page(&w, &cookie, &workflow_page).await;
    assert_eq!(status, 200);
    assert!(html.contains("Workflow created."), "{html}");
    assert!(html.contains(r#"id="run-button""#) && html.contains("No runs yet."));
    assert!(
        between(&html, r#"id="run-input""#, "</textarea>")
            .contains("&quot;email&quot;: &quot;&quot;"),
        "the run form starts with the inputs the templates use: {html}"
    );

    let input = r#"{"email": "bob@example.com", "name": "Bob", "order": "A-17"}"#;
    let refused = post_form(
        &w,
        &cookie,
        &format!("/workflows/{id}/run"),
        &[("csrf", "forged"), ("input", input)],
    )
    .await;
    assert_eq!(refused.status(), 403);
    let not_json = post_form(
        &w,
        &cookie,
        &format!("/workflows/{id}/run"),
        &[("csrf", &csrf), ("input", "{nope")],
    )
    .await;
    assert_eq!(not_json.status(), 422);
    let html = decoded(not_json.text().await.unwrap());
    assert!(
        between(&html, r#"id="run-input""#, r#"id="run-button""#).contains("The input is not JSON"),
        "{html}"
    );

    // The form's own pre-fill (empty values) is refused before any run, in
    // the form's words.
    let prefilled = post_form(
        &w,
        &cookie,
        &format!("/workflows/{id}/run"),
        &[
            ("csrf", &csrf),
            ("input", r#"{"email": "", "name": "", "order": ""}"#),
        ],
    )
    .await;
    assert_eq!(prefilled.status(), 422);
    let html = decoded(prefilled.text().await.unwrap());
    let said = between(&html, r#"id="run-input""#, r#"id="run-button""#);
    assert!(
        said.contains("Step 1&#x27;s To is not an address")
            || said.contains("Step 1's To is not an address"),
        "{said}"
    );
    assert!(
        said.contains("Fill in the input and run it again."),
        "{said}"
    );
    assert!(!said.contains("steps[0]"), "{said}");
    assert!(html.contains("No runs yet."), "no run was made");

    // Queued (no waiting): the run page shows it until the worker ran it.
    let ran = post_form(
        &w,
        &cookie,
        &format!("/workflows/{id}/run"),
        &[("csrf", &csrf), ("input", input)],
    )
    .await;
    assert_eq!(ran.status(), 303);
    let run_page = location(&ran);
    assert!(run_page.starts_with("/runs/"), "{run_page}");
    let (_, html) = page(&w, &cookie, &run_page).await;
    assert!(
        html.contains(r#"<strong id="run-status" class="status-queued">queued</strong>"#),
        "{html}"
    );
    assert!(
        html.contains(r#"http-equiv="refresh""#),
        "it reloads itself"
    );

    let html = finish(&w, &cookie, &run_page).await;
    assert!(
        html.contains(r#"<strong id="run-status" class="status-succeeded">succeeded</strong>"#),
        "{html}"
    );
    assert!(html.contains("message_id") && !html.contains(r#"http-equiv="refresh""#));
    assert!(
        html.contains("&quot;order&quot;: &quot;A-17&quot;"),
        "the input: {html}"
    );
    let inbox = w.sandbox.messages(BOB).unwrap();
    assert_eq!(inbox.len(), 1);
    assert_eq!(inbox[0].subject, "Order A-17 shipped");

    // Waiting, with a worker in the background as in `mailwright serve`:
    // the run page it lands on shows the end.
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let worker = tokio::spawn(w.app.worker.clone().run(stopped));
    let waited = post_form(
        &w,
        &cookie,
        &format!("/workflows/{id}/run"),
        &[("csrf", &csrf), ("input", input), ("wait", "on")],
    )
    .await;
    let _ = stop.send(true);
    worker.await.unwrap();
    assert_eq!(waited.status(), 303);
    let (_, html) = page(&w, &cookie, &location(&waited)).await;
    assert!(
        html.contains(r#"class="status-succeeded">succeeded</strong>"#),
        "{html}"
    );
    assert_eq!(w.sandbox.messages(BOB).unwrap().len(), 2);

    let (_, html) = page(&w, &cookie, &format!("/workflows/{id}")).await;
    assert_eq!(
        between(&html, r#"id="runs""#, "</ul>")
            .matches(">succeeded</strong>")
            .count(),
        2,
        "the history: {html}"
    );

    // Another workspace's ids answer exactly as ids that do not exist.
    let other = w.app.bare_tenant("other").await;
    let (other_cookie, other_csrf) = session(&w, other.user, other.workspace).await;
    let missing = uuid::Uuid::now_v7();
    let run_id = run_page.trim_start_matches("/runs/");
    for (foreign, absent) in [
        (format!("/workflows/{id}"), format!("/workflows/{missing}")),
        (format!("/runs/{run_id}"), format!("/runs/{missing}")),
    ] {
        let foreign = page(&w, &other_cookie, &foreign).await;
        assert_eq!(foreign.0, 404);
        assert_eq!(foreign, page(&w, &other_cookie, &absent).await);
    }
    for action in ["run", "delete"] {
        let foreign = post_form(
            &w,
            &other_cookie,
            &format!("/workflows/{id}/{action}"),
            &[("csrf", &other_csrf), ("input", "{}")],
        )
        .await;
        assert_eq!(foreign.status(), 404, "{action}");
    }
    let mut foreign_edit = form;
    foreign_edit[0].1 = &other_csrf;
    assert_eq!(
        post_form(
            &w,
            &other_cookie,
            &format!("/workflows/{id}"),
            &foreign_edit
        )
        .await
        .status(),
        404
    );

    // Edit (disable), then delete.
    // An unchecked checkbox is not sent at all.
    let disable: Vec<(&str, &str)> = form
        .into_iter()
        .filter(|(field, _)| *field != "enabled")
        .collect();
    let saved = post_form(&w, &cookie, &format!("/workflows/{id}"), &disable).await;
    assert_eq!(location(&saved), format!("/workflows/{id}?notice=saved"));
    let (_, html) = page(&w, &cookie, &format!("/workflows/{id}")).await;
    assert!(html.contains(r#"id="run-button" disabled"#), "{html}");
    let refused = post_form(
        &w,
        &cookie,
        &format!("/workflows/{id}/run"),
        &[("csrf", &csrf), ("input", input)],
    )
    .await;
    assert_eq!(refused.status(), 409);
    assert!(
        refused
            .text()
            .await
            .unwrap()
            .contains("This workflow is disabled")
    );
    let deleted = post_form(
        &w,
        &cookie,
        &format!("/workflows/{id}/delete"),
        &[("csrf", &csrf)],
    )
    .await;
    assert_eq!(location(&deleted), "/workflows?notice=deleted");
    assert_eq!(page(&w, &cookie, &format!("/workflows/{id}")).await.0, 404);
}

#[tokio::test]
async fn a_refused_form_shows_each_problem_next_to_its_field() {
    let w = world().await;
    let integration = w.connect(Consent::allow_all()).await["integration_id"].clone();
    let (cookie, csrf) = session(&w, w.tenant.user, w.tenant.workspace).await;
    let base = [
        ("csrf", csrf.as_str()),
        ("name", "Weekly"),
        ("enabled", "on"),
        ("trigger", "manual"),
        ("cron", ""),
        ("steps[0].action", "gmail.send_email"),
        ("steps[0].integration_id", integration.as_str()),
        ("steps[0].to", "ok@example.com, bob"),
        ("steps[0].subject", "Hi"),
        ("steps[0].body", "Hello"),
    ];

    let refused = post_form(&w, &cookie, "/workflows", &base).await;
    assert_eq!(refused.status(), 422);
    let html = decoded(refused.text().await.unwrap());
    let to_field = between(&html, r#"id="step-0-to""#, r#"<label for="step-0-cc">"#);
    assert!(
        to_field.contains(r#"aria-invalid="true""#)
            && to_field.contains(
                r#"<p class="field-error" data-field="steps[0].to">To: bob is not an address"#
            ),
        "the error sits under the To field: {to_field}"
    );
    assert!(
        to_field.contains(r#"value="ok@example.com, bob""#),
        "what was typed is kept"
    );
    assert_eq!(html.matches(r#"class="field-error""#).count(), 1, "{html}");

    let mut several = base;
    several[1] = ("name", "  ");
    several[3] = ("trigger", "schedule");
    several[4] = ("cron", "every day");
    several[7] = ("steps[0].to", "");
    let html = decoded(
        post_form(&w, &cookie, "/workflows", &several)
            .await
            .text()
            .await
            .unwrap(),
    );
    for (field, next, message) in [
        (
            "workflow-name",
            "workflow-trigger",
            "Name must be 1 to 100 characters",
        ),
        (
            "workflow-cron",
            "workflow-mailbox",
            "Cron is not a cron expression",
        ),
        ("step-0-to", "step-0-cc", "To needs at least one address"),
    ] {
        let around = between(
            &html,
            &format!(r#"id="{field}""#),
            &format!(r#"<label for="{next}">"#),
        );
        assert!(around.contains(message), "{field}: {around}");
    }

    // The Advanced JSON answers with the API's field paths, under the box.
    let json = r#"{"name": "J", "trigger": {"type": "manual"}, "steps": [
        {"action": "email.send_system", "to": ["x"], "subject": "s", "body": "b"}, {"action": "gmail.teleport"}]}"#;
    let refused = post_form(
        &w,
        &cookie,
        "/workflows",
        &[("csrf", &csrf), ("mode", "json"), ("json", json)],
    )
    .await;
    assert_eq!(refused.status(), 422);
    let html = decoded(refused.text().await.unwrap());
    let box_ = between(&html, r#"id="workflow-json""#, "</form>");
    assert!(
        box_.contains(r#"data-field="json">steps[1].action: must be one of"#)
            && box_.contains("(got `gmail.teleport`)"),
        "{box_}"
    );
    assert!(html.contains("<details open>"), "the box stays open");
    let malformed = post_form(
        &w,
        &cookie,
        "/workflows",
        &[("csrf", &csrf), ("mode", "json"), ("json", "{")],
    )
    .await;
    assert_eq!(malformed.status(), 422);
    assert!(
        decoded(malformed.text().await.unwrap()).contains("The body is not valid JSON"),
        "the API's words"
    );
    let (_, list) = page(&w, &cookie, "/workflows").await;
    assert!(list.contains("No workflows yet"), "nothing was created");

    // A valid JSON definition is created like through the API.
    let json = r#"{"name": "Two steps", "trigger": {"type": "webhook"}, "steps": [
        {"action": "email.send_system", "to": ["ops@example.com"], "subject": "s", "body": "b"},
        {"action": "email.send_system", "to": ["ops@example.com"], "cc": ["a@example.com"], "subject": "t", "body": "c"}]}"#;
    let created = post_form(
        &w,
        &cookie,
        "/workflows",
        &[("csrf", &csrf), ("mode", "json"), ("json", json)],
    )
    .await;
    assert_eq!(created.status(), 303);
    let (_, html) = page(&w, &cookie, &location(&created)).await;
    assert!(
        html.contains(r#"id="webhook-url""#) && html.contains("/api/hooks/"),
        "the webhook URL is shown: {html}"
    );
    for (field, value) in [
        ("steps[0].subject", "s"),
        ("steps[1].subject", "t"),
        ("steps[1].cc", "a@example.com"),
    ] {
        assert!(
            html.contains(&format!(r#"name="{field}" value="{value}""#)),
            "two steps, each in its own fields: {field}"
        );
    }
    assert!(html.contains(r#"id="workflow-save""#));
}

#[tokio::test]
async fn an_api_key_made_on_the_settings_page_is_shown_once_works_and_can_be_revoked() {
    let w = world().await;
    let (cookie, csrf) = session(&w, w.tenant.user, w.tenant.workspace).await;

    let (status, html) = page(&w, &cookie, "/settings").await;
    assert_eq!(status, 200);
    assert!(
        html.contains(r#"id="api-key-name""#) && html.contains("acme key"),
        "{html}"
    );
    assert!(!html.contains(&w.tenant.key), "never a secret in the list");

    assert_eq!(
        post_form(
            &w,
            &cookie,
            "/settings/api-keys",
            &[("csrf", "forged"), ("name", "CI")]
        )
        .await
        .status(),
        403
    );
    let refused = post_form(
        &w,
        &cookie,
        "/settings/api-keys",
        &[("csrf", &csrf), ("name", " ")],
    )
    .await;
    assert_eq!(refused.status(), 422);
    let html = decoded(refused.text().await.unwrap());
    assert!(
        between(&html, r#"id="api-key-name""#, r#"id="api-key-create""#)
            .contains("Name must be 1 to 100 characters"),
        "{html}"
    );

    let created = post_form(
        &w,
        &cookie,
        "/settings/api-keys",
        &[("csrf", &csrf), ("name", "CI <bot>")],
    )
    .await;
    // Redirect-after-post: the key rides to the page in an encrypted cookie.
    assert_eq!(created.status(), 303);
    assert_eq!(created.headers()["location"], "/settings?created=1");
    let new_key_cookie = created
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .find(|value| value.starts_with("mw_new_key="))
        .expect("the new key's cookie")
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let shown = w
        .app
        .client
        .get(w.app.url("/settings?created=1"))
        .header("cookie", format!("{cookie}; {new_key_cookie}"))
        .send()
        .await
        .unwrap();
    assert_eq!(shown.status(), 200);
    assert_eq!(shown.headers()["cache-control"], "no-store");
    assert!(
        shown
            .headers()
            .get_all("set-cookie")
            .iter()
            .any(|value| value.to_str().unwrap().starts_with("mw_new_key=;")),
        "the cookie is cleared once shown"
    );
    let html = decoded(shown.text().await.unwrap());
    let key = between(&html, r#"id="new-api-key">"#, "<").to_owned();
    assert!(key.starts_with("mw_") && key.len() > 20, "{key}");
    assert!(html.contains("Copy it now") && html.contains("CI &lt;bot&gt;"));
    assert!(
        !new_key_cookie.contains(&key),
        "the cookie does not carry the key in clear"
    );
    // Another user's session cannot read the cookie.
    let other_user = w.app.bare_tenant("someone").await;
    let (other_session, _) = session(&w, other_user.user, other_user.workspace).await;
    let stolen = w
        .app
        .client
        .get(w.app.url("/settings?created=1"))
        .header("cookie", format!("{other_session}; {new_key_cookie}"))
        .send()
        .await
        .unwrap();
    assert!(!stolen.text().await.unwrap().contains(&key));

    let me = w.app.get_as("/api/me", &key).await;
    assert_eq!(me.status(), 200);
    let me: serde_json::Value = me.json().await.unwrap();
    assert_eq!(me["workspace_id"], w.tenant.workspace.to_string());

    let (_, html) = page(&w, &cookie, "/settings").await;
    assert!(
        !html.contains(&key) && !html.contains(r#"id="new-api-key""#),
        "shown once"
    );
    assert!(html.contains("CI &lt;bot&gt;"), "listed: {html}");

    let id = w
        .app
        .store
        .api_keys(w.tenant.workspace)
        .await
        .unwrap()
        .into_iter()
        .find(|listed| listed.name == "CI <bot>")
        .unwrap()
        .id;
    let revoke = format!("/settings/api-keys/{id}/revoke");
    assert!(html.contains(&revoke), "{html}");

    let other = w.app.bare_tenant("other").await;
    let (other_cookie, other_csrf) = session(&w, other.user, other.workspace).await;
    assert_eq!(
        post_form(&w, &other_cookie, &revoke, &[("csrf", &other_csrf)])
            .await
            .status(),
        404
    );
    assert_eq!(
        post_form(&w, &cookie, &revoke, &[("csrf", "forged")])
            .await
            .status(),
        403
    );
    assert_eq!(
        w.app.get_as("/api/me", &key).await.status(),
        200,
        "still works"
    );

    let revoked = post_form(&w, &cookie, &revoke, &[("csrf", &csrf)]).await;
    assert_eq!(location(&revoked), "/settings?notice=revoked");
    assert_eq!(w.app.get_as("/api/me", &key).await.status(), 401);
    let (_, html) = page(&w, &cookie, "/settings?notice=revoked").await;
    assert!(html.contains("The key is revoked") && !html.contains(&revoke));
}

#[tokio::test]
async fn the_outbox_lists_system_email_while_it_is_only_logged() {
    let w = world().await;
    let (cookie, csrf) = session(&w, w.tenant.user, w.tenant.workspace).await;
    let (_, html) = page(&w, &cookie, "/settings").await;
    assert!(
        html.contains("System email outbox") && html.contains("Nothing yet."),
        "{html}"
    );
    assert!(html.contains("With Sidemail or SMTP configured"));

    let created = post_form(
        &w,
        &cookie,
        "/workflows",
        &[
            ("csrf", &csrf),
            ("name", "Ops"),
            ("enabled", "on"),
            ("trigger", "manual"),
            ("steps[0].action", "email.send_system"),
            // Ignored for a system email: the select only counts for Gmail.
            ("steps[0].integration_id", "x"),
            ("steps[0].to", "ops@example.com"),
            ("steps[0].subject", "Order {{ input.order }}"),
            ("steps[0].body", "b"),
        ],
    )
    .await;
    assert_eq!(created.status(), 303, "{:?}", created.text().await);
    let id = between(&location(&created), "/workflows/", "?").to_owned();
    let ran = post_form(
        &w,
        &cookie,
        &format!("/workflows/{id}/run"),
        &[("csrf", &csrf), ("input", r#"{"order": 7}"#)],
    )
    .await;
    let html = finish(&w, &cookie, &location(&ran)).await;
    assert!(html.contains(">succeeded</strong>"), "{html}");
    store::testing::make_jobs_due(&w.app.store).await;
    w.app.worker.drain().await.unwrap();

    let (_, html) = page(&w, &cookie, "/settings").await;
    let outbox = between(&html, r#"id="outbox""#, "</ul>");
    assert!(
        outbox.contains("<strong>Order 7</strong>")
            && outbox.contains("workflow · to ops@example.com"),
        "{outbox}"
    );
}

#[tokio::test]
async fn a_failed_runs_page_offers_a_rerun_that_links_back() {
    let w = world().await;
    let (cookie, csrf) = session(&w, w.tenant.user, w.tenant.workspace).await;
    let id = w.connect(Consent::allow_all()).await["integration_id"].clone();
    let workflow = common::workflows::create_ok(
        &w,
        serde_json::json!({"name": "Needs email", "trigger": {"type": "manual"},
            "steps": [common::workflows::send_step(&id, "{{ input.email }}", "Hi")]}),
    )
    .await;
    let (_, started) = common::workflows::execute(
        &w,
        workflow["id"].as_str().unwrap(),
        serde_json::json!({"name": "B", "order": "1"}),
        false,
        None,
    )
    .await;
    let failed = started["run"]["id"].as_str().unwrap().to_owned();
    assert_eq!(
        common::workflows::finish(&w, &failed).await["status"],
        "failed"
    );

    let (_, html) = page(&w, &cookie, &format!("/runs/{failed}")).await;
    assert!(
        html.contains(r#"id="rerun-button">Re-run from step 1<"#),
        "{html}"
    );
    let forged = post_form(
        &w,
        &cookie,
        &format!("/runs/{failed}/rerun"),
        &[("csrf", "forged")],
    )
    .await;
    assert_eq!(forged.status(), 403);
    let rerun = post_form(
        &w,
        &cookie,
        &format!("/runs/{failed}/rerun"),
        &[("csrf", &csrf)],
    )
    .await;
    assert_eq!(rerun.status(), 303);
    let new_page = location(&rerun);
    assert!(
        new_page.starts_with("/runs/") && !new_page.contains(&failed),
        "{new_page}"
    );
    let (_, html) = page(&w, &cookie, &new_page).await;
    assert!(
        html.contains(&format!(r#"<a href="/runs/{failed}">a failed run</a>"#)),
        "{html}"
    );
}
