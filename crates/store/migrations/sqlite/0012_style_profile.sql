-- How the mailbox's owner writes (JSON, learnt from their sent mail or set
-- by them), and when it was learnt (refreshed weekly unless set by hand).
ALTER TABLE autodraft_mailboxes ADD COLUMN style TEXT;
ALTER TABLE autodraft_mailboxes ADD COLUMN style_learned_at TEXT;
