-- Where the map finds a feature: its thinning tier and quadtree cell in one integer
-- (`ferry_core::tiles::map_cell`), NULL for a row without a bounding box (dataset rows, null
-- geometries, tombstones). The index serves a map tile a tier at a time from a range of cells;
-- only features carry an entry. Rows written before this version get theirs from the
-- migration's hook, which computes them in Rust.
ALTER TABLE rows ADD COLUMN map_cell INTEGER;
CREATE INDEX rows_by_map_cell ON rows(item_rid, map_cell) WHERE map_cell IS NOT NULL;
