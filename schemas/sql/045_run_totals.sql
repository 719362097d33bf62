-- Metrics (workers/metrics.py): finished runs and their row counts kept as running totals per
-- connection, kind and final status, so a scrape reads a few rows instead of the whole history.
-- Both only go up, as Prometheus counters must: a run is counted each time it finishes (a failed run
-- replayed and then completed counts once failed and once completed), and each of its rows once
-- (runs.counted_rows remembers what was added for it, so the replay adds only what is new).
CREATE TABLE sync.run_totals (
    connection_name   text NOT NULL,
    kind              text NOT NULL,
    status            text NOT NULL,
    runs              bigint NOT NULL DEFAULT 0,
    rows_read         bigint NOT NULL DEFAULT 0,
    rows_created      bigint NOT NULL DEFAULT 0,
    rows_updated      bigint NOT NULL DEFAULT 0,
    rows_unchanged    bigint NOT NULL DEFAULT 0,
    rows_deactivated  bigint NOT NULL DEFAULT 0,
    rows_rejected     bigint NOT NULL DEFAULT 0,
    last_finished_at  timestamptz,
    PRIMARY KEY (connection_name, kind, status)
);

ALTER TABLE sync.runs ADD COLUMN counted_rows jsonb;

-- A count of a run's counts (0 when absent or not a number).
CREATE FUNCTION sync.count_of(counts jsonb, outcome text) RETURNS bigint LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN jsonb_typeof(counts -> outcome) = 'number' THEN (counts ->> outcome)::numeric::bigint ELSE 0 END
$$;

-- What a finishing run adds to an outcome: its count beyond what was already added for it.
CREATE FUNCTION sync.count_added(now_counts jsonb, counted jsonb, outcome text) RETURNS bigint LANGUAGE sql IMMUTABLE AS $$
    SELECT greatest(0, sync.count_of(now_counts, outcome) - sync.count_of(counted, outcome))
$$;

CREATE FUNCTION sync.count_finished_run() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    counted jsonb := '{}';
    newly boolean := true;
BEGIN
    IF TG_OP = 'UPDATE' THEN
        counted := coalesce(OLD.counted_rows, '{}');
        newly := OLD.status IS DISTINCT FROM NEW.status;
    END IF;
    INSERT INTO sync.run_totals AS t
        (connection_name, kind, status, runs, rows_read, rows_created, rows_updated, rows_unchanged,
         rows_deactivated, rows_rejected, last_finished_at)
    VALUES (NEW.connection_name, NEW.kind, NEW.status, CASE WHEN newly THEN 1 ELSE 0 END,
            sync.count_added(NEW.counts, counted, 'read'), sync.count_added(NEW.counts, counted, 'created'),
            sync.count_added(NEW.counts, counted, 'updated'), sync.count_added(NEW.counts, counted, 'unchanged'),
            sync.count_added(NEW.counts, counted, 'deactivated'), sync.count_added(NEW.counts, counted, 'rejected'),
            NEW.finished_at)
    ON CONFLICT (connection_name, kind, status) DO UPDATE SET
        runs = t.runs + excluded.runs,
        rows_read = t.rows_read + excluded.rows_read,
        rows_created = t.rows_created + excluded.rows_created,
        rows_updated = t.rows_updated + excluded.rows_updated,
        rows_unchanged = t.rows_unchanged + excluded.rows_unchanged,
        rows_deactivated = t.rows_deactivated + excluded.rows_deactivated,
        rows_rejected = t.rows_rejected + excluded.rows_rejected,
        last_finished_at = greatest(t.last_finished_at, excluded.last_finished_at);
    NEW.counted_rows := counted || (
        SELECT jsonb_object_agg(o, greatest(sync.count_of(NEW.counts, o), sync.count_of(counted, o)))
        FROM unnest(ARRAY['read', 'created', 'updated', 'unchanged', 'deactivated', 'rejected']) o
    );
    RETURN NEW;
END $$;

CREATE TRIGGER runs_counted_when_inserted_finished BEFORE INSERT ON sync.runs FOR EACH ROW
    WHEN (NEW.status IN ('completed', 'completed_with_errors', 'failed', 'rejected', 'cancelled'))
    EXECUTE FUNCTION sync.count_finished_run();
CREATE TRIGGER runs_counted_when_finished BEFORE UPDATE OF status, counts ON sync.runs FOR EACH ROW
    WHEN (NEW.status IN ('completed', 'completed_with_errors', 'failed', 'rejected', 'cancelled')
          AND (OLD.status IS DISTINCT FROM NEW.status OR OLD.counts IS DISTINCT FROM NEW.counts))
    EXECUTE FUNCTION sync.count_finished_run();

-- The history so far, once. Only a failed run can finish again (a replay), so only those remember
-- what was counted for them; the table is not rewritten.
INSERT INTO sync.run_totals
    (connection_name, kind, status, runs, rows_read, rows_created, rows_updated, rows_unchanged,
     rows_deactivated, rows_rejected, last_finished_at)
SELECT connection_name, kind, status, count(*),
       sum(sync.count_of(counts, 'read')), sum(sync.count_of(counts, 'created')),
       sum(sync.count_of(counts, 'updated')), sum(sync.count_of(counts, 'unchanged')),
       sum(sync.count_of(counts, 'deactivated')), sum(sync.count_of(counts, 'rejected')), max(finished_at)
FROM sync.runs
WHERE status IN ('completed', 'completed_with_errors', 'failed', 'rejected', 'cancelled')
GROUP BY 1, 2, 3;
UPDATE sync.runs SET counted_rows = counts WHERE status = 'failed';  -- sets no status or counts: no trigger

-- Dead letters not replayed, read at each scrape.
CREATE INDEX dead_letters_waiting ON sync.dead_letters (run_id) WHERE replayed_at IS NULL;
