//! Results of a form post carried to the page the browser is sent to next
//! (redirect-after-post, so a reload repeats nothing): a short-lived cookie,
//! sealed with the keyring for one user, workspace and purpose, read once.

use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::Response;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::app::AppState;
use crate::auth::{SessionUser, cookies};

/// How long a result waits in its cookie for the page to show it.
const SECONDS: i64 = 120;

/// What a flash cookie may be opened for: its name and the context it is
/// sealed to (the user, the workspace and `purpose`), so it cannot be
/// replayed to another user or page.
pub(super) struct Flash<'a> {
    pub cookie: &'static str,
    pub session: &'a SessionUser,
    pub purpose: &'a str,
}

impl Flash<'_> {
    fn context(&self) -> String {
        format!(
            "{}:{}:{}",
            self.purpose, self.session.user, self.session.workspace
        )
    }

    /// Seal `plain` into the cookie on `response`, with its expiry inside
    /// (the cookie's Max-Age is only the browser's promise).
    pub fn attach(&self, state: &AppState, response: &mut Response, plain: &[u8]) {
        let expires = chrono::Utc::now().timestamp() + SECONDS;
        let mut sealed_plain = expires.to_be_bytes().to_vec();
        sealed_plain.extend_from_slice(plain);
        let sealed = state.vault.keyring().seal(&sealed_plain, &self.context());
        let value = format!(
            "{}.{}",
            sealed.key_id,
            URL_SAFE_NO_PAD.encode(&sealed.bytes)
        );
        let cookie = cookies::set(
            self.cookie,
            &value,
            SECONDS,
            "Strict",
            state.config.is_https(),
        );
        if let Ok(cookie) = HeaderValue::from_str(&cookie) {
            response.headers_mut().append(header::SET_COOKIE, cookie);
        }
    }

    /// The sealed value the request carries, if it is this user's.
    pub fn open(&self, state: &AppState, headers: &HeaderMap) -> Option<Vec<u8>> {
        let value = cookies::get(headers, self.cookie)?;
        let (key_id, bytes) = value.split_once('.')?;
        let sealed = engine::keyring::Sealed {
            key_id: key_id.to_owned(),
            bytes: URL_SAFE_NO_PAD.decode(bytes).ok()?,
        };
        let opened = state.vault.keyring().open(&sealed, &self.context()).ok()?;
        let (expires, plain) = opened.split_at_checked(8)?;
        let expires = i64::from_be_bytes(expires.try_into().ok()?);
        (chrono::Utc::now().timestamp() <= expires).then(|| plain.to_vec())
    }

    /// Shown once: delete the cookie, and keep the page out of any cache.
    pub fn consumed(&self, state: &AppState, response: &mut Response) {
        let headers = response.headers_mut();
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if let Ok(clear) =
            HeaderValue::from_str(&cookies::clear(self.cookie, state.config.is_https()))
        {
            headers.append(header::SET_COOKIE, clear);
        }
    }
}
