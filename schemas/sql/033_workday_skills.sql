-- Skills sent to Workday by a skills_export run with [connections.workday] (workers/stages/export_workday.py):
-- one row per person the window's achievements were for, saying what Workday made of them.
CREATE TABLE sync.workday_skill_results (
    run_id     bigint NOT NULL REFERENCES sync.runs (id) ON DELETE CASCADE,
    user_id    bigint NOT NULL,
    worker_id  text,                 -- the Workday worker ID the person was sent as (NULL: none known)
    skills     int NOT NULL,         -- skill items in the request
    status     text NOT NULL CHECK (status IN ('sent', 'unknown_worker', 'rejected', 'no_worker_id')),
    code       text,                 -- Workday's fault code, for a person it refused
    sent_at    timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (run_id, user_id)
);
