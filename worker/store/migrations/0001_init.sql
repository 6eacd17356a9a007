-- Blocklist history, current state and projector offsets.
--
-- Ids are compared and ordered with COLLATE "C" (byte order) so Postgres breaks last-writer-wins
-- ties exactly like worker.ordering.version does in Python, whatever the database's collation.

-- Every change event ever applied, append-only: the audit trail an operator or a carrier asks for.
CREATE TABLE blocklist_history (
    event_id          text COLLATE "C" PRIMARY KEY,
    action            text        NOT NULL CHECK (action IN ('block', 'unblock')),
    level             text        NOT NULL CHECK (level IN ('account', 'subaccount', 'sender')),
    account_id        text        NOT NULL,
    subaccount_id     text,
    sender            text,
    channel           text        NOT NULL,
    address           text        NOT NULL,
    keyword           text,
    rule              text,
    reason            text        NOT NULL,
    source_topic      text        NOT NULL,
    source_partition  integer     NOT NULL,
    source_offset     bigint      NOT NULL,
    source_message_id text        NOT NULL,
    occurred_at       timestamptz NOT NULL,
    applied_at        timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX blocklist_history_address_occurred_at ON blocklist_history (address, occurred_at);

-- The latest event per block identity. Unblocks are kept as inactive rows (tombstones): without
-- them an older block arriving after a newer unblock would find no row to lose against.
-- subaccount_id and sender hold '' when absent, because primary key columns cannot be NULL.
-- The key leads with (address, account_id), so it is also the index that check() and blocks() use.
CREATE TABLE blocklist_state (
    address           text        NOT NULL,
    account_id        text        NOT NULL,
    level             text        NOT NULL CHECK (level IN ('account', 'subaccount', 'sender')),
    subaccount_id     text        NOT NULL DEFAULT '',
    sender            text        NOT NULL DEFAULT '',
    channel           text        NOT NULL,
    action            text        NOT NULL CHECK (action IN ('block', 'unblock')),
    action_rank       smallint    NOT NULL CHECK (action_rank = CASE action WHEN 'block' THEN 1 ELSE 0 END),
    active            boolean     GENERATED ALWAYS AS (action = 'block') STORED,
    occurred_at       timestamptz NOT NULL,
    event_id          text COLLATE "C" NOT NULL,
    keyword           text,
    rule              text,
    reason            text        NOT NULL,
    source_topic      text        NOT NULL,
    source_partition  integer     NOT NULL,
    source_offset     bigint      NOT NULL,
    source_message_id text        NOT NULL,
    updated_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (address, account_id, level, subaccount_id, sender, channel)
);

-- Where the projector resumes: stored in the same transaction as the rows, so a crash can never
-- leave the state ahead of or behind the offsets.
CREATE TABLE consumer_offsets (
    consumer_group text        NOT NULL,
    topic          text        NOT NULL,
    partition      integer     NOT NULL,
    next_offset    bigint      NOT NULL CHECK (next_offset >= 0),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer_group, topic, partition)
);
