-- Instance-wide settings: instance_id, epoch, seq (the last change sequence handed out).
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) STRICT;

CREATE TABLE tokens (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    role        TEXT NOT NULL,
    secret_hash BLOB NOT NULL UNIQUE,
    created_at  TEXT NOT NULL,
    revoked_at  TEXT
) STRICT;

CREATE TABLE spaces (
    rid         INTEGER PRIMARY KEY,
    id          TEXT NOT NULL UNIQUE,
    name        TEXT NOT NULL UNIQUE,
    description TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
) STRICT;

-- Deleted items stay as tombstones (deleted = 1) so the change feed can report them.
CREATE TABLE items (
    rid           INTEGER PRIMARY KEY,
    id            TEXT NOT NULL UNIQUE,
    space_rid     INTEGER NOT NULL REFERENCES spaces(rid),
    kind          TEXT NOT NULL,
    title         TEXT NOT NULL,
    description   TEXT NOT NULL,
    tags          TEXT NOT NULL,
    markings      TEXT NOT NULL,
    owner         TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL,
    version       INTEGER NOT NULL,
    seq           INTEGER NOT NULL,
    deleted       INTEGER NOT NULL DEFAULT 0,
    schema        TEXT,
    geometry_type TEXT,
    crs           TEXT,
    file          TEXT,
    row_count     INTEGER NOT NULL DEFAULT 0
) STRICT;
CREATE INDEX items_by_space_seq ON items(space_rid, seq);

-- Rows of datasets and features of layers. `key` is an integer or text (ANY keeps the type, so
-- integer keys sort numerically). Deleted rows stay as tombstones (deleted = 1, no values).
-- `space_rid` repeats the item's space so that a space's change feed is one index range.
CREATE TABLE rows (
    item_rid INTEGER NOT NULL,
    space_rid INTEGER NOT NULL,
    key      ANY NOT NULL,
    seq      INTEGER NOT NULL,
    deleted  INTEGER NOT NULL DEFAULT 0,
    vals     TEXT,
    geom     TEXT,
    min_x    REAL,
    min_y    REAL,
    max_x    REAL,
    max_y    REAL,
    PRIMARY KEY (item_rid, key)
) STRICT, WITHOUT ROWID;
CREATE INDEX rows_by_space_seq ON rows(space_rid, seq);

CREATE TABLE file_chunks (
    item_rid INTEGER NOT NULL,
    idx      INTEGER NOT NULL,
    hash     TEXT NOT NULL,
    len      INTEGER NOT NULL,
    PRIMARY KEY (item_rid, idx)
) STRICT, WITHOUT ROWID;
CREATE INDEX file_chunks_by_hash ON file_chunks(hash);
