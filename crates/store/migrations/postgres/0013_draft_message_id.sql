-- The id of the message a draft held when Mailwright made it: Gmail
-- replaces a draft's message on every save, so the clean-up deletes only
-- a draft that still holds this one (untouched).
ALTER TABLE draft_metadata ADD COLUMN draft_message_id TEXT;
