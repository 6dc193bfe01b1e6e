//! API keys and the UI's sign-in sessions.

mod common;

use common::{TestApp, assert_problem, spawn_app, spawn_app_with};
use serde_json::{Value, json};

#[tokio::test]
async fn an_api_key_is_shown_once_listed_without_its_secret_and_stops_working_when_revoked() {
    let app = spawn_app().await;
    let tenant = app.tenant("acme").await;

    let me: Value = app
        .get_as("/api/me", &tenant.key)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["workspace_id"], tenant.workspace.to_string());
    assert_eq!(me["user_id"], tenant.user.to_string());
    assert_eq!(me["email"], "owner@acme.example");

    let created = app
        .client
        .post(app.url("/api/api-keys"))
        .bearer_auth(&tenant.key)
        .json(&json!({"name": "deploy bot"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let created: Value = created.json().await.unwrap();
    let secret = created["key"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("mw_") && secret.len() > 40, "{secret}");
    assert!(secret.starts_with(created["prefix"].as_str().unwrap()));

    let listing = app
        .get_as("/api/api-keys", &secret)
        .await
        .text()
        .await
        .unwrap();
    assert!(
        !listing.contains(&secret) && !listing.contains(&tenant.key),
        "no secrets in lists: {listing}"
    );
    let listing: Value = serde_json::from_str(&listing).unwrap();
    let names: Vec<&str> = listing["api_keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|key| key["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["deploy bot", "acme key"]);
    assert!(
        listing["api_keys"][1]["last_used_at"].is_string(),
        "use is recorded: {listing}"
    );

    let revoked = app
        .client
        .delete(app.url(&format!(
            "/api/api-keys/{}",
            created["id"].as_str().unwrap()
        )))
        .bearer_auth(&tenant.key)
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), 204);
    let problem = assert_problem(app.get_as("/api/me", &secret).await, 401, "unauthorized").await;
    assert_eq!(problem["reason"], "revoked_api_key");

    let problem = assert_problem(
        app.get_as("/api/me", "mw_notakey").await,
        401,
        "unauthorized",
    )
    .await;
    assert_eq!(problem["reason"], "unknown_api_key");
}

