-- (SQLite: ids are 16-byte BLOBs, timestamps RFC 3339 text, JSON text, booleans 0/1.)
-- Workflows (a trigger and ordered steps) and their runs.
CREATE TABLE workflows (
    id BLOB PRIMARY KEY NOT NULL,
    workspace_id BLOB NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    enabled INTEGER NOT NULL,
    -- {"type": "manual" | "webhook" | "schedule", "cron"?}
    trigger_spec TEXT NOT NULL,
    -- [Step], every string a template over {{ input.* }}
    steps TEXT NOT NULL,
    -- The webhook token, encrypted like OAuth tokens (key id + ciphertext).
    webhook_key_id TEXT,
    webhook_secret BLOB,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX workflows_by_workspace ON workflows (workspace_id, created_at);

CREATE TABLE workflow_runs (
    id BLOB PRIMARY KEY NOT NULL,
    workspace_id BLOB NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    workflow_id BLOB NOT NULL REFERENCES workflows (id) ON DELETE CASCADE,
    -- queued | running | succeeded | failed
    status TEXT NOT NULL,
    trigger_kind TEXT NOT NULL,
    input TEXT NOT NULL,
    -- [{"index","action","status","output","error"}]
    steps TEXT NOT NULL,
    error_code TEXT,
    error_message TEXT,
    idempotency_key TEXT,
    created_at TEXT NOT NULL,
    finished_at TEXT
);
CREATE INDEX workflow_runs_by_workflow ON workflow_runs (workspace_id, workflow_id, created_at);
-- The same Idempotency-Key on the same workflow is the same run.
CREATE UNIQUE INDEX workflow_runs_by_idempotency_key ON workflow_runs (workflow_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
