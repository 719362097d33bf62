-- Exports (kinds transcript_export, skills_export, xapi_export): each export run's window and the
-- file it delivered; the skills people achieved (kept up to date by the loads that write completed
-- progress, so the skills export is a read); xAPI statements (filled by the xAPI import).

-- One row per export run. The window is fixed (and committed) before any row is read, so a
-- redelivered export writes the same window to the same file. Windows are half-open by change
-- time: window_from <= changed_at < window_to.
CREATE TABLE sync.exports (
    run_id         bigint PRIMARY KEY REFERENCES sync.runs (id),
    connection_id  bigint NOT NULL REFERENCES sync.connections (id),
    kind           text NOT NULL CHECK (kind IN ('transcript_export', 'skills_export', 'xapi_export')),
    window_from    timestamptz NOT NULL,
    window_to      timestamptz NOT NULL,
    file_name      text NOT NULL,           -- as delivered, e.g. learner_transcript_2026-11-01_to_2026-11-02.csv
    destination    text NOT NULL,           -- where it went, e.g. the folder under FEEDSYNC_EXPORT_DIR
    rows           bigint,                  -- set once the file is in place
    bytes          bigint,
    sha256         text,
    written_at     timestamptz,
    CHECK (window_from <= window_to)
);
CREATE INDEX exports_connection ON sync.exports (connection_id, window_to DESC);

-- Change time is what windows select on: indexed so a daily export reads only the day's changes.
CREATE INDEX learner_progress_updated ON lms.learner_progress (updated_at);

-- A skill a person achieved: on completing a course that teaches it (the earliest such completion).
CREATE TABLE lms.user_skills (
    user_id          bigint NOT NULL REFERENCES lms.users (id),
    skill_id         bigint NOT NULL REFERENCES lms.skills (id),
    course_id        bigint NOT NULL REFERENCES lms.courses (id),   -- the completion that gave it
    achieved_on      date NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, skill_id)
);
CREATE INDEX user_skills_updated ON lms.user_skills (updated_at);

INSERT INTO lms.user_skills (user_id, skill_id, course_id, achieved_on)
SELECT DISTINCT ON (p.user_id, cs.skill_id) p.user_id, cs.skill_id, p.course_id,
       coalesce(p.completed_on, p.updated_at::date)
FROM lms.learner_progress p JOIN lms.course_skills cs ON cs.course_id = p.course_id
WHERE p.status = 'completed'
ORDER BY p.user_id, cs.skill_id, coalesce(p.completed_on, p.updated_at::date), p.course_id;

-- xAPI statements as the LRS stored them. The statement is kept as received (json, not jsonb), so
-- the export writes the same text back out.
CREATE TABLE IF NOT EXISTS lms.xapi_statements (
    id                    uuid PRIMARY KEY,           -- the statement's id
    user_id               bigint REFERENCES lms.users (id),
    actor_email           text,                        -- actor.mbox without mailto:
    verb_id               text NOT NULL,
    object_id             text NOT NULL,
    "timestamp"           timestamptz NOT NULL,
    statement             json NOT NULL,
    source_connection_id  bigint REFERENCES sync.connections (id),
    source_file_id        bigint REFERENCES sync.feed_files (id),
    stored_at             timestamptz NOT NULL DEFAULT now()   -- its change time (statements never change)
);
CREATE INDEX IF NOT EXISTS xapi_statements_stored ON lms.xapi_statements (stored_at);
