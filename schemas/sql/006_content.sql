-- Content providers (kinds hmm and getabstract): courses, skills, learner progress; and file retention.

CREATE TABLE lms.courses (
    id                    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    provider              text NOT NULL,            -- hmm | getabstract
    external_id           text NOT NULL,            -- HMM Product ID, getAbstract dataId
    title                 text NOT NULL,
    description           text,
    launch_url            text,
    image_url             text,
    authors               text,
    duration_minutes      int,
    language              text,
    published_on          date,
    copyright_holder      text,
    asset_type            text,
    asset_format          text,
    collection            text,
    discipline            text,
    category              text,
    parent_external_id    text,
    source_modified_on    date,
    tags                  text[] NOT NULL DEFAULT '{}',
    -- Retired: hidden from new enrolments; learners' records on it are kept.
    status                text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'retired')),
    retired_at            timestamptz,
    source_connection_id  bigint REFERENCES sync.connections (id),
    source_hash           text,
    created_at            timestamptz NOT NULL DEFAULT now(),
    updated_at            timestamptz NOT NULL DEFAULT now(),
    UNIQUE (provider, external_id)
);
CREATE INDEX courses_title ON lms.courses (provider, lower(title));

CREATE TABLE lms.skills (
    id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name      text NOT NULL,
    name_key  text GENERATED ALWAYS AS (lower(name)) STORED UNIQUE
);

CREATE TABLE lms.course_skills (
    course_id  bigint NOT NULL REFERENCES lms.courses (id),
    skill_id   bigint NOT NULL REFERENCES lms.skills (id),
    PRIMARY KEY (course_id, skill_id)
);

CREATE TABLE lms.learner_progress (
    user_id               bigint NOT NULL REFERENCES lms.users (id),
    course_id             bigint NOT NULL REFERENCES lms.courses (id),
    status                text NOT NULL CHECK (status IN ('not_started', 'in_progress', 'completed')),
    first_accessed_on     date,
    last_accessed_on      date,
    completed_on          date,
    assessed_on           date,
    score                 numeric,
    time_spent_minutes    int,
    visits                int,
    source_connection_id  bigint REFERENCES sync.connections (id),
    source_file_id        bigint REFERENCES sync.feed_files (id),   -- the feed that last changed it
    created_at            timestamptz NOT NULL DEFAULT now(),
    updated_at            timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, course_id)
);
CREATE INDEX learner_progress_course ON lms.learner_progress (course_id);

-- Retention sweeps look for files still on disk.
CREATE INDEX feed_files_on_disk ON sync.feed_files (connection_id) WHERE removed_at IS NULL;

-- A feed date as providers write it (M/D/YYYY, or ISO YYYY-MM-DD with an optional time); NULL when
-- empty or not a real date, so the transform can report the row instead of failing the statement.
CREATE FUNCTION sync.feed_date(v text) RETURNS date LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
    m text[];
BEGIN
    v := btrim(v);
    IF v IS NULL OR v = '' THEN
        RETURN NULL;
    END IF;
    m := regexp_match(v, '^(\d{1,2})/(\d{1,2})/(\d{4})$');
    IF m IS NOT NULL THEN
        RETURN make_date(m[3]::int, m[1]::int, m[2]::int);
    END IF;
    m := regexp_match(v, '^(\d{4})-(\d{2})-(\d{2})([T ][0-9:.]+)?$');
    IF m IS NOT NULL THEN
        RETURN make_date(m[1]::int, m[2]::int, m[3]::int);
    END IF;
    RETURN NULL;
EXCEPTION WHEN datetime_field_overflow OR invalid_datetime_format THEN
    RETURN NULL;
END
$$;
