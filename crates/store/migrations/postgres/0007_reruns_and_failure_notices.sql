-- A re-run of a failed run names the run it re-runs (it keeps that run's
-- succeeded steps, so nothing they sent is sent again).
ALTER TABLE workflow_runs ADD COLUMN rerun_of UUID;

-- Opt-in per workflow: one email to the workspace's owner when a run fails
-- for good. (mailwright_workflow returns SETOF workflows: it carries the
-- column without being recreated.)
ALTER TABLE workflows ADD COLUMN notify_on_failure BOOLEAN NOT NULL DEFAULT false;
