-- SFTP pull (producers/sftp_pull.py): every remote file a connection has seen or taken, by path,
-- size and mtime ("tracking entities", not a time cursor: two files with the same mtime second are
-- both taken, and a file taken once is never downloaded again while it stays the same).
--
-- state: seen        listed once; taken when the next listing shows the same size and mtime
--        landed      downloaded and renamed into the drop folder (sha256 known); registration pending
--        registered  the registry committed it (file_id); the remote file is not handled yet
--        handled     kept, moved or deleted as after_pickup says (pickup says what happened)
CREATE TABLE sync.sftp_files (
    connection_id  bigint NOT NULL REFERENCES sync.connections (id),
    remote_path    text NOT NULL,
    size           bigint NOT NULL,
    mtime          bigint NOT NULL,          -- seconds since the epoch, as SFTP v3 reports it
    state          text NOT NULL CHECK (state IN ('seen', 'landed', 'registered', 'handled')),
    sha256         text,
    local_path     text,                     -- relative to the drop dir
    file_id        bigint REFERENCES sync.feed_files (id),
    pickup         text,                     -- kept | deleted | moved to … | a warning
    seen_at        timestamptz NOT NULL DEFAULT now(),
    landed_at      timestamptz,
    handled_at     timestamptz,
    PRIMARY KEY (connection_id, remote_path, size, mtime)
);
CREATE INDEX sftp_files_pending ON sync.sftp_files (connection_id) WHERE state IN ('landed', 'registered');

-- The last poll of each connection: when, and what went wrong (one sentence), for `feedsync sftp check`.
CREATE TABLE sync.sftp_polls (
    connection_id  bigint PRIMARY KEY REFERENCES sync.connections (id),
    polled_at      timestamptz NOT NULL,
    ok             boolean NOT NULL,
    error          text,
    failures       integer NOT NULL DEFAULT 0     -- in a row, for the retry backoff
);
