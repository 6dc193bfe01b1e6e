//! Bearer JWTs verified against a JWKS: the identity provider's (people
//! and clients calling the API) and Google's (Pub/Sub push, in
//! [`super::push`]).
//!
//! The algorithm comes from our allow-list (RS256, ES256), never from the
//! token alone: the header's `alg` must be on the list *and* match the type of
//! the key its `kid` names. Keys are cached; an unknown `kid` refreshes the
//! cache (the provider may have rotated keys), but at most once per
//! [`MIN_REFRESH_INTERVAL`], so a flood of made-up kids cannot hammer the
//! provider.
//!
//! A token that verified is remembered by the SHA-256 of its text, so
//! repeated requests with one token skip the signature check. It is
//! remembered only while the keys that verified it are the ones in use: no
//! longer than its `exp` (wall clock), no longer than those keys stay fresh
//! ([`MAX_KEY_AGE`] after they were fetched), and not past the next refresh
//! of the key set, which may have dropped a key. At most
//! [`VERIFIED_TOKENS_CAPACITY`] tokens of at most [`REMEMBERED_TOKEN_BYTES`]
//! are remembered.

use std::collections::HashMap;
use std::sync::Mutex as BlockingMutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, JwkSet, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, Validation, errors::ErrorKind};
use serde_json::Value;
use sha2::{Digest, Sha256};
use tokio::sync::{Mutex, RwLock};

use url::Url;

use crate::config::JwtConfig;

/// Tolerated clock difference for `exp` and `nbf`.
pub const LEEWAY_SECONDS: u64 = 60;
/// Keys are fetched again after this long, to pick up rotations.
const MAX_KEY_AGE: Duration = Duration::from_secs(10 * 60);
/// The JWKS URL is fetched at most this often because of unknown kids.
pub const MIN_REFRESH_INTERVAL: Duration = Duration::from_secs(30);
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// Verified tokens remembered at most; a full memory first drops expired
/// entries, then starts over (a flood of distinct valid tokens costs
/// signature checks, never memory).
pub const VERIFIED_TOKENS_CAPACITY: usize = 10_000;
/// Longer tokens are checked every time (the memory's size stays bounded).
pub const REMEMBERED_TOKEN_BYTES: usize = 8 * 1024;
/// Accepted tokens, by whether the signature was checked or remembered.
const VERIFICATIONS: &str = "mailwright_jwt_accepted_total";

/// Who a verified token says the caller is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwtIdentity {
    pub issuer: String,
    pub subject: String,
    /// The workspace claim's value, when the token has one.
    pub workspace: Option<String>,
    pub email: Option<String>,
}

/// Why a token was refused. `reason()` is the machine-readable code sent to
/// clients; `Display` is the sentence.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwtError {
    #[error("The bearer token is not a well-formed JWT.")]
    Malformed,
    #[error(
        "Tokens signed with `{0}` are not accepted; the identity provider must sign with RS256 or ES256."
    )]
    UnsupportedAlgorithm(String),
    #[error(
        "The token names a signing key (kid) that the identity provider's key set does not contain."
    )]
    UnknownKey,
    #[error("The token's signature does not verify.")]
    BadSignature,
    #[error("The token has expired; get a new one from the identity provider.")]
    Expired,
    #[error("The token is not valid yet (its nbf is in the future).")]
    NotYetValid,
    #[error("The token was issued by an issuer this server does not accept.")]
    WrongIssuer,
    #[error("The token is meant for another audience.")]
    WrongAudience,
    #[error("The token has no `{0}` claim, or it is not a string.")]
    MissingClaim(String),
    /// Not the token's fault: the key set could not be fetched.
    #[error("The identity provider's key set could not be fetched.")]
    KeysUnavailable,
}

