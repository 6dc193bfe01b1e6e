//! A signed-in browser session for the UI's page tests, and fetching pages
//! and posting forms with it.

#![allow(dead_code)] // each test binary uses a different part of this

use super::google::World;

/// A signed-in browser session: (cookie, csrf).
pub async fn session(
    w: &World,
    user: domain::UserId,
    workspace: domain::WorkspaceId,
) -> (String, String) {
    let token = mailwright::auth::secrets::random_token(32);
    let csrf = mailwright::auth::secrets::random_token(16);
    w.app
        .store
        .create_session(
            &mailwright::auth::secrets::sha256_hex(&token),
            &store::sessions::Session {
                user,
                workspace,
                csrf_token: csrf.clone(),
                expires_at: store::now() + chrono::Duration::hours(1),
            },
        )
        .await
        .unwrap();
    (format!("mw_session={token}"), csrf)
}

/// The template escapes `/` and `'` as entities, which browsers decode.
pub fn decoded(html: String) -> String {
    html.replace("&#x2f;", "/").replace("&#x27;", "'")
}

pub async fn page(w: &World, cookie: &str, path: &str) -> (u16, String) {
    let answer = w
        .app
        .client
        .get(w.app.url(path))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap();
    let status = answer.status().as_u16();
    (status, decoded(answer.text().await.unwrap()))
}

pub async fn post_form(
    w: &World,
    cookie: &str,
    path: &str,
    form: &[(&str, &str)],
) -> reqwest::Response {
    w.app
        .client
        .post(w.app.url(path))
        .header("cookie", cookie)
        .form(form)
        .send()
        .await
        .unwrap()
}

/// The `name=value` of cookie `name` that `response` sets.
pub fn set_cookie(response: &reqwest::Response, name: &str) -> String {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .find(|value| value.starts_with(&format!("{name}=")))
        .unwrap_or_else(|| panic!("the response sets {name}"))
        .split(';')
        .next()
        .unwrap()
        .to_owned()
}
