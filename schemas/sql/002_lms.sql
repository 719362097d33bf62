-- The lms schema: the learning store feedsync keeps in step. Documented in README.md.

CREATE SCHEMA IF NOT EXISTS lms;

CREATE TABLE lms.users (
    id                    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email                 text NOT NULL,
    email_key             text GENERATED ALWAYS AS (lower(email)) STORED,
    first_name            text,
    last_name             text,
    manager_id            bigint REFERENCES lms.users (id),
    active                boolean NOT NULL DEFAULT true,
    attributes            jsonb NOT NULL DEFAULT '{}',   -- group-able profile attributes
    source_connection_id  bigint REFERENCES sync.connections (id),
    source_hash           text,                          -- hash of the feed row last applied
    created_at            timestamptz NOT NULL DEFAULT now(),
    updated_at            timestamptz NOT NULL DEFAULT now(),
    deactivated_at        timestamptz
);
CREATE UNIQUE INDEX users_email_key ON lms.users (email_key);
CREATE INDEX users_manager ON lms.users (manager_id);
