-- What the drafts list shows of each draft without a call to Gmail: the
-- answered message's subject and sender, and the start of the reply
-- Mailwright wrote (never the original's body). NULL for drafts made
-- before this migration and for drafts adopted after a crash.
ALTER TABLE draft_metadata ADD COLUMN source_subject TEXT;
ALTER TABLE draft_metadata ADD COLUMN source_from TEXT;
ALTER TABLE draft_metadata ADD COLUMN reply_excerpt TEXT;

-- The home page's latest runs of the whole workspace, newest first.
CREATE INDEX workflow_runs_recent ON workflow_runs (workspace_id, created_at);
