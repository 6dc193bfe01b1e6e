-- Connected Google accounts, their encrypted tokens, and OAuth state.

CREATE TABLE oauth_states (
    -- SHA-256 of the `state` sent to Google; the value itself is not stored.
    state_hash TEXT PRIMARY KEY NOT NULL,
    workspace_id BLOB NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    user_id BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    integration_type TEXT NOT NULL,
    code_verifier TEXT NOT NULL,
    requested_scopes TEXT NOT NULL,
    return_to TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    consumed_at TEXT
);

CREATE TABLE integrations (
    id BLOB PRIMARY KEY NOT NULL,
    workspace_id BLOB NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    -- Who connected it.
    user_id BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    provider TEXT NOT NULL,
    integration_type TEXT NOT NULL,
    -- Google's `sub` for the account: reconnecting the same account updates this row.
    provider_account_id TEXT NOT NULL,
    email TEXT NOT NULL,
    display_name TEXT,
    -- connected | missing_scopes | needs_reauth | disconnected
    status TEXT NOT NULL,
    -- Space-delimited, as Google writes them.
    granted_scopes TEXT NOT NULL,
    last_error_code TEXT,
    last_error_message TEXT,
    last_error_at TEXT,
    connected_at TEXT NOT NULL,
    last_used_at TEXT,
    updated_at TEXT NOT NULL
);
CREATE UNIQUE INDEX integrations_by_account
    ON integrations (workspace_id, provider, integration_type, provider_account_id);
CREATE INDEX integrations_by_user ON integrations (workspace_id, user_id, integration_type);

CREATE TABLE oauth_tokens (
    integration_id BLOB PRIMARY KEY NOT NULL REFERENCES integrations (id) ON DELETE CASCADE,
    workspace_id BLOB NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    -- Each token: the id of the key that encrypted it, and nonce + ciphertext.
    access_key_id TEXT NOT NULL,
    access_token BLOB NOT NULL,
    refresh_key_id TEXT,
    refresh_token BLOB,
    expires_at TEXT NOT NULL,
    -- Bumped on every write; a refresh writes only over the version it read.
    version INTEGER NOT NULL,
    -- Who is refreshing right now, and until when (one refresh at a time).
    refresh_lease_token BLOB,
    refresh_lease_until TEXT,
    updated_at TEXT NOT NULL
);

-- A value encrypted under each key when it is first used: a wrong key with a
-- known id is caught at start, not when tokens turn out unreadable.
CREATE TABLE encryption_key_checks (
    key_id TEXT PRIMARY KEY NOT NULL,
    check_value BLOB NOT NULL,
    created_at TEXT NOT NULL
);
