-- How a guest's link to a workspace sends its own feature layers: `copies`, `references`, or
-- `workspace` (as the host set the workspace).
ALTER TABLE collab_links ADD COLUMN share TEXT NOT NULL DEFAULT 'workspace';
