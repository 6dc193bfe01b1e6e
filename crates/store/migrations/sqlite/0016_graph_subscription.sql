-- An Outlook mailbox is announced by a Microsoft Graph change-notification
-- subscription: its id, and the SHA-256 of the clientState secret Graph
-- echoes in every notification (the secret itself is not kept: a
-- notification is checked by hashing what it carries). The subscription's
-- expiry and renewal reuse the watch columns (decision 0025).
ALTER TABLE autodraft_mailboxes ADD COLUMN subscription_id TEXT;
ALTER TABLE autodraft_mailboxes ADD COLUMN subscription_secret_hash TEXT;
CREATE UNIQUE INDEX autodraft_mailboxes_subscription ON autodraft_mailboxes (subscription_id);
