-- A re-run of a failed run names the run it re-runs (it keeps that run's
-- succeeded steps, so nothing they sent is sent again).
ALTER TABLE workflow_runs ADD COLUMN rerun_of BLOB;

-- Opt-in per workflow: one email to the workspace's owner when a run fails
-- for good.
ALTER TABLE workflows ADD COLUMN notify_on_failure INTEGER NOT NULL DEFAULT 0;
