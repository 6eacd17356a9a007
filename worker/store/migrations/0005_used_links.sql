-- Opt-out links (worker/classify/links.py) are confirmed once: the id of each confirmed link is
-- recorded here before its block is produced, so a double click or a replayed POST produces nothing
-- twice. The links themselves are not stored (the signed token is the state). A row can be deleted
-- once the link has expired (used_at + its lifetime, at most 400 days); nothing deletes them yet.
CREATE TABLE used_links (
    link_id    text        PRIMARY KEY,
    account_id text        NOT NULL,
    used_at    timestamptz NOT NULL DEFAULT now()
);