impl JwtError {
    pub fn reason(&self) -> &'static str {
        match self {
            JwtError::Malformed => "malformed_token",
            JwtError::UnsupportedAlgorithm(_) => "unsupported_algorithm",
            JwtError::UnknownKey => "unknown_key",
            JwtError::BadSignature => "bad_signature",
            JwtError::Expired => "expired",
            JwtError::NotYetValid => "not_yet_valid",
            JwtError::WrongIssuer => "wrong_issuer",
            JwtError::WrongAudience => "wrong_audience",
            JwtError::MissingClaim(_) => "missing_claim",
            JwtError::KeysUnavailable => "keys_unavailable",
        }
    }
}

#[derive(Clone)]
struct CachedKey {
    key: DecodingKey,
    algorithm: Algorithm,
    /// The key set's generation this key was fetched in.
    generation: u64,
}

#[derive(Default)]
struct KeyCache {
    keys: HashMap<String, CachedKey>,
    fetched_at: Option<Instant>,
    last_attempt: Option<Instant>,
}

pub struct JwtVerifier {
    config: JwtConfig,
    keys: KeySet,
    verified: BlockingMutex<HashMap<[u8; 32], Remembered>>,
}

/// A verified token, and until when it may be taken as verified.
struct Remembered {
    identity: JwtIdentity,
    /// Its `exp`, in seconds since the epoch.
    expires_at: f64,
    /// The key set's generation that verified it.
    keys_generation: u64,
    /// When those keys stop being fresh.
    keys_fresh_until: Instant,
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64()
}

impl JwtVerifier {
    pub fn new(config: JwtConfig, http: reqwest::Client) -> JwtVerifier {
        JwtVerifier {
            keys: KeySet::new(config.jwks_url.clone(), http),
            config,
            verified: BlockingMutex::new(HashMap::new()),
        }
    }

    pub fn workspace_claim(&self) -> &str {
        &self.config.workspace_claim
    }

    /// Verify signature, algorithm, `exp`/`nbf` (with leeway), `iss` and
    /// `aud` when configured, and read the identity claims.
    pub async fn verify(&self, token: &str) -> Result<JwtIdentity, JwtError> {
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let generation = self.keys.generation();
        if let Some(remembered) = self.verified.lock().expect("verified tokens").get(&digest)
            && remembered.keys_generation == generation
            && Instant::now() < remembered.keys_fresh_until
            && unix_now() < remembered.expires_at
        {
            metrics::counter!(VERIFICATIONS, "check" => "remembered").increment(1);
            return Ok(remembered.identity.clone());
        }
        let (identity, expires_at, verified_by) = self.verify_signed(token).await?;
        metrics::counter!(VERIFICATIONS, "check" => "signature").increment(1);
        let keys = self.keys.freshness().await;
        // Within the expiry leeway, too long to keep, or the keys were
        // fetched again while it was checked: checked every time.
        if let (Some(expires_at), Some((keys_generation, keys_fresh_until))) = (expires_at, keys)
            && keys_generation == verified_by
            && unix_now() < expires_at
            && token.len() <= REMEMBERED_TOKEN_BYTES
        {
            let mut verified = self.verified.lock().expect("verified tokens");
            if verified.len() >= VERIFIED_TOKENS_CAPACITY {
                let (now, unix) = (Instant::now(), unix_now());
                verified.retain(|_, kept| {
                    kept.keys_generation == keys_generation
                        && now < kept.keys_fresh_until
                        && unix < kept.expires_at
                });
                if verified.len() >= VERIFIED_TOKENS_CAPACITY {
                    verified.clear();
                }
            }
            verified.insert(
                digest,
                Remembered {
                    identity: identity.clone(),
                    expires_at,
                    keys_generation,
                    keys_fresh_until,
                },
            );
        }
        Ok(identity)
    }

