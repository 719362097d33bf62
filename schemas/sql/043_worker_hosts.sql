-- Workers on several hosts: each stage record says which worker group, host and process ran its last
-- attempt, and each worker process marks itself alive in sync.worker_heartbeats (workers/hosts.py),
-- so `feedsync status` lists the live worker groups and the ones gone silent.
ALTER TABLE sync.stage_runs
    ADD COLUMN worker_group text,
    ADD COLUMN host text,
    ADD COLUMN pid int;

CREATE TABLE sync.worker_heartbeats (
    worker_group    text NOT NULL,
    host            text NOT NULL,
    pid             int NOT NULL,
    store           text NOT NULL,       -- where the process reads files: a folder or s3://bucket/prefix
    started_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
    last_heartbeat  timestamptz NOT NULL DEFAULT clock_timestamp(),
    stopped_at      timestamptz,         -- a clean shutdown; a killed process just goes silent
    PRIMARY KEY (worker_group, host, pid)
);
