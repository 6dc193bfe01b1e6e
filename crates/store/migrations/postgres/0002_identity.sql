-- Identity: who a JWT's (issuer, sub) is, local accounts, API keys, sessions.

ALTER TABLE workspaces ADD COLUMN external_id TEXT;
ALTER TABLE workspaces ADD COLUMN personal_user_id UUID REFERENCES users (id) ON DELETE CASCADE;
CREATE UNIQUE INDEX workspaces_by_external_id ON workspaces (external_id) WHERE external_id IS NOT NULL;
CREATE UNIQUE INDEX workspaces_by_personal_user ON workspaces (personal_user_id) WHERE personal_user_id IS NOT NULL;
CREATE INDEX workspaces_by_name ON workspaces (name);

CREATE TABLE external_identities (
    issuer TEXT NOT NULL,
    subject TEXT NOT NULL,
    user_id UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (issuer, subject)
);

CREATE TABLE local_accounts (
    user_id UUID PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    email TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);
CREATE UNIQUE INDEX local_accounts_by_email ON local_accounts (email);

CREATE TABLE api_keys (
    id UUID PRIMARY KEY,
    workspace_id UUID NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    user_id UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    prefix TEXT NOT NULL,
    secret_hash TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    last_used_at TIMESTAMPTZ,
    revoked_at TIMESTAMPTZ
);
CREATE UNIQUE INDEX api_keys_by_secret_hash ON api_keys (secret_hash);
CREATE INDEX api_keys_by_workspace ON api_keys (workspace_id);

CREATE TABLE sessions (
    id UUID PRIMARY KEY,
    token_hash TEXT NOT NULL,
    user_id UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    workspace_id UUID NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    csrf_token TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL
);
CREATE UNIQUE INDEX sessions_by_token_hash ON sessions (token_hash);

-- Row-level security: the second wall behind workspace-scoped queries.
-- Tenant queries run in a transaction that sets `mailwright.workspace_id`;
-- the few lookups that must see every workspace (finding the workspace an
-- API key belongs to) set `mailwright.all_workspaces = on` explicitly. With
-- neither set, a query sees no rows: forgetting the scope fails closed.
-- FORCE applies the policies to the table owner too (superusers and roles
-- with BYPASSRLS are exempt; Mailwright warns at start when it runs as one).
CREATE FUNCTION mailwright_row_visible(row_workspace UUID) RETURNS BOOLEAN
    LANGUAGE sql STABLE AS $$
    SELECT row_workspace = NULLIF(current_setting('mailwright.workspace_id', true), '')::uuid
        OR current_setting('mailwright.all_workspaces', true) = 'on'
$$;

ALTER TABLE api_keys ENABLE ROW LEVEL SECURITY;
ALTER TABLE api_keys FORCE ROW LEVEL SECURITY;
CREATE POLICY workspace_isolation ON api_keys USING (mailwright_row_visible(workspace_id));

ALTER TABLE memberships ENABLE ROW LEVEL SECURITY;
ALTER TABLE memberships FORCE ROW LEVEL SECURITY;
CREATE POLICY workspace_isolation ON memberships USING (mailwright_row_visible(workspace_id));
