-- Categories: a block stops every message ('all') or marketing only ('marketing'). The category is
-- part of a block's identity, so a subscriber who sent STOP MARKETING and then STOP holds two
-- blocks, and START lifts both. Rows from before categories are full blocks.
--
-- Changes that are not inbound messages (an operator's block, an import, the API, an opt-out link)
-- have no source record: the source columns become optional, and such changes carry a note.
ALTER TABLE blocklist_history
    ADD COLUMN category text NOT NULL DEFAULT 'all' CHECK (category IN ('all', 'marketing')),
    ADD COLUMN note text,
    ALTER COLUMN source_topic DROP NOT NULL,
    ALTER COLUMN source_partition DROP NOT NULL,
    ALTER COLUMN source_offset DROP NOT NULL,
    ALTER COLUMN source_message_id DROP NOT NULL;

ALTER TABLE blocklist_state
    ADD COLUMN category text NOT NULL DEFAULT 'all' CHECK (category IN ('all', 'marketing')),
    ADD COLUMN note text,
    ALTER COLUMN source_topic DROP NOT NULL,
    ALTER COLUMN source_partition DROP NOT NULL,
    ALTER COLUMN source_offset DROP NOT NULL,
    ALTER COLUMN source_message_id DROP NOT NULL,
    DROP CONSTRAINT blocklist_state_pkey,
    ADD PRIMARY KEY (address, account_id, level, subaccount_id, sender, channel, category);
