-- A claimed `workflow.run` job starts its run in the same statement: the
-- run is marked running, its start counted, and it comes back with its
-- workflow's steps (what `mailwright_begin_run_attempt` does), so a run's
-- worker needs one round trip and one commit fewer. Any other job, and a
-- run that has ended or is gone, comes back with `started_run` NULL; the
-- worker then starts the run itself (`Store::begin_run_attempt`), as it does
-- on SQLite. The claim itself is `mailwright_claim_job` (migration 0009),
-- which previous versions call directly.
CREATE FUNCTION mailwright_claim_job_starting_run(
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
    max_attempts INTEGER,
    started_run JSONB
)
LANGUAGE plpgsql
AS $$
#variable_conflict use_column
DECLARE
    claimed RECORD;
    previous TEXT;
    started JSONB;
BEGIN
    SELECT * INTO claimed FROM mailwright_claim_job(p_lease_token, p_lease_expires_at, p_now, p_kinds);
    IF NOT FOUND THEN
        RETURN;
    END IF;
    -- A payload without a well-formed run id is the handler's to refuse; it
    -- must not make the claim itself fail.
    IF claimed.kind = 'workflow.run' AND claimed.workspace_id IS NOT NULL
       AND claimed.payload->>'run_id' ~ '^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$' THEN
        previous := current_setting('mailwright.workspace_id', true);
        PERFORM set_config('mailwright.workspace_id', claimed.workspace_id::TEXT, true);
        UPDATE workflow_runs AS run SET status = 'running', starts = run.starts + 1
        WHERE run.workspace_id = claimed.workspace_id AND run.id = (claimed.payload->>'run_id')::UUID
          AND run.status NOT IN ('succeeded', 'failed')
        -- The run's row with its workflow's steps, as one JSON object.
        RETURNING to_jsonb(run) || jsonb_build_object(
            'workflow_steps', (SELECT workflow.steps FROM workflows AS workflow
                               WHERE workflow.workspace_id = run.workspace_id AND workflow.id = run.workflow_id))
        INTO started;
        PERFORM set_config('mailwright.workspace_id', COALESCE(previous, ''), true);
    END IF;
    RETURN QUERY SELECT claimed.id, claimed.kind, claimed.payload, claimed.workspace_id, claimed.attempts,
                        claimed.max_attempts, started;
END
$$;
