-- The language model's tokens per mailbox, UTC day and model: the daily
-- budget is checked against it, and the API and page show it.
CREATE TABLE llm_usage (
    workspace_id UUID NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    integration_id UUID NOT NULL REFERENCES integrations (id) ON DELETE CASCADE,
    day DATE NOT NULL,
    model TEXT NOT NULL,
    tokens BIGINT NOT NULL,
    calls BIGINT NOT NULL,
    PRIMARY KEY (integration_id, day, model)
);
ALTER TABLE llm_usage ENABLE ROW LEVEL SECURITY;
ALTER TABLE llm_usage FORCE ROW LEVEL SECURITY;
CREATE POLICY workspace_isolation ON llm_usage USING (mailwright_row_visible(workspace_id));
