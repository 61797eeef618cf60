-- Copies whose admin accepted a schema change of their origin that removes or retypes fields
-- (`ferry item accept-schema`): the next description of the item is taken whatever it removes,
-- and the row goes with it.
CREATE TABLE schema_accepts (
    item_rid INTEGER PRIMARY KEY REFERENCES items(rid) ON DELETE CASCADE
) STRICT;
