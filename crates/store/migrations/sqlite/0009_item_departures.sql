-- Items moved out of a space: the space's feed says so at `seq` (`RawChange::ItemLeft`), so
-- its receivers retract the item. An item that comes back removes its entry. Kept by item id,
-- not by reference to `items`, so the entry outlives the item (deleted later elsewhere).
CREATE TABLE item_departures (
    space_rid INTEGER NOT NULL REFERENCES spaces(rid) ON DELETE CASCADE,
    item_id   TEXT NOT NULL,
    seq       INTEGER NOT NULL,
    PRIMARY KEY (space_rid, item_id)
) STRICT, WITHOUT ROWID;
CREATE INDEX item_departures_by_space_seq ON item_departures (space_rid, seq);
