//! Pub/Sub push authentication: a push subscription configured with a
//! service account sends `Authorization: Bearer <ID token>`, signed by
//! Google (RS256, keys at `MAILWRIGHT_GOOGLE_CERTS_URL`), issued by
//! `accounts.google.com`, with the subscription's audience and the service
//! account's `email` (verified). Anyone who learns the push URL still
//! cannot make one.

use serde_json::Value;

use super::jwt::{JwtError, KeySet};
use crate::config::PushOidc;

/// The two spellings of Google's issuer that its ID tokens carry.
pub const GOOGLE_ISSUERS: [&str; 2] = ["accounts.google.com", "https://accounts.google.com"];

/// Why a push's token was refused; `reason()` is what the 401 and the
/// counter say.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PushAuthError {
    #[error("{0}")]
    Token(JwtError),
    #[error("The push token was issued to another service account.")]
    WrongServiceAccount,
    #[error("The push token's email is not verified.")]
    EmailNotVerified,
}

impl PushAuthError {
    pub fn reason(&self) -> &'static str {
        match self {
            PushAuthError::Token(error) => error.reason(),
            PushAuthError::WrongServiceAccount => "wrong_service_account",
            PushAuthError::EmailNotVerified => "email_not_verified",
        }
    }
}

pub struct PushVerifier {
    keys: KeySet,
    audience: String,
    service_account: String,
}

impl PushVerifier {
    pub fn new(config: PushOidc, http: reqwest::Client) -> PushVerifier {
        PushVerifier {
            keys: KeySet::new(config.certs_url, http),
            audience: config.audience,
            service_account: config.service_account,
        }
    }

    pub async fn verify(&self, token: &str) -> Result<(), PushAuthError> {
        let claims = self
            .keys
            .decode(token, &GOOGLE_ISSUERS, Some(&self.audience))
            .await
            .map_err(PushAuthError::Token)?;
        let email = claims.get("email").and_then(Value::as_str);
        if !email.is_some_and(|email| email.eq_ignore_ascii_case(&self.service_account)) {
            return Err(PushAuthError::WrongServiceAccount);
        }
        if claims.get("email_verified") != Some(&Value::Bool(true)) {
            return Err(PushAuthError::EmailNotVerified);
        }
        Ok(())
    }
}
