//! The UI's cookies: the session, and the CSRF token of forms shown before
//! sign-in (double-submit: the form field must equal the cookie).

use axum::http::{HeaderMap, header};

pub const SESSION: &str = "mw_session";
pub const FORM_CSRF: &str = "mw_csrf";
/// An API key just made on the settings page, encrypted, on its way to
/// being shown once.
pub const NEW_API_KEY: &str = "mw_new_key";
/// The result of the auto-draft test action, encrypted, on its way to the
/// page that shows it.
pub const AUTODRAFT_TEST: &str = "mw_test_result";
/// A webhook endpoint's new signing secret, encrypted, on its way to being
/// shown once.
pub const WEBHOOK_SECRET: &str = "mw_webhook_secret";
pub const SESSION_DAYS: i64 = 30;

/// The value of cookie `name`, if the request carries it.
pub fn get(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|line| line.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.to_owned())
        .filter(|value| !value.is_empty())
}

/// A `Set-Cookie` value: HttpOnly always, `Secure` when served over HTTPS.
pub fn set(name: &str, value: &str, max_age_seconds: i64, same_site: &str, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!(
        "{name}={value}; Path=/; HttpOnly; SameSite={same_site}; Max-Age={max_age_seconds}{secure}"
    )
}

/// A `Set-Cookie` value that deletes the cookie.
pub fn clear(name: &str, secure: bool) -> String {
    set(name, "", 0, "Lax", secure)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn finds_a_cookie_among_several() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; mw_session=abc; b=2"),
        );
        assert_eq!(get(&headers, SESSION).as_deref(), Some("abc"));
        assert_eq!(get(&headers, FORM_CSRF), None);
    }

    #[test]
    fn attributes() {
        let cookie = set(SESSION, "t", 60, "Lax", true);
        assert_eq!(
            cookie,
            "mw_session=t; Path=/; HttpOnly; SameSite=Lax; Max-Age=60; Secure"
        );
        assert!(!set(SESSION, "t", 60, "Lax", false).contains("Secure"));
    }
}
