-- What became of each draft Mailwright created, found from the mailbox:
-- pending, sent_unchanged, sent_edited (with how much of the reply
-- changed, in percent), deleted, or cleaned_up (deleted by Mailwright's
-- opt-in clean-up). `reply_text` is the reply Mailwright wrote (never the
-- answered message), which the sent or current text is compared with.
ALTER TABLE draft_metadata ADD COLUMN reply_text TEXT;
ALTER TABLE draft_metadata ADD COLUMN outcome TEXT NOT NULL DEFAULT 'pending';
ALTER TABLE draft_metadata ADD COLUMN outcome_at TIMESTAMPTZ;
ALTER TABLE draft_metadata ADD COLUMN changed_percent INTEGER;
ALTER TABLE draft_metadata ADD COLUMN outcome_checked_at TIMESTAMPTZ;
CREATE INDEX draft_metadata_pending ON draft_metadata (integration_id, outcome_checked_at)
    WHERE outcome = 'pending';

-- The mailbox's opt-in clean-up of stale untouched drafts: off, or after
-- how many days a draft nobody touched is deleted.
ALTER TABLE autodraft_mailboxes ADD COLUMN cleanup_after_days INTEGER;

-- When the mailbox's drafts were last looked at for their outcome.
ALTER TABLE autodraft_mailboxes ADD COLUMN outcomes_checked_at TIMESTAMPTZ;
