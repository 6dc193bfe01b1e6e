//! Encryption of OAuth tokens at rest: XChaCha20-Poly1305 (random 192-bit
//! nonces are safe at any volume), the key id stored beside each ciphertext,
//! several keys accepted for decryption and the first used for encryption
//! (rotation). Each ciphertext is bound to its row and field (associated
//! data), so a ciphertext copied into another row does not decrypt.

use std::collections::HashMap;
use std::fmt;
use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use secrecy::{ExposeSecret, SecretString};

const NONCE_BYTES: usize = 24;

/// A key id: 1 to 32 of `A-Z a-z 0-9 _ -`.
fn valid_key_id(id: &str) -> bool {
    (1..=32).contains(&id.len())
        && id
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || byte == b'_' || byte == b'-')
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyringError {
    #[error("{0}")]
    Invalid(String),
    #[error("no key with id `{0}` is configured")]
    UnknownKey(String),
    #[error("the data does not decrypt with key `{0}` (wrong key, or the data was altered)")]
    Undecryptable(String),
}

/// The configured keys. Never printed: `Debug` shows key ids only.
#[derive(Clone)]
pub struct Keyring {
    primary: String,
    keys: HashMap<String, XChaCha20Poly1305>,
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut ids: Vec<&String> = self.keys.keys().collect();
        ids.sort();
        f.debug_struct("Keyring")
            .field("primary", &self.primary)
            .field("key_ids", &ids)
            .finish()
    }
}

pub use store::integrations::Sealed;

impl Keyring {
    /// Parse `id:base64(32 bytes)[,id:base64...]`; the first key encrypts.
    pub fn parse(text: &str) -> Result<Keyring, KeyringError> {
        let mut primary = None;
        let mut keys = HashMap::new();
        for (position, entry) in text
            .split(',')
            .map(str::trim)
            .filter(|entry| !entry.is_empty())
            .enumerate()
        {
            let Some((id, encoded)) = entry.split_once(':') else {
                return Err(KeyringError::Invalid(format!(
                    "key {} is not `id:base64`; generate one with `echo k1:$(openssl rand -base64 32)`",
                    position + 1
                )));
            };
            if !valid_key_id(id) {
                return Err(KeyringError::Invalid(format!(
                    "key id `{}` must be 1 to 32 letters, digits, `_` or `-`",
                    id.chars().take(40).collect::<String>()
                )));
            }
            let bytes = STANDARD
                .decode(encoded.trim())
                .map_err(|_| KeyringError::Invalid(format!("key `{id}` is not standard base64")))?;
            let cipher = XChaCha20Poly1305::new_from_slice(&bytes).map_err(|_| {
                KeyringError::Invalid(format!(
                    "key `{id}` is {} bytes; it must be 32",
                    bytes.len()
                ))
            })?;
            if keys.insert(id.to_owned(), cipher).is_some() {
                return Err(KeyringError::Invalid(format!(
                    "key id `{id}` appears twice"
                )));
            }
            primary.get_or_insert_with(|| id.to_owned());
        }
        let primary = primary.ok_or_else(|| KeyringError::Invalid("no key given".into()))?;
        Ok(Keyring { primary, keys })
    }

    /// A fresh random key with id `id`, in the configuration format.
    pub fn generate_entry(id: &str) -> SecretString {
        let key = XChaCha20Poly1305::generate_key(&mut OsRng);
        SecretString::from(format!("{id}:{}", STANDARD.encode(key)))
    }

    /// The keys from `path`, creating the file (mode 0600) with a new key
    /// when it does not exist. Used for SQLite installs without configured
    /// keys, so a first start needs no setup.
    pub fn load_or_create_file(path: &Path) -> Result<(Keyring, bool), KeyringError> {
        let io = |what: &str, error: std::io::Error| {
            KeyringError::Invalid(format!("cannot {what} {} ({error})", path.display()))
        };
        if path.exists() {
            let text = std::fs::read_to_string(path).map_err(|error| io("read", error))?;
            return Ok((Keyring::parse(&text)?, false));
        }
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|error| io("create the folder of", error))?;
        }
        let entry = Keyring::generate_entry("k1");
        write_private(path, entry.expose_secret()).map_err(|error| io("write", error))?;
        Ok((Keyring::parse(entry.expose_secret())?, true))
    }

    pub fn primary_key_id(&self) -> &str {
        &self.primary
    }

    pub fn key_ids(&self) -> impl Iterator<Item = &str> {
        self.keys.keys().map(String::as_str)
    }

    pub fn has_key(&self, id: &str) -> bool {
        self.keys.contains_key(id)
    }

    /// Encrypt `plaintext` under the primary key, bound to `context`.
    pub fn seal(&self, plaintext: &[u8], context: &str) -> Sealed {
        self.seal_with(&self.primary, plaintext, context)
            .expect("the primary key is in the keyring")
    }

    /// Encrypt under a given key (used to write the check value of each key).
    pub fn seal_with(
        &self,
        key_id: &str,
        plaintext: &[u8],
        context: &str,
    ) -> Result<Sealed, KeyringError> {
        let cipher = self
            .keys
            .get(key_id)
            .ok_or_else(|| KeyringError::UnknownKey(key_id.to_owned()))?;
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let ciphertext = cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: plaintext,
                    aad: context.as_bytes(),
                },
            )
            .map_err(|_| KeyringError::Undecryptable(key_id.to_owned()))?;
        let mut bytes = nonce.to_vec();
        bytes.extend_from_slice(&ciphertext);
        Ok(Sealed {
            key_id: key_id.to_owned(),
            bytes,
        })
    }

    /// Decrypt what [`seal`](Self::seal) made with the same `context`.
    pub fn open(&self, sealed: &Sealed, context: &str) -> Result<Vec<u8>, KeyringError> {
        let cipher = self
            .keys
            .get(&sealed.key_id)
            .ok_or_else(|| KeyringError::UnknownKey(sealed.key_id.clone()))?;
        if sealed.bytes.len() < NONCE_BYTES {
            return Err(KeyringError::Undecryptable(sealed.key_id.clone()));
        }
        let (nonce, ciphertext) = sealed.bytes.split_at(NONCE_BYTES);
        let nonce: [u8; NONCE_BYTES] = nonce
            .try_into()
            .map_err(|_| KeyringError::Undecryptable(sealed.key_id.clone()))?;
        cipher
            .decrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: ciphertext,
                    aad: context.as_bytes(),
                },
            )
            .map_err(|_| KeyringError::Undecryptable(sealed.key_id.clone()))
    }

    /// Decrypt a token: UTF-8 text kept secret.
    pub fn open_secret(
        &self,
        sealed: &Sealed,
        context: &str,
    ) -> Result<SecretString, KeyringError> {
        let bytes = self.open(sealed, context)?;
        String::from_utf8(bytes)
            .map(SecretString::from)
            .map_err(|_| KeyringError::Undecryptable(sealed.key_id.clone()))
    }
}