    /// The full check, the token's `exp` (seconds since the epoch) and the
    /// generation of the keys that verified it.
    async fn verify_signed(
        &self,
        token: &str,
    ) -> Result<(JwtIdentity, Option<f64>, u64), JwtError> {
        let issuers: Vec<&str> = self.config.issuer.iter().map(String::as_str).collect();
        let (claims, generation) = self
            .keys
            .decode_with_generation(token, &issuers, self.config.audience.as_deref())
            .await?;
        let text_claim = |name: &str| claims.get(name).and_then(Value::as_str).map(str::to_owned);
        let subject = text_claim("sub")
            .filter(|subject| !subject.is_empty())
            .ok_or_else(|| JwtError::MissingClaim("sub".into()))?;
        let workspace = match claims.get(&self.config.workspace_claim) {
            None | Some(Value::Null) => None,
            Some(Value::String(id)) if !id.is_empty() => Some(id.clone()),
            Some(_) => return Err(JwtError::MissingClaim(self.config.workspace_claim.clone())),
        };
        let expires_at = claims
            .get("exp")
            .and_then(Value::as_f64)
            .filter(|exp| exp.is_finite());
        let identity = JwtIdentity {
            issuer: text_claim("iss").unwrap_or_default(),
            subject,
            workspace,
            email: text_claim("email"),
        };
        Ok((identity, expires_at, generation))
    }
}

/// A JWKS document's signing keys, fetched and cached by `kid`.
pub struct KeySet {
    url: Url,
    http: reqwest::Client,
    cache: RwLock<KeyCache>,
    /// One fetch at a time; others wait for its result.
    refreshing: Mutex<()>,
    /// Counts successful fetches: what was verified with an earlier
    /// generation's keys may rest on a key that is gone now.
    generation: AtomicU64,
}

impl KeySet {
    pub fn new(url: Url, http: reqwest::Client) -> KeySet {
        KeySet {
            url,
            http,
            cache: RwLock::default(),
            refreshing: Mutex::new(()),
            generation: AtomicU64::new(0),
        }
    }

    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// The current keys' generation and when they stop being fresh; `None`
    /// before the first fetch.
    pub async fn freshness(&self) -> Option<(u64, Instant)> {
        let cache = self.cache.read().await;
        let fetched_at = cache.fetched_at?;
        Some((self.generation(), fetched_at + MAX_KEY_AGE))
    }

    /// The claims of `token` once its signature, algorithm, `exp`/`nbf`
    /// (with leeway), issuer (one of `issuers`, when any are given) and
    /// audience (when given) check out. `exp` and `sub` are required, and
    /// `iss`/`aud` when they are checked: a well-signed token without them
    /// (minted for another purpose by the same signer) is refused.
    pub async fn decode(
        &self,
        token: &str,
        issuers: &[&str],
        audience: Option<&str>,
    ) -> Result<Value, JwtError> {
        self.decode_with_generation(token, issuers, audience)
            .await
            .map(|(claims, _)| claims)
    }

    /// [`KeySet::decode`], and the generation of the key set whose key
    /// verified the token.
    pub async fn decode_with_generation(
        &self,
        token: &str,
        issuers: &[&str],
        audience: Option<&str>,
    ) -> Result<(Value, u64), JwtError> {
        let header = read_header(token)?;
        let algorithm = match header.alg.as_str() {
            "RS256" => Algorithm::RS256,
            "ES256" => Algorithm::ES256,
            other => {
                return Err(JwtError::UnsupportedAlgorithm(
                    other.chars().take(20).collect(),
                ));
            }
        };
        let key = self.key_for(header.kid.as_deref(), algorithm).await?;
        if key.algorithm != algorithm {
            // An RS256 header naming an EC key (or the reverse): never let the
            // token pick how its key is used.
            return Err(JwtError::UnsupportedAlgorithm(header.alg));
        }

        let mut validation = Validation::new(algorithm);
        validation.leeway = LEEWAY_SECONDS;
        validation.validate_nbf = true;
        let mut required = vec!["exp", "sub"];
        if !issuers.is_empty() {
            required.push("iss");
            validation.set_issuer(issuers);
        } else {
            validation.iss = None;
        }
        match audience {
            Some(audience) => {
                required.push("aud");
                validation.set_audience(&[audience]);
            }
            None => validation.validate_aud = false,
        }
        validation.set_required_spec_claims(&required);
        let claims = jsonwebtoken::decode::<Value>(token, &key.key, &validation)
            .map_err(|error| match error.kind() {
                ErrorKind::ExpiredSignature => JwtError::Expired,
                ErrorKind::ImmatureSignature => JwtError::NotYetValid,
                ErrorKind::InvalidIssuer => JwtError::WrongIssuer,
                ErrorKind::InvalidAudience => JwtError::WrongAudience,
                ErrorKind::InvalidSignature => JwtError::BadSignature,
                ErrorKind::MissingRequiredClaim(claim) => JwtError::MissingClaim(claim.clone()),
                ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => {
                    JwtError::UnsupportedAlgorithm(header.alg.clone())
                }
                _ => JwtError::Malformed,
            })?
            .claims;
        Ok((claims, key.generation))
    }

