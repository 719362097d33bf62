-- The sync schema: connections, files, runs and their stages, row errors, outbox, dead letters.
-- Status CHECKs mirror the enums in schemas/states.py.

CREATE SCHEMA IF NOT EXISTS sync;
CREATE SCHEMA IF NOT EXISTS stage;  -- per-run and per-chunk UNLOGGED staging tables, dropped after use

CREATE TABLE sync.connections (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name        text NOT NULL,
    kind        text NOT NULL,
    config      jsonb NOT NULL,
    enabled     boolean NOT NULL DEFAULT true,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    deleted_at  timestamptz
);
-- A deleted connection keeps its row (and so its history); a new one may take the name.
CREATE UNIQUE INDEX connections_live_name ON sync.connections (name) WHERE deleted_at IS NULL;

CREATE TABLE sync.feed_files (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    connection_id   bigint NOT NULL REFERENCES sync.connections (id),
    original_path   text NOT NULL,      -- relative to the drop dir, as dropped
    stored_path     text NOT NULL,      -- where feedsync keeps it while it is needed
    sha256          text NOT NULL,
    size_bytes      bigint NOT NULL,
    file_date       date,               -- the date in the name, for dated feeds
    status          text NOT NULL DEFAULT 'registered'
                    CHECK (status IN ('registered', 'claimed', 'imported', 'rejected')),
    registered_at   timestamptz NOT NULL DEFAULT now(),
    removed_at      timestamptz,
    -- Registered once per connection by content: the same bytes dropped again are a duplicate.
    UNIQUE (connection_id, sha256)
);
CREATE INDEX feed_files_pending ON sync.feed_files (connection_id) WHERE status = 'registered';

-- Every drop, including duplicates, so "I dropped it and nothing happened" has an answer.
CREATE TABLE sync.file_drops (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    connection_id  bigint NOT NULL REFERENCES sync.connections (id),
    file_id        bigint NOT NULL REFERENCES sync.feed_files (id),
    path           text NOT NULL,
    duplicate      boolean NOT NULL,
    dropped_at     timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE sync.runs (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    connection_id    bigint NOT NULL REFERENCES sync.connections (id),
    connection_name  text NOT NULL,
    kind             text NOT NULL,
    trigger          text NOT NULL
                     CHECK (trigger IN ('scheduled', 'on_demand', 'file_drop', 'rerun', 'replay')),
    status           text NOT NULL DEFAULT 'queued'
                     CHECK (status IN ('queued', 'in_progress', 'awaiting_approval', 'completed',
                                       'completed_with_errors', 'failed', 'rejected')),
    access_mode      text NOT NULL DEFAULT 'online' CHECK (access_mode IN ('online', 'exclusive')),
    dry_run          boolean NOT NULL DEFAULT false,
    since            date,
    rerun_of         bigint REFERENCES sync.runs (id),
    config           jsonb NOT NULL,   -- the connection as it was when the run was planned
    created_at       timestamptz NOT NULL DEFAULT now(),
    started_at       timestamptz,
    finished_at      timestamptz,
    counts           jsonb NOT NULL DEFAULT '{}',
    error            text,
    note             text
);
CREATE INDEX runs_connection ON sync.runs (connection_name, id DESC);
CREATE INDEX runs_active ON sync.runs (connection_id) WHERE status IN ('queued', 'in_progress', 'awaiting_approval');

CREATE TABLE sync.run_files (
    run_id      bigint NOT NULL REFERENCES sync.runs (id),
    file_id     bigint NOT NULL REFERENCES sync.feed_files (id),
    ordinal     int NOT NULL,
    status      text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'parsed', 'rejected')),
    columns     jsonb,             -- mapped attribute -> {"column": header name, "no": 1-based position}
    chunks      int,               -- set when parse has finished the file
    rows_read   int,
    error       text,
    PRIMARY KEY (run_id, file_id)
);

-- Parse commits a file chunk by chunk; a redelivered parse resumes after the last one.
CREATE TABLE sync.chunks (
    run_id      bigint NOT NULL REFERENCES sync.runs (id),
    file_id     bigint NOT NULL,
    chunk_no    int NOT NULL,
    first_line  int NOT NULL,
    last_line   int NOT NULL,
    byte_end    bigint NOT NULL,
    rows        int NOT NULL,
    PRIMARY KEY (run_id, file_id, chunk_no)
);

-- One row per unit of work: the business key is (run_id, stage, part). Attempts are counted here
-- before the work starts, so a message that kills its worker cannot be redelivered forever.
CREATE TABLE sync.stage_runs (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    run_id       bigint NOT NULL REFERENCES sync.runs (id),
    stage        text NOT NULL CHECK (stage IN ('plan', 'parse', 'transform', 'load', 'assign', 'export', 'finalize')),
    part         text NOT NULL DEFAULT '',
    status       text NOT NULL CHECK (status IN ('running', 'retrying', 'succeeded', 'failed', 'dead_lettered')),
    attempts     int NOT NULL DEFAULT 0,
    message_id   text,
    started_at   timestamptz NOT NULL DEFAULT now(),
    finished_at  timestamptz,
    counts       jsonb,
    error        text,
    UNIQUE (run_id, stage, part)
);

CREATE TABLE sync.row_errors (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    run_id       bigint NOT NULL REFERENCES sync.runs (id),
    file_id      bigint,
    file_name    text NOT NULL,
    line         int,              -- as a text editor numbers it, header = 1
    column_no    int,
    column_name  text,
    code         text NOT NULL,
    message      text NOT NULL,
    value        text,             -- truncated; never a whole row
    rejected     boolean NOT NULL  -- true: the row was not imported; false: imported with a warning
);
CREATE INDEX row_errors_run ON sync.row_errors (run_id, file_name, line);

-- Messages written in the same transaction as the effect that causes them, published after commit.
CREATE TABLE sync.outbox (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    dedupe_key    text NOT NULL UNIQUE,
    message_id    uuid NOT NULL,
    queue_name    text NOT NULL,
    actor_name    text NOT NULL,
    kwargs        jsonb NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    published_at  timestamptz
);
CREATE INDEX outbox_unsent ON sync.outbox (created_at) WHERE published_at IS NULL;

CREATE TABLE sync.dead_letters (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    message_id   text NOT NULL,
    queue_name   text NOT NULL,
    actor_name   text NOT NULL,
    run_id       bigint REFERENCES sync.runs (id),
    message      jsonb NOT NULL,
    error        text,
    attempts     int NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    replayed_at  timestamptz,
    UNIQUE (message_id)
);
