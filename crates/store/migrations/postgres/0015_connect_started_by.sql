-- Who started a connection (decision 0013): `session` (the web UI: the
-- consent must come back to the same signed-in browser) or `api` (an API
-- key or a JWT: a browser that is not signed in as the same person confirms
-- on a Mailwright page before anything is stored).
ALTER TABLE oauth_states ADD COLUMN started_by TEXT NOT NULL DEFAULT 'api';
