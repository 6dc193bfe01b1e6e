-- Retry horizons (decision 0012): a job is retried until a fixed time after
-- it was queued, so its claim returns `created_at`; a run waiting for its
-- next attempt says when that is.
ALTER TABLE workflow_runs ADD COLUMN next_attempt_at TIMESTAMPTZ;

-- The claims of migrations 0009 and 0013 with `created_at` added to what they
-- return (a function's result type cannot change in place). Their bodies are
-- otherwise unchanged; those migrations say why they are written this way.
DROP FUNCTION mailwright_claim_job_starting_run(UUID, TIMESTAMPTZ, TIMESTAMPTZ, TEXT[]);
DROP FUNCTION mailwright_claim_job(UUID, TIMESTAMPTZ, TIMESTAMPTZ, TEXT[]);

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
    max_attempts INTEGER,
    created_at TIMESTAMPTZ
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
    RETURNING jobs.id, jobs.kind, jobs.payload, jobs.workspace_id, jobs.attempts, jobs.max_attempts, jobs.created_at;
END
$$;

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
    created_at TIMESTAMPTZ,
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
    IF claimed.kind = 'workflow.run' AND claimed.workspace_id IS NOT NULL
       AND claimed.payload->>'run_id' ~ '^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$' THEN
        previous := current_setting('mailwright.workspace_id', true);
        PERFORM set_config('mailwright.workspace_id', claimed.workspace_id::TEXT, true);
        UPDATE workflow_runs AS run SET status = 'running', starts = run.starts + 1
        WHERE run.workspace_id = claimed.workspace_id AND run.id = (claimed.payload->>'run_id')::UUID
          AND run.status NOT IN ('succeeded', 'failed')
        RETURNING to_jsonb(run) || jsonb_build_object(
            'workflow_steps', (SELECT workflow.steps FROM workflows AS workflow
                               WHERE workflow.workspace_id = run.workspace_id AND workflow.id = run.workflow_id))
        INTO started;
        PERFORM set_config('mailwright.workspace_id', COALESCE(previous, ''), true);
    END IF;
    RETURN QUERY SELECT claimed.id, claimed.kind, claimed.payload, claimed.workspace_id, claimed.attempts,
                        claimed.max_attempts, claimed.created_at, started;
END
$$;

-- An auto-draft message waiting for its next attempt says when that is (its
-- `reason` and `detail` say what went wrong last time).
ALTER TABLE autodraft_messages ADD COLUMN next_attempt_at TIMESTAMPTZ;
