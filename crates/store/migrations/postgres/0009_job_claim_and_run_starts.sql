-- A claim must walk `jobs_due` in (run_at, id) order and stop at the first
-- job it can take. The planner picks that plan only while its statistics know
-- how many jobs are due; right after the index is built on an empty table (and
-- whenever the statistics lag behind a growing queue) it reads every due job
-- and sorts them instead, on every claim: measured 1-5 ms per claim with
-- 1,000-3,000 queued jobs, the largest share of PostgreSQL's time in the
-- workflow benchmark, and slower the longer the backlog. Inside this function
-- sorting is disabled, which leaves the ordered index walk as the only plan.
CREATE FUNCTION mailwright_claim_job(
    p_lease_token UUID,
    p_lease_expires_at TIMESTAMPTZ,
    p_now TIMESTAMPTZ,
    p_kinds TEXT[]
) RETURNS TABLE (
    id UUID,
    kind TEXT,
    payload JSONB,
    workspace_id UUID,
    attempts INTEGER,
    max_attempts INTEGER
)
LANGUAGE plpgsql
SET enable_sort = off
AS $$
#variable_conflict use_column
BEGIN
    RETURN QUERY
    UPDATE jobs
    SET status = 'running', attempts = jobs.attempts + 1, lease_token = p_lease_token,
        lease_expires_at = p_lease_expires_at, updated_at = p_now
    WHERE jobs.id = (
        SELECT due.id FROM jobs AS due
        WHERE due.status IN ('queued', 'running') AND due.run_at <= p_now
          AND (due.status = 'queued' OR (due.lease_expires_at < p_now AND due.attempts < due.max_attempts))
          AND due.kind = ANY (p_kinds)
        ORDER BY due.run_at, due.id
        LIMIT 1
        FOR UPDATE SKIP LOCKED)
    RETURNING jobs.id, jobs.kind, jobs.payload, jobs.workspace_id, jobs.attempts, jobs.max_attempts;
END
$$;

-- How many times a worker has started each run. A start after the first may
-- follow an attempt that reached Gmail without recording it, so it looks the
-- message up before sending again. Counted by the statement that reads the
-- run for the worker, so it costs no write of its own.
ALTER TABLE workflow_runs ADD COLUMN starts INTEGER NOT NULL DEFAULT 0;

-- An API key by its secret's hash, in any workspace (the key is what says
-- which workspace the caller is in): one round trip instead of a transaction
-- that widens the row-level-security scope, queries, and commits. The scope
-- is widened for this function's query only and restored before it returns.
-- (A `SET` clause on the function would say the same more simply, but only a
-- superuser may attach a custom setting to a function.)
CREATE FUNCTION mailwright_api_key_by_secret_hash(p_secret_hash TEXT) RETURNS SETOF api_keys
LANGUAGE plpgsql
AS $$
DECLARE
    previous TEXT := current_setting('mailwright.all_workspaces', true);
BEGIN
    PERFORM set_config('mailwright.all_workspaces', 'on', true);
    RETURN QUERY SELECT * FROM api_keys WHERE secret_hash = p_secret_hash;
    PERFORM set_config('mailwright.all_workspaces', COALESCE(previous, ''), true);
END
$$;
