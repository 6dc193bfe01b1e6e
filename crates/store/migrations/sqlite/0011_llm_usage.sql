-- The language model's tokens per mailbox, UTC day and model: the daily
-- budget is checked against it, and the API and page show it.
CREATE TABLE llm_usage (
    workspace_id BLOB NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    integration_id BLOB NOT NULL REFERENCES integrations (id) ON DELETE CASCADE,
    day TEXT NOT NULL,
    model TEXT NOT NULL,
    tokens INTEGER NOT NULL,
    calls INTEGER NOT NULL,
    PRIMARY KEY (integration_id, day, model)
);