    async fn key_for(
        &self,
        kid: Option<&str>,
        algorithm: Algorithm,
    ) -> Result<CachedKey, JwtError> {
        if let Some(key) = self.cached(kid, algorithm, true).await {
            return Ok(key);
        }
        let _one_at_a_time = self.refreshing.lock().await;
        // Someone else may have refreshed while we waited.
        if let Some(key) = self.cached(kid, algorithm, true).await {
            return Ok(key);
        }
        let recently_tried = self
            .cache
            .read()
            .await
            .last_attempt
            .is_some_and(|at| at.elapsed() < MIN_REFRESH_INTERVAL);
        if !recently_tried {
            self.refresh().await;
        }
        // Fresh keys, or (if the provider is down) whatever we had.
        if let Some(key) = self.cached(kid, algorithm, false).await {
            return Ok(key);
        }
        if self.cache.read().await.fetched_at.is_none() {
            Err(JwtError::KeysUnavailable)
        } else {
            Err(JwtError::UnknownKey)
        }
    }

    async fn cached(
        &self,
        kid: Option<&str>,
        algorithm: Algorithm,
        fresh_only: bool,
    ) -> Option<CachedKey> {
        let cache = self.cache.read().await;
        let stale = cache
            .fetched_at
            .is_none_or(|at| at.elapsed() >= MAX_KEY_AGE);
        if fresh_only && stale {
            return None;
        }
        match kid {
            Some(kid) => cache.keys.get(kid).cloned(),
            // No kid: acceptable only when exactly one key fits.
            None => {
                let mut fitting = cache.keys.values().filter(|key| key.algorithm == algorithm);
                match (fitting.next(), fitting.next()) {
                    (Some(only), None) => Some(only.clone()),
                    _ => None,
                }
            }
        }
    }

    async fn refresh(&self) {
        self.cache.write().await.last_attempt = Some(Instant::now());
        match self.fetch().await {
            Ok(keys) => {
                let mut cache = self.cache.write().await;
                let generation = self.generation.load(Ordering::Acquire) + 1;
                cache.keys = keys
                    .into_iter()
                    .map(|(kid, key)| (kid, CachedKey { generation, ..key }))
                    .collect();
                cache.fetched_at = Some(Instant::now());
                self.generation.store(generation, Ordering::Release);
            }
            Err(error) => tracing::warn!(
                jwks_url = %self.url,
                error = format!("{error:#}"),
                "cannot fetch the JWKS; keeping the keys already known"
            ),
        }
    }

