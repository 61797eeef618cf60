-- Sync: where each inbound channel stands, items waiting for a full copy (or quarantined with
-- an error), and the history of runs.
-- Where the feed stood when an item was created: a receiver whose cursor is older gets all of
-- its rows in the stream, so it needs no separate whole copy.
ALTER TABLE items ADD COLUMN created_seq INTEGER NOT NULL DEFAULT 0;

CREATE INDEX item_arrivals_by_origin ON item_arrivals (origin_item, origin_instance);

-- A full resync marks a link's arrivals stale; an item the pass brings is fresh again, and the
-- end of the pass retracts what is still stale.
ALTER TABLE item_arrivals ADD COLUMN stale INTEGER NOT NULL DEFAULT 0;

CREATE TABLE sync_cursors (
    channel    TEXT PRIMARY KEY,
    epoch      TEXT NOT NULL,
    scope      TEXT NOT NULL,
    seq        INTEGER NOT NULL,
    -- Set during a full pass: rows of an item older than its copy start are swept at the end.
    resync     INTEGER NOT NULL DEFAULT 0,
    updated_at TEXT NOT NULL
) STRICT;

-- Items of a channel to copy whole at the next run: new to this instance with rows older than
-- the cursor, or refused before (`error` says why; the next run tries again).
CREATE TABLE sync_pending (
    channel         TEXT NOT NULL,
    origin_instance TEXT NOT NULL,
    origin_item     TEXT NOT NULL,
    title           TEXT NOT NULL DEFAULT '',
    error_code      TEXT,
    error           TEXT,
    PRIMARY KEY (channel, origin_instance, origin_item)
) STRICT;

-- Where a full pass started copying each item: its older rows are swept at the end.
CREATE TABLE sync_copy_starts (
    channel  TEXT NOT NULL,
    item_rid INTEGER NOT NULL REFERENCES items(rid) ON DELETE CASCADE,
    seq      INTEGER NOT NULL,
    PRIMARY KEY (channel, item_rid)
) STRICT;

CREATE TABLE sync_runs (
    id              TEXT PRIMARY KEY,
    link            TEXT NOT NULL,
    trigger         TEXT NOT NULL,
    status          TEXT NOT NULL,
    started_at      TEXT NOT NULL,
    ended_at        TEXT,
    items_received  INTEGER NOT NULL DEFAULT 0,
    rows_received   INTEGER NOT NULL DEFAULT 0,
    items_retracted INTEGER NOT NULL DEFAULT 0,
    bytes_received  INTEGER NOT NULL DEFAULT 0,
    errors          TEXT NOT NULL DEFAULT '[]',
    message         TEXT
) STRICT;
CREATE INDEX sync_runs_by_link ON sync_runs (link, started_at);

-- Schedules set for links; a link without one syncs once a day.
CREATE TABLE sync_schedules (
    link       TEXT PRIMARY KEY,
    every_secs INTEGER NOT NULL,
    start_at   INTEGER,
    paused     INTEGER NOT NULL DEFAULT 0,
    updated_at TEXT NOT NULL
) STRICT;
