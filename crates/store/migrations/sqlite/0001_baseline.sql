-- Mailwright's schema on SQLite: one baseline (2026-12-05) in place of the
-- migrations of the unreleased builds before it (decision 0015). Later
-- changes are new migrations after this one.
--
-- Ids are UUIDs stored as 16-byte BLOBs; timestamps are RFC 3339 UTC text
-- (always written by Mailwright with a +00:00 offset, so text order is time
-- order); JSON is text; booleans are 0/1.

-- Tenancy, identity and the job queue ----------------------------------
CREATE TABLE users (
    id BLOB PRIMARY KEY NOT NULL,
    email TEXT,
    display_name TEXT,
    created_at TEXT NOT NULL
);

CREATE TABLE workspaces (
    id BLOB PRIMARY KEY NOT NULL,
    name TEXT NOT NULL,
    created_at TEXT NOT NULL,
    -- The JWT workspace claim's value (e.g. a Clerk org_id) of a workspace made on first sight.
    external_id TEXT,
    -- Set on a user's personal workspace (used when a token has no workspace claim).
    personal_user_id BLOB REFERENCES users (id) ON DELETE CASCADE
);
CREATE UNIQUE INDEX workspaces_by_external_id ON workspaces (external_id) WHERE external_id IS NOT NULL;
CREATE UNIQUE INDEX workspaces_by_personal_user ON workspaces (personal_user_id) WHERE personal_user_id IS NOT NULL;
CREATE INDEX workspaces_by_name ON workspaces (name);

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
-- What a claim walks: unfinished jobs in (run_at, id) order, stopping at the
-- first it can take. The index covers the whole ORDER BY, or the database
-- sorts the entire backlog on every claim (measured: 8 ms on SQLite, 26 ms
-- on PostgreSQL per claim with 20,000 queued jobs).
CREATE INDEX jobs_due ON jobs (run_at, id) WHERE status IN ('queued', 'running');
-- At most one unfinished job per dedupe key (e.g. one pending sync per mailbox).
CREATE UNIQUE INDEX jobs_unfinished_dedupe_key ON jobs (dedupe_key)
    WHERE dedupe_key IS NOT NULL AND status IN ('queued', 'running');

-- Identity: who a JWT's (issuer, sub) is, local accounts, API keys, sessions.


CREATE TABLE external_identities (
    issuer TEXT NOT NULL,
    subject TEXT NOT NULL,
    user_id BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at TEXT NOT NULL,
    PRIMARY KEY (issuer, subject)
);

