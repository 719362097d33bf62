-- A duplicate drop names the run that imported those bytes (NULL: they still wait for a run), so
-- the history can show it as an entry of its own (producers/duplicates.py).
ALTER TABLE sync.file_drops ADD COLUMN duplicate_of_run bigint;
CREATE INDEX file_drops_duplicates ON sync.file_drops (connection_id, dropped_at) WHERE duplicate;

-- Schedules in hours as well as days (every_hours = every_days * 24 for a daily one), and the
-- access mode their runs take, as `feedsync sync --access` does.
ALTER TABLE sync.schedules
    ADD COLUMN every_hours int CHECK (every_hours >= 1),
    ADD COLUMN access text NOT NULL DEFAULT 'online' CHECK (access IN ('online', 'exclusive'));
UPDATE sync.schedules SET every_hours = every_days * 24;
ALTER TABLE sync.schedules ALTER COLUMN every_hours SET NOT NULL, ALTER COLUMN every_days DROP NOT NULL;

-- A file previewed by `feedsync sync CONNECTION --dry-run --file PATH`: copied into the store for
-- its dry run only, never waiting for a real run, removed when the dry run ends.
ALTER TABLE sync.feed_files ADD COLUMN preview boolean NOT NULL DEFAULT false;
