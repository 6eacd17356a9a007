-- API tokens (`optout token create|list|revoke`, `optout api`): one row per token, bound to one
-- account. Only the sha256 of the secret is kept, never the secret: the table alone opens nothing.
-- A revoked token keeps its row (revoked_at), so `optout token list` still says who it was.
CREATE TABLE api_tokens (
    token_id      text COLLATE "C" PRIMARY KEY,
    account_id    text        NOT NULL,
    secret_sha256 bytea       NOT NULL CHECK (octet_length(secret_sha256) = 32),
    name          text        NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    revoked_at    timestamptz,
    last_used_at  timestamptz
);

CREATE INDEX api_tokens_account ON api_tokens (account_id);

-- GET /v1/blocks lists one account's active blocks in primary-key order (keyset pagination). The
-- primary key leads with the address, so without this index a page would scan every account's
-- rows; partial (active only), so unblocked tombstones cost it nothing.
CREATE INDEX blocklist_state_account_active
    ON blocklist_state (account_id, address, level, subaccount_id, sender, channel, category)
    WHERE active;
