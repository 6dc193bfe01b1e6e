-- Outbound webhooks (Standard Webhooks): a workspace's endpoints, and one
-- delivery row per event per endpoint, delivered by a `webhook.deliver` job.
CREATE TABLE webhook_endpoints (
    id UUID PRIMARY KEY NOT NULL,
    workspace_id UUID NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    url TEXT NOT NULL,
    description TEXT NOT NULL,
    -- JSON array of event type names.
    events JSONB NOT NULL,
    -- The signing secret, encrypted like OAuth tokens (key id + ciphertext).
    secret_key_id TEXT NOT NULL,
    secret BYTEA NOT NULL,
    enabled BOOLEAN NOT NULL,
    -- Why it was switched off by Mailwright (a day of failed deliveries).
    disabled_reason TEXT,
    -- Since when every delivery has failed; NULL after a success.
    failing_since TIMESTAMPTZ,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX webhook_endpoints_by_workspace ON webhook_endpoints (workspace_id, created_at);

CREATE TABLE webhook_deliveries (
    id UUID PRIMARY KEY NOT NULL,
    workspace_id UUID NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    endpoint_id UUID NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    -- The event's id, sent as `webhook-id` (the same on every attempt).
    event_id TEXT NOT NULL,
    event_type TEXT NOT NULL,
    -- The exact body sent: ids and states, never tokens or message bodies.
    payload TEXT NOT NULL,
    -- pending | delivered | failed
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    -- The last answer's status code, and a short excerpt of its body or why
    -- there was no answer.
    response_status INTEGER,
    last_error TEXT,
    next_attempt_at TIMESTAMPTZ,
    -- When the first attempt ended: an endpoint failing since then has
    -- failed every attempt of this delivery.
    first_attempt_at TIMESTAMPTZ,
    created_at TIMESTAMPTZ NOT NULL,
    finished_at TIMESTAMPTZ
);
CREATE INDEX webhook_deliveries_by_endpoint ON webhook_deliveries (endpoint_id, created_at);

ALTER TABLE webhook_endpoints ENABLE ROW LEVEL SECURITY;
ALTER TABLE webhook_endpoints FORCE ROW LEVEL SECURITY;
CREATE POLICY workspace_isolation ON webhook_endpoints USING (mailwright_row_visible(workspace_id));

ALTER TABLE webhook_deliveries ENABLE ROW LEVEL SECURITY;
ALTER TABLE webhook_deliveries FORCE ROW LEVEL SECURITY;
CREATE POLICY workspace_isolation ON webhook_deliveries USING (mailwright_row_visible(workspace_id));
