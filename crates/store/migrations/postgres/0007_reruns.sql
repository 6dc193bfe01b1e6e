-- A re-run of a failed run names the run it re-runs (it keeps that run's
-- succeeded steps, so nothing they sent is sent again).
ALTER TABLE workflow_runs ADD COLUMN rerun_of UUID;
