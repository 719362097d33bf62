-- When a connection, or its schedule, was last switched on: feed alarms count deadlines from then
-- (producers/alarms.py), so a connection enabled again, or a schedule resumed, is not late at once
-- for the days it was off. Set by triggers when `enabled` goes from false to true, so every writer
-- (apply, the console) keeps it; NULL until then (the creation time counts).
ALTER TABLE sync.connections ADD COLUMN IF NOT EXISTS enabled_at timestamptz;
ALTER TABLE sync.schedules ADD COLUMN IF NOT EXISTS enabled_at timestamptz;

CREATE OR REPLACE FUNCTION sync.stamp_enabled_at() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.enabled AND NOT OLD.enabled THEN
        NEW.enabled_at := sync.clock();
    END IF;
    RETURN NEW;
END $$;

DROP TRIGGER IF EXISTS connections_enabled_at ON sync.connections;
CREATE TRIGGER connections_enabled_at BEFORE UPDATE OF enabled ON sync.connections
    FOR EACH ROW EXECUTE FUNCTION sync.stamp_enabled_at();
DROP TRIGGER IF EXISTS schedules_enabled_at ON sync.schedules;
CREATE TRIGGER schedules_enabled_at BEFORE UPDATE OF enabled ON sync.schedules
    FOR EACH ROW EXECUTE FUNCTION sync.stamp_enabled_at();
