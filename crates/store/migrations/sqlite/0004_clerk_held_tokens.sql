-- Who holds a connection's Google grant: `google` (Mailwright, through its
-- own OAuth client: oauth_tokens has the refresh token) or `clerk` (Clerk,
-- where the person signed in with Google: access tokens are fetched from
-- Clerk's Backend API for `clerk_user_id`, and only cached in oauth_tokens).
ALTER TABLE integrations ADD COLUMN token_source TEXT NOT NULL DEFAULT 'google';
ALTER TABLE integrations ADD COLUMN clerk_user_id TEXT;
