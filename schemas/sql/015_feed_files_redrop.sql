-- The same bytes may be registered again: an older full feed dropped after a newer one imports
-- (to repair what the newer one did), and so do the bytes of a rejected file or a failed run.
-- Whether a drop is a duplicate is decided at intake under a per-connection lock
-- (producers/registry.py, _DUPLICATE_OF); sync.file_drops keeps every drop, duplicates included.
ALTER TABLE sync.feed_files DROP CONSTRAINT feed_files_connection_id_sha256_key;
CREATE INDEX feed_files_sha256 ON sync.feed_files (connection_id, sha256);
