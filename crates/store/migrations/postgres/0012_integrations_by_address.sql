-- A Gmail push names only the mailbox's address. Finding the enabled
-- mailboxes for it had no index to use: every push read every enabled
-- mailbox and probed its integration (1,000 rows per push with 1,000
-- mailboxes, in the auto-draft push benchmark). An index on LOWER(email)
-- would not serve it: under row-level security a condition that passes a
-- column to a function not marked leakproof (LOWER is not) is checked only
-- after the policy, so never in an index scan. The lowered address is a
-- column of its own instead, compared with `=`.
ALTER TABLE integrations ADD COLUMN email_key TEXT GENERATED ALWAYS AS (LOWER(email)) STORED;
CREATE INDEX integrations_by_address ON integrations (email_key);
