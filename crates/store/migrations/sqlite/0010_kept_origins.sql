-- Received items kept after the last link that brought them let go (delete policy `keep`).
-- They keep their origin: they stay copies (changed only at the origin), never go back to it,
-- and an item that comes back is found again instead of arriving a second time.
CREATE TABLE kept_origins (
    item_rid        INTEGER PRIMARY KEY REFERENCES items(rid) ON DELETE CASCADE,
    origin_instance TEXT NOT NULL,
    origin_item     TEXT NOT NULL
) STRICT;
CREATE INDEX kept_origins_by_origin ON kept_origins (origin_item, origin_instance);
