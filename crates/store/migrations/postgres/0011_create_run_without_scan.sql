-- 0010's `mailwright_create_run` returned the run it had just written by
-- re-reading it with `CASE WHEN inserted = 1 THEN run.id = ... ELSE
-- run.idempotency_key = ... END`: no index serves that condition, so every
-- execute walked all earlier runs of its workflow (`workflow_runs_by_workflow`)
-- and got slower with each run: 7 ms per call with 10,000 runs. The new run
-- now comes back from its INSERT, and only a repeated idempotency key reads
-- the earlier run, by `workflow_runs_by_idempotency_key`.
CREATE OR REPLACE FUNCTION mailwright_create_run(
    p_workspace UUID,
    p_workflow UUID,
    p_run UUID,
    p_status TEXT,
    p_trigger_kind TEXT,
    p_input JSONB,
    p_steps JSONB,
    p_idempotency_key TEXT,
    p_created_at TIMESTAMPTZ,
    p_job UUID,
    p_job_workspace UUID,
    p_job_kind TEXT,
    p_job_payload JSONB,
    p_job_max_attempts INTEGER,
    p_job_run_at TIMESTAMPTZ,
    p_job_dedupe_key TEXT
) RETURNS TABLE (
    id UUID,
    workspace_id UUID,
    workflow_id UUID,
    status TEXT,
    trigger_kind TEXT,
    input JSONB,
    steps JSONB,
    error_code TEXT,
    error_message TEXT,
    created_at TIMESTAMPTZ,
    finished_at TIMESTAMPTZ,
    is_new BOOLEAN
)
LANGUAGE plpgsql
AS $$
#variable_conflict use_column
DECLARE
    previous TEXT := current_setting('mailwright.workspace_id', true);
BEGIN
    PERFORM set_config('mailwright.workspace_id', p_workspace::TEXT, true);
    PERFORM 1 FROM workflows WHERE workspace_id = p_workspace AND id = p_workflow FOR KEY SHARE;
    IF FOUND THEN
        RETURN QUERY
        INSERT INTO workflow_runs AS run (id, workspace_id, workflow_id, status, trigger_kind, input, steps,
                                          idempotency_key, created_at)
        VALUES (p_run, p_workspace, p_workflow, p_status, p_trigger_kind, p_input, p_steps,
                p_idempotency_key, p_created_at)
        ON CONFLICT (workflow_id, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
        RETURNING run.id, run.workspace_id, run.workflow_id, run.status, run.trigger_kind, run.input,
                  run.steps, run.error_code, run.error_message, run.created_at, run.finished_at, TRUE;
        -- FOUND: RETURN QUERY returned a row, so the run is new.
        IF FOUND THEN
            IF p_job IS NOT NULL THEN
                INSERT INTO jobs (id, workspace_id, kind, payload, status, attempts, max_attempts, run_at,
                                  dedupe_key, created_at, updated_at)
                VALUES (p_job, p_job_workspace, p_job_kind, p_job_payload, 'queued', 0, p_job_max_attempts,
                        p_job_run_at, p_job_dedupe_key, p_created_at, p_created_at)
                ON CONFLICT (dedupe_key) WHERE dedupe_key IS NOT NULL AND status IN ('queued', 'running')
                DO NOTHING;
            END IF;
        ELSE
            RETURN QUERY
            SELECT run.id, run.workspace_id, run.workflow_id, run.status, run.trigger_kind, run.input,
                   run.steps, run.error_code, run.error_message, run.created_at, run.finished_at, FALSE
            FROM workflow_runs AS run
            WHERE run.workflow_id = p_workflow AND run.idempotency_key = p_idempotency_key
              AND run.workspace_id = p_workspace;
        END IF;
    END IF;
    PERFORM set_config('mailwright.workspace_id', COALESCE(previous, ''), true);
END
$$;
