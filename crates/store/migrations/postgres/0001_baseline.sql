-- Mailwright's schema on PostgreSQL: one baseline (2026-12-05) in place of
-- the migrations of the unreleased builds before it (decision 0015). Tables
-- first, then row-level security, then the functions on the hot paths, each
-- in its one current definition. Later changes are new migrations after
-- this one.

-- Tenancy and identity --------------------------------------------------

CREATE TABLE users (
    id UUID PRIMARY KEY,
    email TEXT,
    display_name TEXT,
    created_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE workspaces (
    id UUID PRIMARY KEY,
    name TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    -- The identity provider's workspace claim, for workspaces made from one.
    external_id TEXT,
    -- The user whose personal workspace this is.
    personal_user_id UUID REFERENCES users (id) ON DELETE CASCADE
);
CREATE UNIQUE INDEX workspaces_by_external_id ON workspaces (external_id) WHERE external_id IS NOT NULL;
CREATE UNIQUE INDEX workspaces_by_personal_user ON workspaces (personal_user_id) WHERE personal_user_id IS NOT NULL;
CREATE INDEX workspaces_by_name ON workspaces (name);

CREATE TABLE memberships (
    workspace_id UUID NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    user_id UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (workspace_id, user_id)
);
CREATE INDEX memberships_by_user ON memberships (user_id);

-- Who a JWT's (issuer, sub) is.
CREATE TABLE external_identities (
    issuer TEXT NOT NULL,
    subject TEXT NOT NULL,
    user_id UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (issuer, subject)
);

CREATE TABLE local_accounts (
    user_id UUID PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    email TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);
CREATE UNIQUE INDEX local_accounts_by_email ON local_accounts (email);

CREATE TABLE api_keys (
    id UUID PRIMARY KEY,
    workspace_id UUID NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    user_id UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    prefix TEXT NOT NULL,
    secret_hash TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    last_used_at TIMESTAMPTZ,
    revoked_at TIMESTAMPTZ
);
CREATE UNIQUE INDEX api_keys_by_secret_hash ON api_keys (secret_hash);
CREATE INDEX api_keys_by_workspace ON api_keys (workspace_id);

CREATE TABLE sessions (
    id UUID PRIMARY KEY,
    token_hash TEXT NOT NULL,
    user_id UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    workspace_id UUID NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    csrf_token TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL
);
CREATE UNIQUE INDEX sessions_by_token_hash ON sessions (token_hash);

-- The job queue ----------------------------------------------------------

CREATE TABLE jobs (
    id UUID PRIMARY KEY,
    workspace_id UUID REFERENCES workspaces (id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    payload JSONB NOT NULL,
    -- queued | running | succeeded | dead
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    max_attempts INTEGER NOT NULL,
    run_at TIMESTAMPTZ NOT NULL,
    lease_token UUID,
    lease_expires_at TIMESTAMPTZ,
    last_error TEXT,
    dedupe_key TEXT,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    finished_at TIMESTAMPTZ
);
-- What a claim walks: unfinished jobs in (run_at, id) order, stopping at the
-- first it can take. The index covers the whole ORDER BY, or the database
-- sorts the entire backlog on every claim (measured: 8 ms on SQLite, 26 ms
-- on PostgreSQL per claim with 20,000 queued jobs).
CREATE INDEX jobs_due ON jobs (run_at, id) WHERE status IN ('queued', 'running');
-- At most one unfinished job per dedupe key (e.g. one pending sync per mailbox).
CREATE UNIQUE INDEX jobs_unfinished_dedupe_key ON jobs (dedupe_key)
    WHERE dedupe_key IS NOT NULL AND status IN ('queued', 'running');

-- Connected accounts -----------------------------------------------------

-- A connection being made: issued with the consent URL, consumed once.
CREATE TABLE oauth_states (
    state_hash TEXT PRIMARY KEY,
    workspace_id UUID NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    user_id UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    integration_type TEXT NOT NULL,
    code_verifier TEXT NOT NULL,
    requested_scopes TEXT NOT NULL,
    return_to TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    consumed_at TIMESTAMPTZ,
    -- Who started it (decision 0013): `session` (the web UI: the consent
    -- must come back to the same signed-in browser) or `api` (an API key or
    -- a JWT: a browser not signed in as the same person confirms on a
    -- Mailwright page before anything is stored).
    started_by TEXT NOT NULL DEFAULT 'api'
);

CREATE TABLE integrations (
    id UUID PRIMARY KEY,
    workspace_id UUID NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    user_id UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    provider TEXT NOT NULL,
    integration_type TEXT NOT NULL,
    provider_account_id TEXT NOT NULL,
    email TEXT NOT NULL,
    display_name TEXT,
    status TEXT NOT NULL,
    granted_scopes TEXT NOT NULL,
    last_error_code TEXT,
    last_error_message TEXT,
    last_error_at TIMESTAMPTZ,
    connected_at TIMESTAMPTZ NOT NULL,
    last_used_at TIMESTAMPTZ,
    updated_at TIMESTAMPTZ NOT NULL,
    -- The address lowered, for pushes that name only the address. An index
    -- on LOWER(email) would not serve them: under row-level security a
    -- condition that passes a column to a function not marked leakproof
    -- (LOWER is not) is checked only after the policy, so never in an index
    -- scan. A column of its own is compared with `=`.
    email_key TEXT GENERATED ALWAYS AS (LOWER(email)) STORED
);
CREATE UNIQUE INDEX integrations_by_account
    ON integrations (workspace_id, provider, integration_type, provider_account_id);
CREATE INDEX integrations_by_user ON integrations (workspace_id, user_id, integration_type);
CREATE INDEX integrations_by_address ON integrations (email_key);

CREATE TABLE oauth_tokens (
    integration_id UUID PRIMARY KEY REFERENCES integrations (id) ON DELETE CASCADE,
    workspace_id UUID NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    access_key_id TEXT NOT NULL,
    access_token BYTEA NOT NULL,
    refresh_key_id TEXT,
    refresh_token BYTEA,
    expires_at TIMESTAMPTZ NOT NULL,
    version INTEGER NOT NULL,
    refresh_lease_token UUID,
    refresh_lease_until TIMESTAMPTZ,
    updated_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE encryption_key_checks (
    key_id TEXT PRIMARY KEY,
    check_value BYTEA NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);

-- System email -----------------------------------------------------------

-- Every notice is a row (the outbox) before it is delivered through the
-- job queue.
CREATE TABLE system_emails (
    id UUID PRIMARY KEY,
    workspace_id UUID REFERENCES workspaces (id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    dedupe_key TEXT,
    to_address TEXT,
    subject TEXT NOT NULL,
    text_body TEXT NOT NULL,
    html_body TEXT,
    status TEXT NOT NULL,
    provider TEXT,
    last_error TEXT,
    created_at TIMESTAMPTZ NOT NULL,
    sent_at TIMESTAMPTZ
);
CREATE UNIQUE INDEX system_emails_by_dedupe_key ON system_emails (dedupe_key) WHERE dedupe_key IS NOT NULL;
CREATE INDEX system_emails_by_workspace ON system_emails (workspace_id, created_at);

-- Workflows --------------------------------------------------------------

CREATE TABLE workflows (
    id UUID PRIMARY KEY NOT NULL,
    workspace_id UUID NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    enabled BOOLEAN NOT NULL,
    -- {"type": "manual" | "webhook" | "schedule", "cron"?}
    trigger_spec JSONB NOT NULL,
    -- [Step], every string a template over {{ input.* }}
    steps JSONB NOT NULL,
    -- The webhook token, encrypted like OAuth tokens (key id + ciphertext).
    webhook_key_id TEXT,
    webhook_secret BYTEA,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    -- When a scheduled workflow runs next (UTC); NULL for other triggers.
    next_run_at TIMESTAMPTZ
);
CREATE INDEX workflows_by_workspace ON workflows (workspace_id, created_at);
CREATE INDEX workflows_due ON workflows (next_run_at) WHERE next_run_at IS NOT NULL;

CREATE TABLE workflow_runs (
    id UUID PRIMARY KEY NOT NULL,
    workspace_id UUID NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    workflow_id UUID NOT NULL REFERENCES workflows (id) ON DELETE CASCADE,
    -- queued | running | retrying | succeeded | failed
    status TEXT NOT NULL,
    trigger_kind TEXT NOT NULL,
    input JSONB NOT NULL,
    -- [{"index","action","status","output","error","definition"}]
    steps JSONB NOT NULL,
    error_code TEXT,
    error_message TEXT,
    idempotency_key TEXT,
    created_at TIMESTAMPTZ NOT NULL,
    finished_at TIMESTAMPTZ,
    -- How many times a worker has started the run. A start after the first
    -- may follow an attempt that reached the mailbox without recording it,
    -- so it looks the message up before sending again. Counted by the
    -- statement that reads the run for the worker: no write of its own.
    starts INTEGER NOT NULL DEFAULT 0,
    -- While retrying: when the next attempt is due (decision 0012).
    next_attempt_at TIMESTAMPTZ
);
CREATE INDEX workflow_runs_by_workflow ON workflow_runs (workspace_id, workflow_id, created_at);
-- The same Idempotency-Key on the same workflow is the same run.
CREATE UNIQUE INDEX workflow_runs_by_idempotency_key ON workflow_runs (workflow_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;

-- Auto-draft -------------------------------------------------------------

-- Per-mailbox settings and sync cursor.
CREATE TABLE autodraft_mailboxes (
    integration_id UUID PRIMARY KEY NOT NULL REFERENCES integrations (id) ON DELETE CASCADE,
    workspace_id UUID NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    enabled BOOLEAN NOT NULL,
    -- The mailbox's change cursor (Gmail's historyId) the next sync starts
    -- from; only moves forward.
    history_id BIGINT,
    enabled_at TIMESTAMPTZ,
    next_poll_at TIMESTAMPTZ,
    -- A push (or poll) asked for a sync after this time: a sync that started
    -- earlier runs once more, so no notification is lost.
    sync_requested_at TIMESTAMPTZ,
    last_synced_at TIMESTAMPTZ,
    -- The last mailbox-level failure (a sync that could not run).
    last_failure_code TEXT,
    last_failure_message TEXT,
    last_failure_at TIMESTAMPTZ,
    -- Set while the failure-rate alert is firing (one notice per episode).
    alert_active_since TIMESTAMPTZ,
    updated_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX autodraft_mailboxes_due ON autodraft_mailboxes (enabled, next_poll_at);

-- Every inbound message auto-draft saw, and what became of it.
CREATE TABLE autodraft_messages (
    id UUID PRIMARY KEY NOT NULL,
    workspace_id UUID NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    integration_id UUID NOT NULL REFERENCES integrations (id) ON DELETE CASCADE,
    gmail_message_id TEXT NOT NULL,
    thread_id TEXT NOT NULL,
    -- pending | creating (the draft may have been made) | drafted | skipped | failed
    status TEXT NOT NULL,
    -- Skip reason or failure code; the message for people.
    reason TEXT,
    detail TEXT,
    -- What the generator said, kept from before the draft is made so a
    -- retry that adopts an existing draft records the same thing.
    draft_type TEXT,
    draft_type_label TEXT,
    generator TEXT,
    discovered_at TIMESTAMPTZ NOT NULL,
    finished_at TIMESTAMPTZ,
    -- While waiting for its next attempt: when that is (`reason` and
    -- `detail` say what went wrong last time).
    next_attempt_at TIMESTAMPTZ
);
CREATE UNIQUE INDEX autodraft_messages_by_gmail_id ON autodraft_messages (integration_id, gmail_message_id);
CREATE INDEX autodraft_messages_outcomes ON autodraft_messages (integration_id, finished_at);

-- The drafts auto-draft made. Draft types are an open vocabulary: no CHECK
-- list, on purpose.
CREATE TABLE draft_metadata (
    id UUID PRIMARY KEY NOT NULL,
    workspace_id UUID NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    integration_id UUID NOT NULL REFERENCES integrations (id) ON DELETE CASCADE,
    source_message_id TEXT NOT NULL,
    source_rfc822_message_id TEXT,
    thread_id TEXT NOT NULL,
    provider_draft_id TEXT NOT NULL,
    -- A known type's name, or 'other'.
    draft_type TEXT NOT NULL,
    -- The generator's label as given.
    draft_type_label TEXT NOT NULL,
    generator TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);
CREATE UNIQUE INDEX draft_metadata_by_source ON draft_metadata (integration_id, source_message_id);
CREATE INDEX draft_metadata_recent ON draft_metadata (integration_id, created_at);

-- Notable events of a mailbox (catch-ups, alerts).
CREATE TABLE autodraft_events (
    id UUID PRIMARY KEY NOT NULL,
    workspace_id UUID NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    integration_id UUID NOT NULL REFERENCES integrations (id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    message TEXT NOT NULL,
    at TIMESTAMPTZ NOT NULL
);
CREATE INDEX autodraft_events_recent ON autodraft_events (integration_id, at);

-- Row-level security ------------------------------------------------------

-- The second wall behind workspace-scoped queries. Tenant queries run in a
-- transaction that sets `mailwright.workspace_id`; the few lookups that must
-- see every workspace (finding the workspace an API key belongs to) set
-- `mailwright.all_workspaces = on` explicitly. With neither set, a query sees
-- no rows: forgetting the scope fails closed. FORCE applies the policies to
-- the table owner too (superusers and roles with BYPASSRLS are exempt;
-- Mailwright warns at start when it runs as one).
CREATE FUNCTION mailwright_row_visible(row_workspace UUID) RETURNS BOOLEAN
    LANGUAGE sql STABLE AS $$
    SELECT row_workspace = NULLIF(current_setting('mailwright.workspace_id', true), '')::uuid
        OR current_setting('mailwright.all_workspaces', true) = 'on'
$$;

ALTER TABLE api_keys ENABLE ROW LEVEL SECURITY;
ALTER TABLE api_keys FORCE ROW LEVEL SECURITY;
CREATE POLICY workspace_isolation ON api_keys USING (mailwright_row_visible(workspace_id));

ALTER TABLE memberships ENABLE ROW LEVEL SECURITY;
ALTER TABLE memberships FORCE ROW LEVEL SECURITY;
CREATE POLICY workspace_isolation ON memberships USING (mailwright_row_visible(workspace_id));

ALTER TABLE oauth_states ENABLE ROW LEVEL SECURITY;
ALTER TABLE oauth_states FORCE ROW LEVEL SECURITY;
CREATE POLICY workspace_isolation ON oauth_states USING (mailwright_row_visible(workspace_id));

ALTER TABLE integrations ENABLE ROW LEVEL SECURITY;
ALTER TABLE integrations FORCE ROW LEVEL SECURITY;
CREATE POLICY workspace_isolation ON integrations USING (mailwright_row_visible(workspace_id));

ALTER TABLE oauth_tokens ENABLE ROW LEVEL SECURITY;
ALTER TABLE oauth_tokens FORCE ROW LEVEL SECURITY;
CREATE POLICY workspace_isolation ON oauth_tokens USING (mailwright_row_visible(workspace_id));

ALTER TABLE system_emails ENABLE ROW LEVEL SECURITY;
ALTER TABLE system_emails FORCE ROW LEVEL SECURITY;
CREATE POLICY workspace_isolation ON system_emails USING (mailwright_row_visible(workspace_id));

ALTER TABLE workflows ENABLE ROW LEVEL SECURITY;
ALTER TABLE workflows FORCE ROW LEVEL SECURITY;
CREATE POLICY workspace_isolation ON workflows USING (mailwright_row_visible(workspace_id));

ALTER TABLE workflow_runs ENABLE ROW LEVEL SECURITY;
ALTER TABLE workflow_runs FORCE ROW LEVEL SECURITY;
CREATE POLICY workspace_isolation ON workflow_runs USING (mailwright_row_visible(workspace_id));

ALTER TABLE autodraft_mailboxes ENABLE ROW LEVEL SECURITY;
ALTER TABLE autodraft_mailboxes FORCE ROW LEVEL SECURITY;
CREATE POLICY workspace_isolation ON autodraft_mailboxes USING (mailwright_row_visible(workspace_id));

ALTER TABLE autodraft_messages ENABLE ROW LEVEL SECURITY;
ALTER TABLE autodraft_messages FORCE ROW LEVEL SECURITY;
CREATE POLICY workspace_isolation ON autodraft_messages USING (mailwright_row_visible(workspace_id));

ALTER TABLE draft_metadata ENABLE ROW LEVEL SECURITY;
ALTER TABLE draft_metadata FORCE ROW LEVEL SECURITY;
CREATE POLICY workspace_isolation ON draft_metadata USING (mailwright_row_visible(workspace_id));

ALTER TABLE autodraft_events ENABLE ROW LEVEL SECURITY;
ALTER TABLE autodraft_events FORCE ROW LEVEL SECURITY;
CREATE POLICY workspace_isolation ON autodraft_events USING (mailwright_row_visible(workspace_id));

-- Functions on the hot paths ---------------------------------------------

-- Why these exist (decision 0009, with the measurements): a workspace-scoped
-- statement through the pool costs three round trips (a transaction that
-- sets the row-level-security scope, the statement, the commit), and each
-- round trip costs CPU on both sides, most over TCP with TLS. Each function
-- below sets the scope for its own statements and restores the previous one
-- before it returns; the policies apply as before (the functions run with
-- the caller's rights), and every statement still names its workspace.
-- SQLite runs the same statements directly.

-- The claim. It must walk `jobs_due` in (run_at, id) order and stop at the
-- first job it can take. The planner picks that plan only while its
-- statistics know how many jobs are due; right after the index is built on
-- an empty table (and whenever the statistics lag behind a growing queue) it
-- reads every due job and sorts them instead, on every claim: measured 1-5
-- ms per claim with 1,000-3,000 queued jobs, and slower the longer the
-- backlog. Inside this function sorting is disabled, which leaves the ordered
-- index walk as the only plan. Jobs are retried until a fixed time after
-- they were queued (decision 0012), so the claim returns `created_at`.
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

-- An API key by its secret's hash, in any workspace (the key is what says
-- which workspace the caller is in). The scope is widened for this
-- function's query only and restored before it returns. (A `SET` clause on
-- the function would say the same more simply, but only a superuser may
-- attach a custom setting to a function.)
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
-- against deletion until the run is written. The new run comes back from its
-- INSERT; only a repeated idempotency key reads the earlier run, by
-- `workflow_runs_by_idempotency_key`. (Finding the new run again by a
-- condition no index serves walked every earlier run of the workflow: 7 ms
-- per call with 10,000 runs.)
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
