-- A Gmail push names only the mailbox's address; finding its enabled
-- mailboxes read every enabled mailbox. The lookup now starts from an index
-- on the lowered address (PostgreSQL migration 0012 says why it is a column).
ALTER TABLE integrations ADD COLUMN email_key TEXT GENERATED ALWAYS AS (LOWER(email)) VIRTUAL;
CREATE INDEX integrations_by_address ON integrations (email_key);
