//! Keeping the configured keys and the database in agreement: checked at
//! every start, and `mailwright admin rotate-keys` to move every token to
//! the first key.

use store::Store;

use crate::keyring::{Keyring, Sealed};
use crate::vault::token_context;
use crate::workflows::webhook_context;

const CHECK_PLAINTEXT: &[u8] = b"mailwright encryption key check";

fn check_context(key_id: &str) -> String {
    format!("encryption_key_checks:{key_id}")
}

/// Refuse to start with keys that cannot read this database: a stored token
/// under a key id that is not configured, or a configured id whose key is
/// not the one that wrote this database. New key ids get a check value.
pub async fn verify(store: &Store, keyring: &Keyring) -> anyhow::Result<()> {
    for key_id in check(store, keyring).await? {
        let sealed = keyring.seal_with(&key_id, CHECK_PLAINTEXT, &check_context(&key_id))?;
        store.save_key_check(&key_id, &sealed.bytes).await?;
    }
    Ok(())
}

/// [`verify`] without writing: an error when the keys cannot read this
/// database, else the configured key ids the database has no check value
/// for yet (new keys; the next start records them).
pub async fn check(store: &Store, keyring: &Keyring) -> anyhow::Result<Vec<String>> {
    for key_id in store.token_key_ids().await? {
        if !keyring.has_key(&key_id) {
            anyhow::bail!(
                "MAILWRIGHT_ENCRYPTION_KEYS: stored tokens are encrypted with key `{key_id}`, which is not configured; \
                 add it back (after the new key) until `mailwright admin rotate-keys` has re-encrypted everything"
            );
        }
    }
    let mut unchecked = Vec::new();
    for key_id in keyring.key_ids().map(str::to_owned).collect::<Vec<_>>() {
        match store.key_check(&key_id).await? {
            Some(bytes) => {
                let sealed = Sealed {
                    key_id: key_id.clone(),
                    bytes,
                };
                if keyring.open(&sealed, &check_context(&key_id)).is_err() {
                    anyhow::bail!(
                        "MAILWRIGHT_ENCRYPTION_KEYS: key `{key_id}` is not the key with that id that encrypted this database's tokens (wrong key?)"
                    );
                }
            }
            None => unchecked.push(key_id),
        }
    }
    Ok(unchecked)
}

/// Re-encrypt every stored secret (OAuth tokens, workflow webhook tokens,
/// webhook endpoint secrets) under the first configured key. Returns how many
/// rows were rewritten. Rows changed meanwhile (a refresh) are skipped: that
/// write already used the first key.
pub async fn rotate(store: &Store, keyring: &Keyring) -> anyhow::Result<usize> {
    let primary = keyring.primary_key_id().to_owned();
    let mut rewritten = 0;
    for (workspace, id, tokens) in store.all_tokens().await? {
        let refresh_is_current = tokens
            .refresh_token
            .as_ref()
            .is_none_or(|sealed| sealed.key_id == primary);
        if tokens.access_token.key_id == primary && refresh_is_current {
            continue;
        }
        let access = keyring.open(&tokens.access_token, &token_context(id, "access"))?;
        let access = keyring.seal(&access, &token_context(id, "access"));
        let refresh = match &tokens.refresh_token {
            Some(sealed) => {
                let plain = keyring.open(sealed, &token_context(id, "refresh"))?;
                Some(keyring.seal(&plain, &token_context(id, "refresh")))
            }
            None => None,
        };
        if store
            .reencrypt_tokens(workspace, id, tokens.version, &access, refresh.as_ref())
            .await?
        {
            rewritten += 1;
        }
    }
    for (workspace, workflow, sealed) in store.webhook_secrets().await? {
        if sealed.key_id == primary {
            continue;
        }
        let context = webhook_context(workflow);
        let token = keyring.open(&sealed, &context)?;
        let resealed = keyring.seal(&token, &context);
        if store
            .reencrypt_webhook_secret(workspace, workflow, &sealed, &resealed)
            .await?
        {
            rewritten += 1;
        }
    }
    rewritten += crate::webhooks::reencrypt_secrets(store, keyring).await?;
    Ok(rewritten)
}
