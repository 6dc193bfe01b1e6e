-- The IMAP and SMTP servers of a mailbox connected by password (provider
-- and type `imap`). Its password is sealed in oauth_tokens as an access
-- token that never expires and has no refresh token: one home for secrets,
-- so key rotation and disconnect cover it like any token (decision 0023).
CREATE TABLE mail_servers (
    integration_id BLOB PRIMARY KEY NOT NULL REFERENCES integrations (id) ON DELETE CASCADE,
    workspace_id BLOB NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    imap_host TEXT NOT NULL,
    imap_port INTEGER NOT NULL,
    -- tls | starttls
    imap_security TEXT NOT NULL,
    smtp_host TEXT NOT NULL,
    smtp_port INTEGER NOT NULL,
    smtp_security TEXT NOT NULL,
    username TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

-- Which process holds an IMAP IDLE connection on the mailbox, and until
-- when: several replicas never IDLE on the same mailbox twice (the holder
-- renews the lease; one that died lets it lapse).
ALTER TABLE autodraft_mailboxes ADD COLUMN idle_owner BLOB;
ALTER TABLE autodraft_mailboxes ADD COLUMN idle_until TEXT;
