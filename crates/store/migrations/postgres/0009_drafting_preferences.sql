-- What a mailbox's owner asks of its drafts: free-text instructions for the
-- model, and senders or domains to always or never draft for (JSON
-- {"always": [...], "never": [...]}, checked by the application).
ALTER TABLE autodraft_mailboxes ADD COLUMN instructions TEXT;
ALTER TABLE autodraft_mailboxes ADD COLUMN rules TEXT;