#[tokio::test]
async fn bad_key_requests_name_the_field() {
    let app = spawn_app().await;
    let tenant = app.tenant("acme").await;
    let post = |body: reqwest::Body, content_type: &'static str| {
        app.client
            .post(app.url("/api/api-keys"))
            .bearer_auth(&tenant.key)
            .header("content-type", content_type)
            .body(body)
            .send()
    };
    for (body, field) in [
        (r#"{"name": ""}"#, "name"),
        (r#"{}"#, "name"),
        (r#"{"name": 7}"#, "name"),
        (r#"{"name": "x", "admin": true}"#, "admin"),
    ] {
        let problem = assert_problem(
            post(body.into(), "application/json").await.unwrap(),
            422,
            "validation_failed",
        )
        .await;
        assert_eq!(problem["errors"][0]["field"], field, "{body}: {problem}");
    }
    let problem = assert_problem(
        post("{not json".into(), "application/json").await.unwrap(),
        400,
        "validation_failed",
    )
    .await;
    assert_eq!(problem["errors"][0]["field"], "body");
    let problem = assert_problem(
        post("name=x".into(), "application/x-www-form-urlencoded")
            .await
            .unwrap(),
        422,
        "validation_failed",
    )
    .await;
    assert_eq!(problem["errors"][0]["field"], "Content-Type");
}

#[tokio::test]
async fn missing_or_malformed_credentials_say_what_is_wrong() {
    let app = spawn_app().await;
    let response = app.get("/api/me").await;
    assert!(response.headers().get("www-authenticate").is_some());
    let problem = assert_problem(response, 401, "unauthorized").await;
    assert_eq!(problem["reason"], "missing_credentials");

    let response = app
        .client
        .get(app.url("/api/me"))
        .header("authorization", "Basic dXNlcjpwYXNz")
        .send()
        .await
        .unwrap();
    let problem = assert_problem(response, 401, "unauthorized").await;
    assert_eq!(problem["reason"], "malformed_authorization");
}

/// What a browser would do: cookies kept by hand, forms posted.
struct Browser<'a> {
    app: &'a TestApp,
    cookies: std::collections::BTreeMap<String, String>,
}

impl<'a> Browser<'a> {
    fn new(app: &'a TestApp) -> Self {
        Browser {
            app,
            cookies: Default::default(),
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(name, value)| format!("{name}={value}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn keep_cookies(&mut self, response: &reqwest::Response) -> Vec<String> {
        let set: Vec<String> = response
            .headers()
            .get_all("set-cookie")
            .iter()
            .map(|value| value.to_str().unwrap().to_owned())
            .collect();
        for cookie in &set {
            let (pair, _) = cookie.split_once(';').unwrap_or((cookie, ""));
            let (name, value) = pair.split_once('=').unwrap();
            if value.is_empty() {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.to_owned(), value.to_owned());
            }
        }
        set
    }

    async fn get(&mut self, path: &str) -> (u16, String, Option<String>) {
        let response = self
            .app
            .client
            .get(self.app.url(path))
            .header("cookie", self.cookie_header())
            .send()
            .await
            .unwrap();
        self.keep_cookies(&response);
        let status = response.status().as_u16();
        let location = response
            .headers()
            .get("location")
            .map(|value| value.to_str().unwrap().to_owned());
        (status, response.text().await.unwrap(), location)
    }

    async fn post_form(
        &mut self,
        path: &str,
        form: &[(&str, &str)],
    ) -> (u16, String, Option<String>, Vec<String>) {
        let response = self
            .app
            .client
            .post(self.app.url(path))
            .header("cookie", self.cookie_header())
            .form(form)
            .send()
            .await
            .unwrap();
        let set = self.keep_cookies(&response);
        let status = response.status().as_u16();
        let location = response
            .headers()
            .get("location")
            .map(|value| value.to_str().unwrap().to_owned());
        (status, response.text().await.unwrap(), location, set)
    }
}

/// The value of the hidden `csrf` field in a page.
fn csrf_field(page: &str) -> String {
    let marker = r#"name="csrf" value=""#;
    let start = page.find(marker).expect("the page has a CSRF field") + marker.len();
    page[start..].split('"').next().unwrap().to_owned()
}

#[tokio::test]
async fn first_run_setup_then_sign_out_and_sign_in_with_a_session_cookie() {
    let app = spawn_app().await;
    let mut browser = Browser::new(&app);

    let (status, _, location) = browser.get("/").await;
    assert_eq!(
        (status, location.as_deref()),
        (303, Some("/setup")),
        "no user yet: first-run setup"
    );
    let (status, page, _) = browser.get("/setup").await;
    assert_eq!(status, 200);
    let csrf = csrf_field(&page);

    // A forged form (CSRF token not matching the cookie) is refused.
    let (status, ..) = browser
        .post_form(
            "/setup",
            &[
                ("email", "ada@example.com"),
                ("password", "a long password"),
                ("csrf", "forged"),
            ],
        )
        .await;
    assert_eq!(status, 403);
    let (_, page, _) = browser.get("/setup").await;
    let csrf_again = csrf_field(&page);
    assert_ne!(csrf, csrf_again);

    let (status, page, ..) = browser
        .post_form(
            "/setup",
            &[
                ("email", "ada@example.com"),
                ("password", "short"),
                ("csrf", &csrf_again),
            ],
        )
        .await;
    assert_eq!(status, 422);
    assert!(
        page.contains("Password must be at least 10 characters"),
        "field-level error shown"
    );

    let csrf = csrf_field(&page);
    let (status, _, location, cookies) = browser
        .post_form(
            "/setup",
            &[
                ("email", "Ada@Example.com"),
                ("password", "a long password"),
                ("workspace", "Acme <b>Labs</b>"),
                ("csrf", &csrf),
            ],
        )
        .await;
    assert_eq!((status, location.as_deref()), (303, Some("/")));
    let session_cookie = cookies
        .iter()
        .find(|cookie| cookie.starts_with("mw_session="))
        .expect("a session cookie");
    assert!(
        session_cookie.contains("HttpOnly") && session_cookie.contains("SameSite=Lax"),
        "{session_cookie}"
    );
    assert!(
        !session_cookie.contains("Secure"),
        "plain http public URL: {session_cookie}"
    );

    let (status, home, _) = browser.get("/").await;
    assert_eq!(status, 200);
    assert!(home.contains("ada@example.com"));
    assert!(
        home.contains("Acme &lt;b&gt;Labs") && !home.contains("<b>Labs"),
        "escaped: {home}"
    );
    let session_csrf = csrf_field(&home);

    // The same session authenticates the JSON API...
    let me = app
        .client
        .get(app.url("/api/me"))
        .header("cookie", browser.cookie_header())
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 200);
    // ...but a state-changing call needs the session's CSRF header.
    let create = |csrf: Option<&str>| {
        let mut request = app
            .client
            .post(app.url("/api/api-keys"))
            .header("cookie", browser.cookie_header())
            .json(&json!({"name": "from the UI"}));
        if let Some(csrf) = csrf {
            request = request.header("x-csrf-token", csrf);
        }
        request.send()
    };
    assert_problem(create(None).await.unwrap(), 403, "forbidden").await;
    assert_eq!(create(Some(&session_csrf)).await.unwrap().status(), 201);

    // Setup is closed once someone exists.
    let (status, _, location) = browser.get("/setup").await;
    assert_eq!((status, location.as_deref()), (303, Some("/signin")));

    let (status, _, location, _) = browser
        .post_form("/signout", &[("csrf", &session_csrf)])
        .await;
    assert_eq!((status, location.as_deref()), (303, Some("/signin")));
    let old_cookie = format!(
        "mw_session={}",
        session_cookie
            .split(';')
            .next()
            .unwrap()
            .trim_start_matches("mw_session=")
    );
    let stale = app
        .client
        .get(app.url("/api/me"))
        .header("cookie", old_cookie)
        .send()
        .await
        .unwrap();
    let problem = assert_problem(stale, 401, "unauthorized").await;
    assert_eq!(problem["reason"], "session_expired");

    let (_, page, _) = browser.get("/signin").await;
    let csrf = csrf_field(&page);
    let (status, page, ..) = browser
        .post_form(
            "/signin",
            &[
                ("email", "ada@example.com"),
                ("password", "wrong password!"),
                ("csrf", &csrf),
            ],
        )
        .await;
    assert_eq!(status, 401);
    assert!(page.contains("The email or the password is wrong."));
    let csrf = csrf_field(&page);
    let (status, _, location, _) = browser
        .post_form(
            "/signin",
            &[
                ("email", "ADA@example.com"),
                ("password", "a long password"),
                ("csrf", &csrf),
            ],
        )
        .await;
    assert_eq!((status, location.as_deref()), (303, Some("/")));
    let me: Value = app
        .client
        .get(app.url("/api/me"))
        .header("cookie", browser.cookie_header())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["email"], "ada@example.com");
}

#[tokio::test]
async fn session_cookies_are_secure_behind_https() {
    let app = spawn_app_with(&[(
        "MAILWRIGHT_PUBLIC_URL",
        "https://mail.example.com".to_owned(),
    )])
    .await;
    let mut browser = Browser::new(&app);
    let (_, page, _) = browser.get("/setup").await;
    let (_, _, _, cookies) = browser
        .post_form(
            "/setup",
            &[
                ("email", "ada@example.com"),
                ("password", "a long password"),
                ("csrf", &csrf_field(&page)),
            ],
        )
        .await;
    let session = cookies
        .iter()
        .find(|cookie| cookie.starts_with("mw_session="))
        .unwrap();
    assert!(session.contains("; Secure"), "{session}");
}
