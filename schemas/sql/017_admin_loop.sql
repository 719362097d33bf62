-- A duplicate drop names the run that imported those bytes (NULL: they still wait for a run), so
-- the history can show it as an entry of its own (producers/duplicates.py).
ALTER TABLE sync.file_drops ADD COLUMN duplicate_of_run bigint;
CREATE INDEX file_drops_duplicates ON sync.file_drops (connection_id, dropped_at) WHERE duplicate;
