-- Mailwright's own email: every notice is a row (the outbox) before it is
-- delivered through the job queue.
CREATE TABLE system_emails (
    id UUID PRIMARY KEY,
    workspace_id UUID REFERENCES workspaces (id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    dedupe_key TEXT,
    to_address TEXT,
    subject TEXT NOT NULL,
    text_body TEXT NOT NULL,
    html_body TEXT,
    status TEXT NOT NULL,
    provider TEXT,
    last_error TEXT,
    created_at TIMESTAMPTZ NOT NULL,
    sent_at TIMESTAMPTZ
);
CREATE UNIQUE INDEX system_emails_by_dedupe_key ON system_emails (dedupe_key) WHERE dedupe_key IS NOT NULL;
CREATE INDEX system_emails_by_workspace ON system_emails (workspace_id, created_at);

ALTER TABLE system_emails ENABLE ROW LEVEL SECURITY;
ALTER TABLE system_emails FORCE ROW LEVEL SECURITY;
CREATE POLICY workspace_isolation ON system_emails USING (mailwright_row_visible(workspace_id));
