-- The markings each link gave an item when it last brought it (the origin's markings plus the
-- link's own marks). An item received over several links carries all of them together, so a
-- second link never lowers what the first one marked.
ALTER TABLE item_arrivals ADD COLUMN markings TEXT;
UPDATE item_arrivals SET markings = (SELECT markings FROM items WHERE items.rid = item_rid);
