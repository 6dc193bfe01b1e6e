-- Workspaces, users, memberships and the durable job queue.
-- Ids are UUIDs stored as 16-byte BLOBs; timestamps are RFC 3339 UTC text
-- (always written by Mailwright with a +00:00 offset, so text order is time order).

CREATE TABLE workspaces (
    id BLOB PRIMARY KEY NOT NULL,
    name TEXT NOT NULL,
    created_at TEXT NOT NULL
);

CREATE TABLE users (
    id BLOB PRIMARY KEY NOT NULL,
    email TEXT,
    display_name TEXT,
    created_at TEXT NOT NULL
);

CREATE TABLE memberships (
    workspace_id BLOB NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    user_id BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role TEXT NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (workspace_id, user_id)
);
CREATE INDEX memberships_by_user ON memberships (user_id);

CREATE TABLE jobs (
    id BLOB PRIMARY KEY NOT NULL,
    workspace_id BLOB REFERENCES workspaces (id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    payload TEXT NOT NULL,
    -- queued | running | succeeded | dead
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    max_attempts INTEGER NOT NULL,
    run_at TEXT NOT NULL,
    lease_token BLOB,
    lease_expires_at TEXT,
    last_error TEXT,
    dedupe_key TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    finished_at TEXT
);
-- What a claim scans: only unfinished jobs, in due order.
CREATE INDEX jobs_due ON jobs (run_at) WHERE status IN ('queued', 'running');
-- At most one unfinished job per dedupe key (e.g. one pending sync per mailbox).
CREATE UNIQUE INDEX jobs_unfinished_dedupe_key ON jobs (dedupe_key)
    WHERE dedupe_key IS NOT NULL AND status IN ('queued', 'running');
