-- A warning that could not be sent is tried again later, a few times, with growing pauses.
ALTER TABLE sync.notifications
    ADD COLUMN attempts int NOT NULL DEFAULT 1,
    ADD COLUMN next_at timestamptz;
CREATE INDEX notifications_due ON sync.notifications (next_at) WHERE sent_at IS NULL AND next_at IS NOT NULL;
