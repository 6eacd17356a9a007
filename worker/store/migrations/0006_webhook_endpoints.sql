-- Webhook endpoints (issue 11): where the dispatcher sends an account's blocklist changes.
-- The secret is stored as is: the dispatcher needs it to compute every request's HMAC (a hash
-- would not do). Grant this table only to the roles of the dispatcher and of `optout webhook`.
-- Removing an endpoint sets disabled_at (kept for the record); the dispatcher loads only enabled ones.
CREATE TABLE webhook_endpoints (
    id          bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account_id  text        NOT NULL CHECK (account_id <> ''),
    url         text        NOT NULL CHECK (url ~ '^https?://'),
    secret      text        NOT NULL CHECK (length(secret) >= 16),
    -- Block categories wanted ('all', 'marketing'); empty: every category.
    categories  text[]      NOT NULL DEFAULT '{}' CHECK (categories <@ ARRAY['all', 'marketing']::text[]),
    created_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    disabled_at timestamptz
);

CREATE INDEX webhook_endpoints_enabled ON webhook_endpoints (account_id) WHERE disabled_at IS NULL;
