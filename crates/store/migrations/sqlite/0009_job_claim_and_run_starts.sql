-- How many times a worker has started each run. A start after the first may
-- follow an attempt that reached Gmail without recording it, so it looks the
-- message up before sending again. Counted by the statement that reads the
-- run for the worker, so it costs no write of its own. (PostgreSQL's 0009
-- also moves the job claim into a function; SQLite's claim needs no change.)
ALTER TABLE workflow_runs ADD COLUMN starts INTEGER NOT NULL DEFAULT 0;
