-- Which language pack and match mode (exact, leading, phrase) decided each change: an auditor
-- asking "why was this subscriber blocked?" gets the rule, the keyword, the language and how the
-- message matched. NULL for events from producers that predate these fields.
ALTER TABLE blocklist_history ADD COLUMN language text, ADD COLUMN match text;
