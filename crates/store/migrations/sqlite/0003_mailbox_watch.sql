-- Gmail push (users.watch) per auto-draft mailbox: until when Google
-- publishes its changes, when the watch is renewed next (daily; a claim
-- moves this forward, so one replica renews each mailbox), and why the last
-- attempt failed. All NULL: never watched (no topic configured, or auto-draft
-- was switched on before one was).
ALTER TABLE autodraft_mailboxes ADD COLUMN watch_expires_at TEXT;
ALTER TABLE autodraft_mailboxes ADD COLUMN watch_renew_at TEXT;
ALTER TABLE autodraft_mailboxes ADD COLUMN watch_error_code TEXT;
ALTER TABLE autodraft_mailboxes ADD COLUMN watch_error_message TEXT;
ALTER TABLE autodraft_mailboxes ADD COLUMN watch_error_at TEXT;
