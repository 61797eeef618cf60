-- Copies and references. `sync_as`: how links send an item ('link' follows the link's config).
-- `reference`: a received item whose rows stay at its origin and are read from there on demand.
ALTER TABLE items ADD COLUMN sync_as TEXT NOT NULL DEFAULT 'link';
ALTER TABLE items ADD COLUMN reference INTEGER NOT NULL DEFAULT 0;
