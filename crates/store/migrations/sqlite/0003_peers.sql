-- Peer connections, one row per connection as this instance sees it. Both sides share
-- `request_id` (from the invite code); each keeps its own `id`.
CREATE TABLE peer_connections (
    id               TEXT PRIMARY KEY,
    role             TEXT NOT NULL,
    request_id       TEXT NOT NULL,
    phase            TEXT NOT NULL,
    disabled_here    INTEGER NOT NULL DEFAULT 0,
    disabled_there   INTEGER NOT NULL DEFAULT 0,
    space_rid        INTEGER REFERENCES spaces(rid),
    offered_space    TEXT NOT NULL,
    sends            TEXT NOT NULL,
    receives         TEXT NOT NULL,
    peer_instance_id TEXT,
    peer_title       TEXT,
    peer_url         TEXT,
    peer_public_key  BLOB,
    -- Originator: BLAKE3 of the current code's one-time secret. Acceptor: the secret itself, to
    -- prove possession when it responds.
    secret           BLOB,
    expires_at       INTEGER,
    -- JSON: the markings ceiling for what this side sends, the markings given to what it receives.
    security         TEXT NOT NULL DEFAULT '{}',
    -- JSON: a security change one side proposed and the other has not yet approved.
    pending_security TEXT,
    -- Bumped by every update: an update based on an older read is refused.
    version          INTEGER NOT NULL DEFAULT 0,
    created_at       TEXT NOT NULL,
    updated_at       TEXT NOT NULL,
    UNIQUE (role, request_id)
) STRICT;
