-- Connected Google accounts, their encrypted tokens, and OAuth state.

CREATE TABLE oauth_states (
    state_hash TEXT PRIMARY KEY,
    workspace_id UUID NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    user_id UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    integration_type TEXT NOT NULL,
    code_verifier TEXT NOT NULL,
    requested_scopes TEXT NOT NULL,
    return_to TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    consumed_at TIMESTAMPTZ
);

CREATE TABLE integrations (
    id UUID PRIMARY KEY,
    workspace_id UUID NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    user_id UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    provider TEXT NOT NULL,
    integration_type TEXT NOT NULL,
    provider_account_id TEXT NOT NULL,
    email TEXT NOT NULL,
    display_name TEXT,
    status TEXT NOT NULL,
    granted_scopes TEXT NOT NULL,
    last_error_code TEXT,
    last_error_message TEXT,
    last_error_at TIMESTAMPTZ,
    connected_at TIMESTAMPTZ NOT NULL,
    last_used_at TIMESTAMPTZ,
    updated_at TIMESTAMPTZ NOT NULL
);
CREATE UNIQUE INDEX integrations_by_account
    ON integrations (workspace_id, provider, integration_type, provider_account_id);
CREATE INDEX integrations_by_user ON integrations (workspace_id, user_id, integration_type);

CREATE TABLE oauth_tokens (
    integration_id UUID PRIMARY KEY REFERENCES integrations (id) ON DELETE CASCADE,
    workspace_id UUID NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    access_key_id TEXT NOT NULL,
    access_token BYTEA NOT NULL,
    refresh_key_id TEXT,
    refresh_token BYTEA,
    expires_at TIMESTAMPTZ NOT NULL,
    version INTEGER NOT NULL,
    refresh_lease_token UUID,
    refresh_lease_until TIMESTAMPTZ,
    updated_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE encryption_key_checks (
    key_id TEXT PRIMARY KEY,
    check_value BYTEA NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);

ALTER TABLE oauth_states ENABLE ROW LEVEL SECURITY;
ALTER TABLE oauth_states FORCE ROW LEVEL SECURITY;
CREATE POLICY workspace_isolation ON oauth_states USING (mailwright_row_visible(workspace_id));

ALTER TABLE integrations ENABLE ROW LEVEL SECURITY;
ALTER TABLE integrations FORCE ROW LEVEL SECURITY;
CREATE POLICY workspace_isolation ON integrations USING (mailwright_row_visible(workspace_id));

ALTER TABLE oauth_tokens ENABLE ROW LEVEL SECURITY;
ALTER TABLE oauth_tokens FORCE ROW LEVEL SECURITY;
CREATE POLICY workspace_isolation ON oauth_tokens USING (mailwright_row_visible(workspace_id));