CREATE TABLE local_accounts (
    user_id BLOB PRIMARY KEY NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- Lower-cased; the sign-in name.
    email TEXT NOT NULL,
    -- argon2id PHC string.
    password_hash TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE UNIQUE INDEX local_accounts_by_email ON local_accounts (email);

CREATE TABLE api_keys (
    id BLOB PRIMARY KEY NOT NULL,
    workspace_id BLOB NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    -- Whom requests with this key act as.
    user_id BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    -- The first characters of the key, to recognise it in a list.
    prefix TEXT NOT NULL,
    -- SHA-256 of the whole key, hex. The key itself is never stored.
    secret_hash TEXT NOT NULL,
    created_at TEXT NOT NULL,
    last_used_at TEXT,
    revoked_at TEXT
);
CREATE UNIQUE INDEX api_keys_by_secret_hash ON api_keys (secret_hash);
CREATE INDEX api_keys_by_workspace ON api_keys (workspace_id);

CREATE TABLE sessions (
    id BLOB PRIMARY KEY NOT NULL,
    -- SHA-256 of the cookie value, hex.
    token_hash TEXT NOT NULL,
    user_id BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    workspace_id BLOB NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    csrf_token TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL
);
CREATE UNIQUE INDEX sessions_by_token_hash ON sessions (token_hash);

-- Connected accounts -----------------------------------------------------

-- Connected Google accounts, their encrypted tokens, and OAuth state.

CREATE TABLE oauth_states (
    -- SHA-256 of the `state` sent to Google; the value itself is not stored.
    state_hash TEXT PRIMARY KEY NOT NULL,
    workspace_id BLOB NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    user_id BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    integration_type TEXT NOT NULL,
    code_verifier TEXT NOT NULL,
    requested_scopes TEXT NOT NULL,
    return_to TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    consumed_at TEXT,
    -- Who started it (decision 0013): `session` (the web UI: the consent
    -- must come back to the same signed-in browser) or `api` (an API key or
    -- a JWT: a browser not signed in as the same person confirms on a
    -- Mailwright page before anything is stored).
    started_by TEXT NOT NULL DEFAULT 'api'
);

CREATE TABLE integrations (
    id BLOB PRIMARY KEY NOT NULL,
    workspace_id BLOB NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    -- Who connected it.
    user_id BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    provider TEXT NOT NULL,
    integration_type TEXT NOT NULL,
    -- Google's `sub` for the account: reconnecting the same account updates this row.
    provider_account_id TEXT NOT NULL,
    email TEXT NOT NULL,
    display_name TEXT,
    -- connected | missing_scopes | needs_reauth | disconnected
    status TEXT NOT NULL,
    -- Space-delimited, as Google writes them.
    granted_scopes TEXT NOT NULL,
    last_error_code TEXT,
    last_error_message TEXT,
    last_error_at TEXT,
    connected_at TEXT NOT NULL,
    last_used_at TEXT,
    updated_at TEXT NOT NULL,
    -- The address lowered: a push names only the mailbox's address
    -- (PostgreSQL's baseline says why it is a column).
    email_key TEXT GENERATED ALWAYS AS (LOWER(email)) VIRTUAL
);
CREATE UNIQUE INDEX integrations_by_account
    ON integrations (workspace_id, provider, integration_type, provider_account_id);
CREATE INDEX integrations_by_user ON integrations (workspace_id, user_id, integration_type);
CREATE INDEX integrations_by_address ON integrations (email_key);

CREATE TABLE oauth_tokens (
    integration_id BLOB PRIMARY KEY NOT NULL REFERENCES integrations (id) ON DELETE CASCADE,
    workspace_id BLOB NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    -- Each token: the id of the key that encrypted it, and nonce + ciphertext.
    access_key_id TEXT NOT NULL,
    access_token BLOB NOT NULL,
    refresh_key_id TEXT,
    refresh_token BLOB,
    expires_at TEXT NOT NULL,
    -- Bumped on every write; a refresh writes only over the version it read.
    version INTEGER NOT NULL,
    -- Who is refreshing right now, and until when (one refresh at a time).
    refresh_lease_token BLOB,
    refresh_lease_until TEXT,
    updated_at TEXT NOT NULL
);

-- A value encrypted under each key when it is first used: a wrong key with a
-- known id is caught at start, not when tokens turn out unreadable.
CREATE TABLE encryption_key_checks (
    key_id TEXT PRIMARY KEY NOT NULL,
    check_value BLOB NOT NULL,
    created_at TEXT NOT NULL
);

-- System email -----------------------------------------------------------

-- Mailwright's own email: every notice is a row (the outbox) before it is
-- delivered through the job queue, so a provider outage delays mail but never
-- loses it, and a self-hoster without a provider still sees it.
CREATE TABLE system_emails (
    id BLOB PRIMARY KEY NOT NULL,
    workspace_id BLOB REFERENCES workspaces (id) ON DELETE CASCADE,
    -- e.g. integration_needs_reauth, integration_missing_scopes
    kind TEXT NOT NULL,
    -- One email per episode: a second notice for the same episode is not queued.
    dedupe_key TEXT,
    to_address TEXT,
    subject TEXT NOT NULL,
    text_body TEXT NOT NULL,
    html_body TEXT,
    -- queued | sent | failed | undeliverable
    status TEXT NOT NULL,
    provider TEXT,
    last_error TEXT,
    created_at TEXT NOT NULL,
    sent_at TEXT
);
CREATE UNIQUE INDEX system_emails_by_dedupe_key ON system_emails (dedupe_key) WHERE dedupe_key IS NOT NULL;
CREATE INDEX system_emails_by_workspace ON system_emails (workspace_id, created_at);

-- Workflows --------------------------------------------------------------

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
    updated_at TEXT NOT NULL,
    -- When a scheduled workflow runs next (UTC); NULL for other triggers.
    next_run_at TEXT
);
CREATE INDEX workflows_by_workspace ON workflows (workspace_id, created_at);
CREATE INDEX workflows_due ON workflows (next_run_at) WHERE next_run_at IS NOT NULL;

CREATE TABLE workflow_runs (
    id BLOB PRIMARY KEY NOT NULL,
    workspace_id BLOB NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    workflow_id BLOB NOT NULL REFERENCES workflows (id) ON DELETE CASCADE,
    -- queued | running | retrying | succeeded | failed
    status TEXT NOT NULL,
    trigger_kind TEXT NOT NULL,
    input TEXT NOT NULL,
    -- [{"index","action","status","output","error","definition"}]
    steps TEXT NOT NULL,
    error_code TEXT,
    error_message TEXT,
    idempotency_key TEXT,
    created_at TEXT NOT NULL,
    finished_at TEXT,
    -- How many times a worker has started the run. A start after the first
    -- may follow an attempt that reached the mailbox without recording it,
    -- so it looks the message up before sending again. Counted by the
    -- statement that reads the run for the worker: no write of its own.
    starts INTEGER NOT NULL DEFAULT 0,
    -- While retrying: when the next attempt is due (decision 0012).
    next_attempt_at TEXT
);
CREATE INDEX workflow_runs_by_workflow ON workflow_runs (workspace_id, workflow_id, created_at);
-- The same Idempotency-Key on the same workflow is the same run.
CREATE UNIQUE INDEX workflow_runs_by_idempotency_key ON workflow_runs (workflow_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;

-- Auto-draft -------------------------------------------------------------

-- Auto-draft: per-mailbox settings and sync cursor, every inbound message it
-- saw (with what became of it), the drafts it created, and notable events.

CREATE TABLE autodraft_mailboxes (
    integration_id BLOB PRIMARY KEY NOT NULL REFERENCES integrations (id) ON DELETE CASCADE,
    workspace_id BLOB NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    enabled INTEGER NOT NULL,
    -- The mailbox's change cursor (Gmail's historyId) the next sync starts
    -- from; only moves forward.
    history_id INTEGER,
    enabled_at TEXT,
    next_poll_at TEXT,
    -- A push (or poll) asked for a sync after this time: a sync that started
    -- earlier runs once more, so no notification is lost.
    sync_requested_at TEXT,
    last_synced_at TEXT,
    -- The last mailbox-level failure (a sync that could not run).
    last_failure_code TEXT,
    last_failure_message TEXT,
    last_failure_at TEXT,
    -- Set while the failure-rate alert is firing (one notice per episode).
    alert_active_since TEXT,
    updated_at TEXT NOT NULL
);
CREATE INDEX autodraft_mailboxes_due ON autodraft_mailboxes (enabled, next_poll_at);

CREATE TABLE autodraft_messages (
    id BLOB PRIMARY KEY NOT NULL,
    workspace_id BLOB NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    integration_id BLOB NOT NULL REFERENCES integrations (id) ON DELETE CASCADE,
    gmail_message_id TEXT NOT NULL,
    thread_id TEXT NOT NULL,
    -- pending | creating (drafts.create may have happened) | drafted | skipped | failed
    status TEXT NOT NULL,
    -- Skip reason or failure code; the message for people.
    reason TEXT,
    detail TEXT,
    -- What the generator said, kept from before drafts.create so a retry
    -- that adopts an existing draft records the same thing.
    draft_type TEXT,
    draft_type_label TEXT,
    generator TEXT,
    discovered_at TEXT NOT NULL,
    finished_at TEXT,
    -- While waiting for its next attempt: when that is (`reason` and
    -- `detail` say what went wrong last time).
    next_attempt_at TEXT
);
CREATE UNIQUE INDEX autodraft_messages_by_gmail_id ON autodraft_messages (integration_id, gmail_message_id);
CREATE INDEX autodraft_messages_outcomes ON autodraft_messages (integration_id, finished_at);

-- Draft types are an open vocabulary: no CHECK list, on purpose.
CREATE TABLE draft_metadata (
    id BLOB PRIMARY KEY NOT NULL,
    workspace_id BLOB NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    integration_id BLOB NOT NULL REFERENCES integrations (id) ON DELETE CASCADE,
    source_message_id TEXT NOT NULL,
    source_rfc822_message_id TEXT,
    thread_id TEXT NOT NULL,
    provider_draft_id TEXT NOT NULL,
    -- A known type's name, or 'other'.
    draft_type TEXT NOT NULL,
    -- The generator's label as given.
    draft_type_label TEXT NOT NULL,
    generator TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE UNIQUE INDEX draft_metadata_by_source ON draft_metadata (integration_id, source_message_id);
CREATE INDEX draft_metadata_recent ON draft_metadata (integration_id, created_at);

CREATE TABLE autodraft_events (
    id BLOB PRIMARY KEY NOT NULL,
    workspace_id BLOB NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    integration_id BLOB NOT NULL REFERENCES integrations (id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    message TEXT NOT NULL,
    at TEXT NOT NULL
);
CREATE INDEX autodraft_events_recent ON autodraft_events (integration_id, at);