    async fn fetch(&self) -> anyhow::Result<HashMap<String, CachedKey>> {
        let response = self
            .http
            .get(self.url.clone())
            .timeout(FETCH_TIMEOUT)
            .send()
            .await?
            .error_for_status()?;
        let set: JwkSet = serde_json::from_slice(&response.bytes().await?)?;
        let mut keys = HashMap::new();
        for jwk in &set.keys {
            if jwk
                .common
                .public_key_use
                .as_ref()
                .is_some_and(|usage| *usage != PublicKeyUse::Signature)
            {
                continue;
            }
            let algorithm = match (&jwk.algorithm, jwk.common.key_algorithm) {
                (AlgorithmParameters::RSA(_), None | Some(KeyAlgorithm::RS256)) => Algorithm::RS256,
                (AlgorithmParameters::EllipticCurve(ec), None | Some(KeyAlgorithm::ES256))
                    if ec.curve == EllipticCurve::P256 =>
                {
                    Algorithm::ES256
                }
                _ => continue,
            };
            let (Some(kid), Ok(key)) = (jwk.common.key_id.clone(), DecodingKey::from_jwk(jwk))
            else {
                continue;
            };
            keys.insert(
                kid,
                CachedKey {
                    key,
                    algorithm,
                    generation: 0,
                },
            );
        }
        Ok(keys)
    }
}

struct Header {
    alg: String,
    kid: Option<String>,
}

/// The header, read by hand so an algorithm the JWT library does not know
/// (`none`) is still reported by name.
fn read_header(token: &str) -> Result<Header, JwtError> {
    let mut parts = token.split('.');
    let (Some(header), Some(_payload), Some(_signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(JwtError::Malformed);
    };
    let bytes = URL_SAFE_NO_PAD
        .decode(header)
        .map_err(|_| JwtError::Malformed)?;
    let header: Value = serde_json::from_slice(&bytes).map_err(|_| JwtError::Malformed)?;
    let alg = header
        .get("alg")
        .and_then(Value::as_str)
        .ok_or(JwtError::Malformed)?
        .to_owned();
    let kid = header.get("kid").and_then(Value::as_str).map(str::to_owned);
    Ok(Header { alg, kid })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verifier() -> JwtVerifier {
        crate::app::install_crypto_provider();
        JwtVerifier::new(
            JwtConfig {
                // Never fetched here: every miss below fails before any key
                // is needed.
                jwks_url: Url::parse("http://127.0.0.1:9/jwks").unwrap(),
                issuer: None,
                audience: None,
                workspace_claim: "org_id".into(),
            },
            reqwest::Client::new(),
        )
    }

    /// Remember `token` as verified by the key set's current generation.
    fn remember(verifier: &JwtVerifier, token: &str, expires_at: f64, fresh_until: Instant) {
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        verifier.verified.lock().unwrap().insert(
            digest,
            Remembered {
                identity: JwtIdentity {
                    issuer: String::new(),
                    subject: "remembered".into(),
                    workspace: None,
                    email: None,
                },
                expires_at,
                keys_generation: verifier.keys.generation(),
                keys_fresh_until: fresh_until,
            },
        );
    }

    /// A remembered token stands for its check only while its `exp`, its
    /// keys' freshness and its keys' generation all hold; otherwise it is
    /// checked again (here: refused, since the stand-in text is no JWT).
    #[tokio::test]
    async fn a_remembered_token_is_checked_again_after_its_exp_its_keys_age_or_a_key_refresh() {
        let verifier = verifier();
        let later = Instant::now() + Duration::from_secs(60);
        remember(&verifier, "held", unix_now() + 60.0, later);
        assert_eq!(verifier.verify("held").await.unwrap().subject, "remembered");

        remember(&verifier, "expired", unix_now() - 1.0, later);
        assert_eq!(verifier.verify("expired").await, Err(JwtError::Malformed));

        remember(&verifier, "stale keys", unix_now() + 60.0, Instant::now());
        assert_eq!(
            verifier.verify("stale keys").await,
            Err(JwtError::Malformed)
        );

        // The key set was fetched again (a key may be gone).
        verifier.keys.generation.fetch_add(1, Ordering::Release);
        assert_eq!(verifier.verify("held").await, Err(JwtError::Malformed));
    }
}
