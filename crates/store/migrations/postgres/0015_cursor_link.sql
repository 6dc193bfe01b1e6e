-- A mailbox whose provider hands out an opaque cursor (Microsoft Graph's
-- delta link) keeps it here; history_id then counts the delta rounds, so
-- the compare-and-set that moves a cursor stays one integer compare
-- (decision 0024).
ALTER TABLE autodraft_mailboxes ADD COLUMN cursor_link TEXT;
