-- Copies and references. `sync_as`: how links send an item ('link' follows the link's config).
-- `reference`: a received item whose rows stay at its origin and are read from there on demand.
ALTER TABLE items ADD COLUMN sync_as TEXT NOT NULL DEFAULT 'link';
ALTER TABLE items ADD COLUMN reference INTEGER NOT NULL DEFAULT 0;
-- How each link brings an item: an item is a reference only while every link brings it as one
-- (a copy from any link wins, and keeps its rows).
ALTER TABLE item_arrivals ADD COLUMN reference INTEGER NOT NULL DEFAULT 0;
-- Which channel of the link last brought the item: a collaboration host pulls one link from
-- several guests, and a full pass from one of them must not retract what another brings.
ALTER TABLE item_arrivals ADD COLUMN channel TEXT;
