-- Identity: who a JWT's (issuer, sub) is, local accounts, API keys, sessions.

-- The JWT workspace claim's value (e.g. a Clerk org_id) of a workspace made on first sight.
ALTER TABLE workspaces ADD COLUMN external_id TEXT;
-- Set on a user's personal workspace (used when a token has no workspace claim).
ALTER TABLE workspaces ADD COLUMN personal_user_id BLOB REFERENCES users (id) ON DELETE CASCADE;
CREATE UNIQUE INDEX workspaces_by_external_id ON workspaces (external_id) WHERE external_id IS NOT NULL;
CREATE UNIQUE INDEX workspaces_by_personal_user ON workspaces (personal_user_id) WHERE personal_user_id IS NOT NULL;
CREATE INDEX workspaces_by_name ON workspaces (name);

CREATE TABLE external_identities (
    issuer TEXT NOT NULL,
    subject TEXT NOT NULL,
    user_id BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at TEXT NOT NULL,
    PRIMARY KEY (issuer, subject)
);

CREATE TABLE local_accounts (
    user_id BLOB PRIMARY KEY NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- Lower-cased; the sign-in name.
    email TEXT NOT NULL,
    -- argon2id PHC string.
    password_hash TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE UNIQUE INDEX local_accounts_by_email ON local_accounts (email);

CREATE TABLE api_keys (
    id BLOB PRIMARY KEY NOT NULL,
    workspace_id BLOB NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    -- Whom requests with this key act as.
    user_id BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    -- The first characters of the key, to recognise it in a list.
    prefix TEXT NOT NULL,
    -- SHA-256 of the whole key, hex. The key itself is never stored.
    secret_hash TEXT NOT NULL,
    created_at TEXT NOT NULL,
    last_used_at TEXT,
    revoked_at TEXT
);
CREATE UNIQUE INDEX api_keys_by_secret_hash ON api_keys (secret_hash);
CREATE INDEX api_keys_by_workspace ON api_keys (workspace_id);

CREATE TABLE sessions (
    id BLOB PRIMARY KEY NOT NULL,
    -- SHA-256 of the cookie value, hex.
    token_hash TEXT NOT NULL,
    user_id BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    workspace_id BLOB NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    csrf_token TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL
);
CREATE UNIQUE INDEX sessions_by_token_hash ON sessions (token_hash);
