-- The IMAP and SMTP servers of a mailbox connected by password (provider
-- and type `imap`). Its password is sealed in oauth_tokens as an access
-- token that never expires and has no refresh token: one home for secrets,
-- so key rotation and disconnect cover it like any token (decision 0023).
CREATE TABLE mail_servers (
    integration_id UUID PRIMARY KEY NOT NULL REFERENCES integrations (id) ON DELETE CASCADE,
    workspace_id UUID NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    imap_host TEXT NOT NULL,
    imap_port INTEGER NOT NULL,
    -- tls | starttls
    imap_security TEXT NOT NULL,
    smtp_host TEXT NOT NULL,
    smtp_port INTEGER NOT NULL,
    smtp_security TEXT NOT NULL,
    username TEXT NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);

-- Which process holds an IMAP IDLE connection on the mailbox, and until
-- when: several replicas never IDLE on the same mailbox twice (the holder
-- renews the lease; one that died lets it lapse).
ALTER TABLE autodraft_mailboxes ADD COLUMN idle_owner UUID;
ALTER TABLE autodraft_mailboxes ADD COLUMN idle_until TIMESTAMPTZ;

ALTER TABLE mail_servers ENABLE ROW LEVEL SECURITY;
ALTER TABLE mail_servers FORCE ROW LEVEL SECURITY;
CREATE POLICY workspace_isolation ON mail_servers USING (mailwright_row_visible(workspace_id));
