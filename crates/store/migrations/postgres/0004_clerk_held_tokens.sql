-- Who holds a connection's Google grant: `google` (Mailwright, through its
-- own OAuth client: oauth_tokens has the refresh token) or `clerk` (Clerk,
-- where the person signed in with Google: access tokens are fetched from
-- Clerk's Backend API for `clerk_user_id`, and only cached in oauth_tokens).
ALTER TABLE integrations ADD COLUMN token_source TEXT NOT NULL DEFAULT 'google';
ALTER TABLE integrations ADD COLUMN clerk_user_id TEXT;

-- The function's result gains the two columns (a result type cannot change
-- in place).
DROP FUNCTION mailwright_integration_with_tokens(UUID, UUID);
CREATE FUNCTION mailwright_integration_with_tokens(p_workspace UUID, p_integration UUID) RETURNS TABLE (
    id UUID,
    workspace_id UUID,
    user_id UUID,
    provider TEXT,
    integration_type TEXT,
    provider_account_id TEXT,
    email TEXT,
    display_name TEXT,
    status TEXT,
    granted_scopes TEXT,
    last_error_code TEXT,
    last_error_message TEXT,
    last_error_at TIMESTAMPTZ,
    connected_at TIMESTAMPTZ,
    last_used_at TIMESTAMPTZ,
    updated_at TIMESTAMPTZ,
    token_source TEXT,
    clerk_user_id TEXT,
    access_key_id TEXT,
    access_token BYTEA,
    refresh_key_id TEXT,
    refresh_token BYTEA,
    token_expires_at TIMESTAMPTZ,
    version INTEGER,
    refresh_lease_until TIMESTAMPTZ
)
LANGUAGE plpgsql
AS $$
#variable_conflict use_column
DECLARE
    previous TEXT := current_setting('mailwright.workspace_id', true);
BEGIN
    PERFORM set_config('mailwright.workspace_id', p_workspace::TEXT, true);
    RETURN QUERY
    SELECT i.id, i.workspace_id, i.user_id, i.provider, i.integration_type, i.provider_account_id, i.email,
           i.display_name, i.status, i.granted_scopes, i.last_error_code, i.last_error_message, i.last_error_at,
           i.connected_at, i.last_used_at, i.updated_at, i.token_source, i.clerk_user_id,
           t.access_key_id, t.access_token, t.refresh_key_id, t.refresh_token, t.expires_at, t.version,
           t.refresh_lease_until
    FROM integrations AS i
    LEFT JOIN oauth_tokens AS t ON t.integration_id = i.id AND t.workspace_id = i.workspace_id
    WHERE i.workspace_id = p_workspace AND i.id = p_integration;
    PERFORM set_config('mailwright.workspace_id', COALESCE(previous, ''), true);
END
$$;
