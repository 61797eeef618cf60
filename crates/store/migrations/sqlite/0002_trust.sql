-- Network policy: who may call this instance (ingress) and whom it may call (egress).
CREATE TABLE policy_rules (
    id         TEXT PRIMARY KEY,
    direction  TEXT NOT NULL,
    effect     TEXT NOT NULL,
    pattern    TEXT NOT NULL,
    created_at TEXT NOT NULL,
    UNIQUE (direction, effect, pattern)
) STRICT;

-- Trust and security events, in order. Never updated, never deleted.
CREATE TABLE audit_log (
    seq     INTEGER PRIMARY KEY AUTOINCREMENT,
    at      TEXT NOT NULL,
    actor   TEXT NOT NULL,
    event   TEXT NOT NULL,
    subject TEXT,
    detail  TEXT NOT NULL
) STRICT;

-- Nonces of signed requests seen within the clock window, to refuse replays.
CREATE TABLE seen_nonces (
    key_id     TEXT NOT NULL,
    nonce      BLOB NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (key_id, nonce)
) STRICT, WITHOUT ROWID;
CREATE INDEX seen_nonces_by_expiry ON seen_nonces(expires_at);
