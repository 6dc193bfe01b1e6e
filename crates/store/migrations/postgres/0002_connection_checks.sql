-- When each connection was last checked by the daily health check (a forced
-- token refresh): a revoked grant or a lost scope is found then, not when a
-- workflow or a draft next needs the connection. NULL: never checked (the
-- first check is due a day after it was connected).
ALTER TABLE integrations ADD COLUMN checked_at TIMESTAMPTZ;
