-- Mailwright's own email: every notice is a row (the outbox) before it is
-- delivered through the job queue, so a provider outage delays mail but never
-- loses it, and a self-hoster without a provider still sees it.
CREATE TABLE system_emails (
    id BLOB PRIMARY KEY NOT NULL,
    workspace_id BLOB REFERENCES workspaces (id) ON DELETE CASCADE,
    -- e.g. integration_needs_reauth, integration_missing_scopes
    kind TEXT NOT NULL,
    -- One email per episode: a second notice for the same episode is not queued.
    dedupe_key TEXT,
    to_address TEXT,
    subject TEXT NOT NULL,
    text_body TEXT NOT NULL,
    html_body TEXT,
    -- queued | sent | failed | undeliverable
    status TEXT NOT NULL,
    provider TEXT,
    last_error TEXT,
    created_at TEXT NOT NULL,
    sent_at TEXT
);
CREATE UNIQUE INDEX system_emails_by_dedupe_key ON system_emails (dedupe_key) WHERE dedupe_key IS NOT NULL;
CREATE INDEX system_emails_by_workspace ON system_emails (workspace_id, created_at);
