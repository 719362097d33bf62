-- The run journal keeps each changed row as it was before the run: people's data. It is removed
-- FEEDSYNC_JOURNAL_RETENTION_DAYS after the run ended (workers/runs/journal.py, purge); the run then
-- says when, and undo refuses it by that date.
ALTER TABLE sync.runs ADD COLUMN IF NOT EXISTS journal_purged_at timestamptz;
