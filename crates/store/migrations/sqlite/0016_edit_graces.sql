-- Inbound channels whose sender lost the right to edit this instance's two-way items of some
-- types (its mode dropped below send and receive, or the workspace stopped being two-way): the
-- edits it made before `until_ms` still come, at the channel's next completed run, which ends
-- the grace. `types`: the data types as their comma-separated names.
CREATE TABLE edit_graces (
    channel  TEXT PRIMARY KEY,
    types    TEXT NOT NULL,
    until_ms INTEGER NOT NULL
) STRICT;
