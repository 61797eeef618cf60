-- Send runs: what this instance served for one run of the other side (`peer_run`), added up
-- over that run's requests. Receive runs keep `direction = 'receive'` and no `peer_run`.
ALTER TABLE sync_runs ADD COLUMN direction TEXT NOT NULL DEFAULT 'receive';
ALTER TABLE sync_runs ADD COLUMN peer_run TEXT;
ALTER TABLE sync_runs ADD COLUMN items_sent INTEGER NOT NULL DEFAULT 0;
ALTER TABLE sync_runs ADD COLUMN rows_sent INTEGER NOT NULL DEFAULT 0;
ALTER TABLE sync_runs ADD COLUMN bytes_sent INTEGER NOT NULL DEFAULT 0;
CREATE UNIQUE INDEX sync_runs_by_peer_run ON sync_runs (link, peer_run)
    WHERE peer_run IS NOT NULL;
-- Each direction's newest runs of a link, read by the scheduler and pruned after each run.
CREATE INDEX sync_runs_by_link_direction ON sync_runs (link, direction, started_at);
