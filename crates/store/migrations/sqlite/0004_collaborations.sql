-- Collaborations, one row per collaboration as this instance sees it: a document read and
-- written whole (workspaces, participants and invitations as JSON), guarded by `version`.
CREATE TABLE collaborations (
    id               TEXT PRIMARY KEY,
    role             TEXT NOT NULL,
    name             TEXT NOT NULL,
    description      TEXT NOT NULL,
    state            TEXT NOT NULL,
    host_instance_id TEXT NOT NULL,
    host_title       TEXT NOT NULL,
    host_url         TEXT NOT NULL,
    host_public_key  BLOB NOT NULL,
    self_participant TEXT NOT NULL,
    revision         INTEGER NOT NULL,
    delete_policy    TEXT NOT NULL,
    -- JSON: the markings ceiling for what this instance sends, the markings it gives to what
    -- it receives. This instance's own setting, never sent.
    security         TEXT NOT NULL DEFAULT '{}',
    workspaces       TEXT NOT NULL,
    participants     TEXT NOT NULL,
    invitations      TEXT NOT NULL,
    version          INTEGER NOT NULL DEFAULT 0,
    created_at       TEXT NOT NULL,
    updated_at       TEXT NOT NULL
) STRICT;

-- This instance's own links: which local space takes part in which workspace. Kept apart from
-- the document so a linked space cannot be deleted from under its workspace.
CREATE TABLE collab_links (
    collab_id    TEXT NOT NULL REFERENCES collaborations(id) ON DELETE CASCADE,
    workspace_id TEXT NOT NULL,
    space_rid    INTEGER NOT NULL REFERENCES spaces(rid),
    PRIMARY KEY (collab_id, workspace_id)
) STRICT;

-- Items that arrived from another instance, and by which link. An item that arrived by several
-- links stays until the last of them ends.
CREATE TABLE item_arrivals (
    item_rid        INTEGER NOT NULL REFERENCES items(rid) ON DELETE CASCADE,
    -- `collab:<collaboration id>:<workspace id>` or `peer:<connection id>`.
    link            TEXT NOT NULL,
    origin_instance TEXT NOT NULL,
    origin_item     TEXT NOT NULL,
    PRIMARY KEY (item_rid, link)
) STRICT;
CREATE INDEX item_arrivals_by_link ON item_arrivals (link);
