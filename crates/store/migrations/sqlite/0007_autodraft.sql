-- (SQLite: ids are 16-byte BLOBs, timestamps RFC 3339 text, booleans 0/1.)
-- Auto-draft: per-mailbox settings and sync cursor, every inbound message it
-- saw (with what became of it), the drafts it created, and notable events.

CREATE TABLE autodraft_mailboxes (
    integration_id BLOB PRIMARY KEY NOT NULL REFERENCES integrations (id) ON DELETE CASCADE,
    workspace_id BLOB NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    enabled INTEGER NOT NULL,
    -- Gmail historyId the next sync starts from; only moves forward.
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
    finished_at TEXT
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
