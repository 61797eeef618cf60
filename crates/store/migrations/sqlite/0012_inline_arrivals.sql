-- Items new to a channel whose rows come inline in its stream, held until the stream's end: a
-- batch may commit part of such an item, and a relaying instance passes none of it on before
-- the rest is here.
CREATE TABLE sync_inline_arrivals (
    channel  TEXT NOT NULL,
    item_rid INTEGER NOT NULL,
    PRIMARY KEY (channel, item_rid)
) STRICT;
