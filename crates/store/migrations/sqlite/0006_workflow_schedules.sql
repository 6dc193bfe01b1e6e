-- When a scheduled workflow runs next (UTC); NULL for other triggers.
ALTER TABLE workflows ADD COLUMN next_run_at TEXT;
CREATE INDEX workflows_due ON workflows (next_run_at) WHERE next_run_at IS NOT NULL;
