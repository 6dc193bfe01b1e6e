-- Auto-draft: per-mailbox settings and sync cursor, every inbound message it
-- saw (with what became of it), the drafts it created, and notable events.

CREATE TABLE autodraft_mailboxes (
    integration_id UUID PRIMARY KEY NOT NULL REFERENCES integrations (id) ON DELETE CASCADE,
    workspace_id UUID NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    enabled BOOLEAN NOT NULL,
    -- Gmail historyId the next sync starts from; only moves forward.
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

CREATE TABLE autodraft_messages (
    id UUID PRIMARY KEY NOT NULL,
    workspace_id UUID NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    integration_id UUID NOT NULL REFERENCES integrations (id) ON DELETE CASCADE,
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
    discovered_at TIMESTAMPTZ NOT NULL,
    finished_at TIMESTAMPTZ
);
CREATE UNIQUE INDEX autodraft_messages_by_gmail_id ON autodraft_messages (integration_id, gmail_message_id);
CREATE INDEX autodraft_messages_outcomes ON autodraft_messages (integration_id, finished_at);

-- Draft types are an open vocabulary: no CHECK list, on purpose.
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

CREATE TABLE autodraft_events (
    id UUID PRIMARY KEY NOT NULL,
    workspace_id UUID NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    integration_id UUID NOT NULL REFERENCES integrations (id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    message TEXT NOT NULL,
    at TIMESTAMPTZ NOT NULL
);
CREATE INDEX autodraft_events_recent ON autodraft_events (integration_id, at);

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
