-- Workflows (a trigger and ordered steps) and their runs.
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
    updated_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX workflows_by_workspace ON workflows (workspace_id, created_at);

CREATE TABLE workflow_runs (
    id UUID PRIMARY KEY NOT NULL,
    workspace_id UUID NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    workflow_id UUID NOT NULL REFERENCES workflows (id) ON DELETE CASCADE,
    -- queued | running | succeeded | failed
    status TEXT NOT NULL,
    trigger_kind TEXT NOT NULL,
    input JSONB NOT NULL,
    -- [{"index","action","status","output","error"}]
    steps JSONB NOT NULL,
    error_code TEXT,
    error_message TEXT,
    idempotency_key TEXT,
    created_at TIMESTAMPTZ NOT NULL,
    finished_at TIMESTAMPTZ
);
CREATE INDEX workflow_runs_by_workflow ON workflow_runs (workspace_id, workflow_id, created_at);
-- The same Idempotency-Key on the same workflow is the same run.
CREATE UNIQUE INDEX workflow_runs_by_idempotency_key ON workflow_runs (workflow_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;

ALTER TABLE workflows ENABLE ROW LEVEL SECURITY;
ALTER TABLE workflows FORCE ROW LEVEL SECURITY;
CREATE POLICY workspace_isolation ON workflows USING (mailwright_row_visible(workspace_id));

ALTER TABLE workflow_runs ENABLE ROW LEVEL SECURITY;
ALTER TABLE workflow_runs FORCE ROW LEVEL SECURITY;
CREATE POLICY workspace_isolation ON workflow_runs USING (mailwright_row_visible(workspace_id));
