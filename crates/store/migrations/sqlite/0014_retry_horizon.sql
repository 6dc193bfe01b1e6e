-- Retry horizons (decision 0012): a run waiting for its next attempt says
-- when that is. (SQLite's claim is a statement in Rust, which returns the
-- job's `created_at` itself.)
ALTER TABLE workflow_runs ADD COLUMN next_attempt_at TEXT;

-- An auto-draft message waiting for its next attempt says when that is (its
-- `reason` and `detail` say what went wrong last time).
ALTER TABLE autodraft_messages ADD COLUMN next_attempt_at TEXT;
