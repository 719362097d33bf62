-- Graph delta (workers/sources/delta.py): a msgraph connection with incremental = true keeps the
-- @odata.deltaLink of its last round, and the Graph id of each person it has seen, so a person
-- Graph reports as removed (only an id) can be named in the feed and deactivated.
--
-- The link a run's fetch got is pending until a later fetch finds that run completed: a run that
-- failed, or was rejected, never moves the connection past changes it did not import.
CREATE TABLE sync.api_delta (
    connection_id   bigint PRIMARY KEY REFERENCES sync.connections (id),
    delta_link      text,
    full_at         timestamptz,
    pending_link    text,
    pending_full_at timestamptz,
    pending_run_id  bigint REFERENCES sync.runs (id) ON DELETE SET NULL,
    updated_at      timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE sync.api_source_ids (
    connection_id bigint NOT NULL REFERENCES sync.connections (id),
    source_id     text NOT NULL,
    key           text NOT NULL,
    PRIMARY KEY (connection_id, source_id)
);
