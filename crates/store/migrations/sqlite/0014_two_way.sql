-- Two-way editing (`ferry_core::twoway`). `items.two_way`: the item's setting as JSON
-- ({"conflict_policy": ...}), NULL when off; on a copy, as its origin set it.
ALTER TABLE items ADD COLUMN two_way TEXT;
-- `rows.twoway`: at the origin of a two-way item, the row's change stamps per field, its life
-- and the `seen` map of editors (its version is `seq`); on a copy, the row's version at the
-- origin and that `seen` map, as received. `rows.pending`: on a copy, the local edit the origin
-- has not judged yet. NULL for every row of an item that is not two-way.
ALTER TABLE rows ADD COLUMN twoway TEXT;
ALTER TABLE rows ADD COLUMN pending TEXT;
-- A copy's edits on their way back: its sender finds them here, not among every row received.
CREATE INDEX rows_pending ON rows(space_rid, seq) WHERE pending IS NOT NULL;

-- Conflicts found at an item's origin, with both versions of the row.
CREATE TABLE conflicts (
    id           TEXT PRIMARY KEY,
    item_rid     INTEGER NOT NULL,
    key          ANY NOT NULL,
    kind         TEXT NOT NULL,
    body         TEXT NOT NULL,
    status       TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    resolved_at  TEXT,
    resolved_by  TEXT
) STRICT;
CREATE INDEX conflicts_by_status ON conflicts(status, created_at);
