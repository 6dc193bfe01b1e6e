-- The reads and writes made for every workflow run, each in one round trip:
-- `execute` reads the workflow and creates the run with its job; a worker
-- starts the run, reads the integration, and ends the run with its job.
-- Through the pool, a workspace-scoped statement costs three (a transaction
-- that sets the row-level-security scope, the statement, the commit), and
-- each round trip costs CPU on both sides (most over TCP with TLS). Each
-- function sets the scope for its own statements and restores the previous
-- one before it returns; the policies apply as before (the functions run
-- with the caller's rights), and every statement still names its workspace.
-- SQLite runs the same statements directly. Decision 0009 records the
-- trade-off.

-- A workflow.
CREATE FUNCTION mailwright_workflow(p_workspace UUID, p_workflow UUID) RETURNS SETOF workflows
LANGUAGE plpgsql
AS $$
DECLARE
    previous TEXT := current_setting('mailwright.workspace_id', true);
BEGIN
    PERFORM set_config('mailwright.workspace_id', p_workspace::TEXT, true);
    RETURN QUERY SELECT * FROM workflows WHERE workspace_id = p_workspace AND id = p_workflow;
    PERFORM set_config('mailwright.workspace_id', COALESCE(previous, ''), true);
END
$$;

-- A new run of a workflow and (p_job not NULL) its job, or, when the
-- idempotency key was used on the workflow before, that run: returned with
-- `is_new`. No row when the workflow does not exist; the workflow is locked
-- against deletion until the run is written.
CREATE FUNCTION mailwright_create_run(
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
    inserted INTEGER;
BEGIN
    PERFORM set_config('mailwright.workspace_id', p_workspace::TEXT, true);
    PERFORM 1 FROM workflows WHERE workspace_id = p_workspace AND id = p_workflow FOR KEY SHARE;
    IF FOUND THEN
        INSERT INTO workflow_runs (id, workspace_id, workflow_id, status, trigger_kind, input, steps,
                                   idempotency_key, created_at)
        VALUES (p_run, p_workspace, p_workflow, p_status, p_trigger_kind, p_input, p_steps,
                p_idempotency_key, p_created_at)
        ON CONFLICT (workflow_id, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING;
        GET DIAGNOSTICS inserted = ROW_COUNT;
        IF inserted = 1 AND p_job IS NOT NULL THEN
            INSERT INTO jobs (id, workspace_id, kind, payload, status, attempts, max_attempts, run_at,
                              dedupe_key, created_at, updated_at)
            VALUES (p_job, p_job_workspace, p_job_kind, p_job_payload, 'queued', 0, p_job_max_attempts,
                    p_job_run_at, p_job_dedupe_key, p_created_at, p_created_at)
            ON CONFLICT (dedupe_key) WHERE dedupe_key IS NOT NULL AND status IN ('queued', 'running')
            DO NOTHING;
        END IF;
        RETURN QUERY
        SELECT run.id, run.workspace_id, run.workflow_id, run.status, run.trigger_kind, run.input, run.steps,
               run.error_code, run.error_message, run.created_at, run.finished_at, inserted = 1
        FROM workflow_runs AS run
        WHERE run.workspace_id = p_workspace AND run.workflow_id = p_workflow
          AND CASE WHEN inserted = 1 THEN run.id = p_run ELSE run.idempotency_key = p_idempotency_key END;
    END IF;
    PERFORM set_config('mailwright.workspace_id', COALESCE(previous, ''), true);
END
$$;

-- A worker starts (or restarts) a run: marked running, its start counted,
-- returned with its workflow's steps (NULL when the workflow is gone).
CREATE FUNCTION mailwright_begin_run_attempt(p_workspace UUID, p_run UUID) RETURNS TABLE (
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
    starts INTEGER,
    workflow_steps JSONB
)
LANGUAGE plpgsql
AS $$
#variable_conflict use_column
DECLARE
    previous TEXT := current_setting('mailwright.workspace_id', true);
BEGIN
    PERFORM set_config('mailwright.workspace_id', p_workspace::TEXT, true);
    RETURN QUERY
    UPDATE workflow_runs AS run SET status = 'running', starts = run.starts + 1
    WHERE run.workspace_id = p_workspace AND run.id = p_run AND run.status NOT IN ('succeeded', 'failed')
    RETURNING run.id, run.workspace_id, run.workflow_id, run.status, run.trigger_kind, run.input, run.steps,
              run.error_code, run.error_message, run.created_at, run.finished_at, run.starts,
              (SELECT workflow.steps FROM workflows AS workflow
               WHERE workflow.workspace_id = run.workspace_id AND workflow.id = run.workflow_id);
    PERFORM set_config('mailwright.workspace_id', COALESCE(previous, ''), true);
END
$$;

-- An integration with its stored tokens (NULL columns when it has none).
CREATE FUNCTION mailwright_integration_with_tokens(p_workspace UUID, p_integration UUID) RETURNS TABLE (
    id UUID,
    workspace_id UUID,
    user_id UUID,
    provider TEXT,
    integration_type TEXT,
    provider_account_id TEXT,
    email TEXT,
    display_name TEXT,
    status TEXT,
    granted_scopes TEXT,
    last_error_code TEXT,
    last_error_message TEXT,
    last_error_at TIMESTAMPTZ,
    connected_at TIMESTAMPTZ,
    last_used_at TIMESTAMPTZ,
    updated_at TIMESTAMPTZ,
    access_key_id TEXT,
    access_token BYTEA,
    refresh_key_id TEXT,
    refresh_token BYTEA,
    token_expires_at TIMESTAMPTZ,
    version INTEGER,
    refresh_lease_until TIMESTAMPTZ
)
LANGUAGE plpgsql
AS $$
#variable_conflict use_column
DECLARE
    previous TEXT := current_setting('mailwright.workspace_id', true);
BEGIN
    PERFORM set_config('mailwright.workspace_id', p_workspace::TEXT, true);
    RETURN QUERY
    SELECT i.id, i.workspace_id, i.user_id, i.provider, i.integration_type, i.provider_account_id, i.email,
           i.display_name, i.status, i.granted_scopes, i.last_error_code, i.last_error_message, i.last_error_at,
           i.connected_at, i.last_used_at, i.updated_at,
           t.access_key_id, t.access_token, t.refresh_key_id, t.refresh_token, t.expires_at, t.version,
           t.refresh_lease_until
    FROM integrations AS i
    LEFT JOIN oauth_tokens AS t ON t.integration_id = i.id AND t.workspace_id = i.workspace_id
    WHERE i.workspace_id = p_workspace AND i.id = p_integration;
    PERFORM set_config('mailwright.workspace_id', COALESCE(previous, ''), true);
END
$$;

-- A run's end and its job's success, together: true when the job's lease
-- was still this worker's and the job is this workspace's (the run is
-- recorded either way).
CREATE FUNCTION mailwright_finish_run(
    p_workspace UUID,
    p_run UUID,
    p_status TEXT,
    p_steps JSONB,
    p_error_code TEXT,
    p_error_message TEXT,
    p_now TIMESTAMPTZ,
    p_job UUID,
    p_lease_token UUID
) RETURNS BOOLEAN
LANGUAGE plpgsql
AS $$
DECLARE
    previous TEXT := current_setting('mailwright.workspace_id', true);
BEGIN
    PERFORM set_config('mailwright.workspace_id', p_workspace::TEXT, true);
    UPDATE workflow_runs
    SET status = p_status, steps = p_steps, error_code = p_error_code, error_message = p_error_message,
        finished_at = p_now
    WHERE workspace_id = p_workspace AND id = p_run;
    PERFORM set_config('mailwright.workspace_id', COALESCE(previous, ''), true);
    UPDATE jobs
    SET status = 'succeeded', lease_token = NULL, lease_expires_at = NULL, last_error = NULL,
        updated_at = p_now, finished_at = p_now
    WHERE id = p_job AND lease_token = p_lease_token AND status = 'running' AND workspace_id = p_workspace;
    RETURN FOUND;
END
$$;
