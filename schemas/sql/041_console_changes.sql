-- Config as code stays the truth (producers/console_changes.py): the connections file each
-- connection was last applied from, and what the console changed, so that `connections apply` of
-- a file without a console change refuses to undo it silently.
ALTER TABLE sync.connections ADD COLUMN source_file text;

CREATE TABLE sync.console_changes (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    connection_id    bigint NOT NULL REFERENCES sync.connections (id),
    connection_name  text NOT NULL,
    -- The connections file the console wrote the change to (NULL: the connection's file is unknown).
    source_file      text,
    -- The settings changed, as dotted keys (schedule.every_days, mapping.email, max_deactivate); names
    -- only, never values.
    settings         text[] NOT NULL CHECK (cardinality(settings) > 0),
    changed_by       text NOT NULL,
    -- The file's unified diff as the console wrote it (connection settings, never feed rows).
    diff             text NOT NULL DEFAULT '',
    changed_at       timestamptz NOT NULL DEFAULT now(),
    -- A later `connections apply` carried the same values: the file holds the change.
    settled_at       timestamptz,
    -- `connections apply --force` of a file without the change undid it: when and who (user@host).
    overridden_at    timestamptz,
    overridden_by    text,
    CHECK (overridden_at IS NULL OR overridden_by IS NOT NULL)
);
CREATE INDEX console_changes_open ON sync.console_changes (connection_id)
    WHERE settled_at IS NULL AND overridden_at IS NULL;
