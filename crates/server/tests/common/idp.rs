//! A stand-in identity provider: real RSA and P-256 keys generated for the
//! test run, a JWKS endpoint on port 0 that counts its hits, and token minting.

#![allow(dead_code)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Json;
use axum::routing::get;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use p256::elliptic_curve::sec1::ToEncodedPoint;
use p256::pkcs8::EncodePrivateKey;
use rsa::pkcs1::EncodeRsaPrivateKey;
use rsa::pkcs8::{EncodePublicKey, LineEnding};
use rsa::traits::PublicKeyParts;
use serde_json::{Value, json};

pub const ISSUER: &str = "https://idp.test";
pub const AUDIENCE: &str = "mailwright-api";
pub const RSA_KID: &str = "rsa-1";
pub const EC_KID: &str = "ec-1";

pub struct TestIdp {
    pub jwks_url: String,
    hits: Arc<AtomicUsize>,
    rsa: EncodingKey,
    ec: EncodingKey,
    /// The RSA public key as PEM: what an attacker signs HS256 tokens with.
    pub rsa_public_pem: String,
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

impl TestIdp {
    pub async fn start() -> TestIdp {
        let mut rng = rand::thread_rng();
        let rsa_private = rsa::RsaPrivateKey::new(&mut rng, 2048).expect("an RSA key");
        let rsa_public = rsa_private.to_public_key();
        let ec_secret = p256::SecretKey::random(&mut rand::rngs::OsRng);
        let ec_point = ec_secret.public_key().to_encoded_point(false);

        let jwks = json!({ "keys": [
            { "kty": "RSA", "kid": RSA_KID, "use": "sig", "alg": "RS256",
              "n": b64(&rsa_public.n().to_bytes_be()), "e": b64(&rsa_public.e().to_bytes_be()) },
            { "kty": "EC", "kid": EC_KID, "use": "sig", "alg": "ES256", "crv": "P-256",
              "x": b64(ec_point.x().unwrap()), "y": b64(ec_point.y().unwrap()) },
        ]});
        let hits = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&hits);
        let router = axum::Router::new().route(
            "/jwks.json",
            get(move || {
                counter.fetch_add(1, Ordering::SeqCst);
                let jwks = jwks.clone();
                async move { Json(jwks) }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, router).await });

        TestIdp {
            jwks_url: format!("http://{address}/jwks.json"),
            hits,
            rsa: EncodingKey::from_rsa_der(rsa_private.to_pkcs1_der().unwrap().as_bytes()),
            ec: EncodingKey::from_ec_der(ec_secret.to_pkcs8_der().unwrap().as_bytes()),
            rsa_public_pem: rsa_public.to_public_key_pem(LineEnding::LF).unwrap(),
        }
    }

    /// The settings that make the app trust this provider.
    pub fn settings(&self) -> Vec<(&'static str, String)> {
        vec![
            ("MAILWRIGHT_AUTH_JWKS_URL", self.jwks_url.clone()),
            ("MAILWRIGHT_AUTH_ISSUER", ISSUER.to_owned()),
            ("MAILWRIGHT_AUTH_AUDIENCE", AUDIENCE.to_owned()),
        ]
    }

    pub fn jwks_hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }

    /// Claims valid for an hour, for `sub`, plus `extra`.
    pub fn claims(sub: &str, extra: Value) -> Value {
        let now = chrono::Utc::now().timestamp();
        let mut claims =
            json!({ "iss": ISSUER, "aud": AUDIENCE, "sub": sub, "iat": now, "exp": now + 3600 });
        if let (Some(claims), Some(extra)) = (claims.as_object_mut(), extra.as_object()) {
            for (key, value) in extra {
                claims.insert(key.clone(), value.clone());
            }
        }
        claims
    }

    pub fn rs256(&self, claims: &Value) -> String {
        self.sign(Algorithm::RS256, Some(RSA_KID), claims)
    }

    pub fn es256(&self, claims: &Value) -> String {
        self.sign(Algorithm::ES256, Some(EC_KID), claims)
    }

    /// Sign with this provider's key for `algorithm`, naming `kid`.
    pub fn sign(&self, algorithm: Algorithm, kid: Option<&str>, claims: &Value) -> String {
        let mut header = Header::new(algorithm);
        header.kid = kid.map(str::to_owned);
        let key = match algorithm {
            Algorithm::ES256 => &self.ec,
            _ => &self.rsa,
        };
        jsonwebtoken::encode(&header, claims, key).unwrap()
    }

    /// The classic confusion attack: HS256 "signed" with the RSA public key.
    pub fn hs256_with_public_key(&self, claims: &Value) -> String {
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(RSA_KID.to_owned());
        jsonwebtoken::encode(
            &header,
            claims,
            &EncodingKey::from_secret(self.rsa_public_pem.as_bytes()),
        )
        .unwrap()
    }

    /// An unsigned token (`alg: none`).
    pub fn unsigned(claims: &Value) -> String {
        let header = b64(br#"{"alg":"none","typ":"JWT"}"#);
        let payload = b64(claims.to_string().as_bytes());
        format!("{header}.{payload}.")
    }
}
