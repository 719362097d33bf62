-- Feed alarms (producers/alarms.py): a feed late or missing against its connection's [expect], a
-- row count far from the usual, failed runs in a row, a run held for approval, a dead letter.
-- One open alert per connection and kind: a condition seen again updates that row (last_seen) and
-- is sent again at most hourly; the next on-time successful run (or the condition clearing) resolves it.
CREATE TABLE sync.alerts (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind              text NOT NULL
                      CHECK (kind IN ('late', 'missing', 'row_drift', 'failed_runs', 'held', 'dead_letter')),
    connection        text NOT NULL,    -- the connection's name, as sync.runs keeps it
    message           text NOT NULL,    -- counts, times and run ids, never row values
    first_seen        timestamptz NOT NULL,
    last_seen         timestamptz NOT NULL,
    state             text NOT NULL DEFAULT 'NEW' CHECK (state IN ('NEW', 'ACKNOWLEDGED', 'RESOLVED')),
    acknowledged_by   text,
    acknowledged_at   timestamptz,
    resolved_at       timestamptz,
    last_notified_at  timestamptz,
    notify_error      text,
    CHECK ((state = 'RESOLVED') = (resolved_at IS NOT NULL)),
    CHECK (state <> 'ACKNOWLEDGED' OR acknowledged_at IS NOT NULL)
);
CREATE UNIQUE INDEX alerts_one_open ON sync.alerts (connection, kind) WHERE state <> 'RESOLVED';
CREATE INDEX alerts_recent ON sync.alerts (id DESC);
-- Alarms look back at a connection's finished runs, newest first.
CREATE INDEX runs_connection_finished ON sync.runs (connection_name, finished_at DESC) WHERE finished_at IS NOT NULL;
