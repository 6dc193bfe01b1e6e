-- The mailbox a new-mail workflow watches (NULL for other triggers): its
-- mailbox is synced while such a workflow is enabled, with auto-draft on or
-- off, and each message found starts each matching workflow once.
ALTER TABLE workflows ADD COLUMN watched_integration_id BLOB;
CREATE INDEX workflows_watching ON workflows (watched_integration_id)
    WHERE watched_integration_id IS NOT NULL;