#[cfg(unix)]
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(text.as_bytes())?;
    file.write_all(b"\n")
}

#[cfg(not(unix))]
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    std::fs::write(path, format!("{text}\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keyring(text: &str) -> Keyring {
        Keyring::parse(text).unwrap()
    }

    #[test]
    fn seals_and_opens_bound_to_context() {
        let ring = keyring(Keyring::generate_entry("k1").expose_secret());
        let sealed = ring.seal(b"ya29.token", "integration:1:access");
        assert_eq!(sealed.key_id, "k1");
        assert!(
            !sealed.bytes.windows(5).any(|window| window == b"ya29."),
            "not plaintext"
        );
        assert_eq!(
            ring.open(&sealed, "integration:1:access").unwrap(),
            b"ya29.token"
        );
        assert!(
            ring.open(&sealed, "integration:2:access").is_err(),
            "bound to its row"
        );
        assert_ne!(
            ring.seal(b"ya29.token", "c").bytes,
            ring.seal(b"ya29.token", "c").bytes,
            "random nonces"
        );
    }

    #[test]
    fn old_keys_decrypt_and_the_first_encrypts() {
        let old = Keyring::generate_entry("old");
        let new = Keyring::generate_entry("new");
        let before = keyring(old.expose_secret());
        let sealed = before.seal(b"secret", "c");
        let rotated = keyring(&format!("{},{}", new.expose_secret(), old.expose_secret()));
        assert_eq!(rotated.open(&sealed, "c").unwrap(), b"secret");
        assert_eq!(rotated.seal(b"x", "c").key_id, "new");
    }

    #[test]
    fn a_wrong_key_with_the_right_id_is_detected() {
        let sealed = keyring(Keyring::generate_entry("k1").expose_secret()).seal(b"secret", "c");
        let impostor = keyring(Keyring::generate_entry("k1").expose_secret());
        assert_eq!(
            impostor.open(&sealed, "c"),
            Err(KeyringError::Undecryptable("k1".into()))
        );
        let other = keyring(Keyring::generate_entry("k2").expose_secret());
        assert_eq!(
            other.open(&sealed, "c"),
            Err(KeyringError::UnknownKey("k1".into()))
        );
    }

    #[test]
    fn bad_configuration_is_explained() {
        for (text, fragment) in [
            ("", "no key"),
            ("k1", "not `id:base64`"),
            ("k1:!!!", "not standard base64"),
            ("k1:AAAA", "must be 32"),
            ("bad id:AAAA", "key id"),
        ] {
            let error = Keyring::parse(text).unwrap_err().to_string();
            assert!(error.contains(fragment), "{text:?}: {error}");
        }
        let entry = Keyring::generate_entry("k1");
        let twice = format!("{},{}", entry.expose_secret(), entry.expose_secret());
        assert!(
            Keyring::parse(&twice)
                .unwrap_err()
                .to_string()
                .contains("twice")
        );
        let debug = format!("{:?}", keyring(entry.expose_secret()));
        assert!(
            !debug.contains(entry.expose_secret().split(':').nth(1).unwrap()),
            "{debug}"
        );
    }

    #[test]
    fn the_generated_key_file_is_private_and_reused() {
        let dir = std::env::temp_dir().join(format!("mw-keyring-{}", uuid::Uuid::new_v4()));
        let path = dir.join("encryption.key");
        let (first, created) = Keyring::load_or_create_file(&path).unwrap();
        assert!(created);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
                0o600
            );
        }
        let (second, created) = Keyring::load_or_create_file(&path).unwrap();
        assert!(!created);
        let sealed = first.seal(b"x", "c");
        assert_eq!(second.open(&sealed, "c").unwrap(), b"x");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
