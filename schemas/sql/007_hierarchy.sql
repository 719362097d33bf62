-- Kind hierarchy: organisational units, positions, people placed in them, groups from rules.

CREATE TABLE lms.org_units (
    id                    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    external_id           text NOT NULL UNIQUE,       -- the HR system's id number
    name                  text NOT NULL,
    parent_id             bigint REFERENCES lms.org_units (id),
    active                boolean NOT NULL DEFAULT true,
    attributes            jsonb NOT NULL DEFAULT '{}',
    source_connection_id  bigint REFERENCES sync.connections (id),
    source_hash           text,
    created_at            timestamptz NOT NULL DEFAULT now(),
    updated_at            timestamptz NOT NULL DEFAULT now(),
    deactivated_at        timestamptz
);
CREATE INDEX org_units_parent ON lms.org_units (parent_id);

CREATE TABLE lms.positions (
    id                    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    external_id           text NOT NULL UNIQUE,
    name                  text NOT NULL,
    parent_id             bigint REFERENCES lms.positions (id),
    active                boolean NOT NULL DEFAULT true,
    attributes            jsonb NOT NULL DEFAULT '{}',
    source_connection_id  bigint REFERENCES sync.connections (id),
    source_hash           text,
    created_at            timestamptz NOT NULL DEFAULT now(),
    updated_at            timestamptz NOT NULL DEFAULT now(),
    deactivated_at        timestamptz
);

ALTER TABLE lms.users
    ADD COLUMN external_id text,
    ADD COLUMN org_unit_id bigint REFERENCES lms.org_units (id),
    ADD COLUMN position_id bigint REFERENCES lms.positions (id);
CREATE UNIQUE INDEX users_external_id ON lms.users (external_id) WHERE external_id IS NOT NULL;
CREATE INDEX users_org_unit ON lms.users (org_unit_id);

-- Direct and indirect reports of every manager, computed from manager_id, so it is never stale:
-- a manager change moves the whole sub-tree in and out of both chains at once.
CREATE VIEW lms.reports AS
WITH RECURSIVE r (manager_id, user_id, depth, path) AS (
    SELECT u.manager_id, u.id, 1, ARRAY[u.manager_id, u.id]
    FROM lms.users u WHERE u.manager_id IS NOT NULL AND u.active
    UNION ALL
    SELECT m.manager_id, r.user_id, r.depth + 1, m.manager_id || r.path
    FROM r JOIN lms.users m ON m.id = r.manager_id
    WHERE m.manager_id IS NOT NULL AND NOT m.manager_id = ANY (r.path)
)
SELECT manager_id, user_id, depth FROM r;

-- Groups are declared as rules next to the connections (feedsync connections apply).
CREATE TABLE lms.groups (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name        text NOT NULL UNIQUE,
    rule        jsonb NOT NULL,
    programs    text[] NOT NULL DEFAULT '{}',   -- learning programs the members are assigned
    active      boolean NOT NULL DEFAULT true,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE lms.group_members (
    group_id    bigint NOT NULL REFERENCES lms.groups (id),
    user_id     bigint NOT NULL REFERENCES lms.users (id),
    added_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (group_id, user_id)
);
CREATE INDEX group_members_user ON lms.group_members (user_id);

-- A learning program given to a person by a group; kept when they leave the group (their record).
CREATE TABLE lms.assignments (
    user_id      bigint NOT NULL REFERENCES lms.users (id),
    program      text NOT NULL,
    group_id     bigint REFERENCES lms.groups (id),
    assigned_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, program)
);

-- What each run (or rules apply) changed in memberships, for `feedsync run RUN_ID`.
CREATE TABLE sync.membership_changes (
    id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    run_id    bigint REFERENCES sync.runs (id),
    group_id  bigint NOT NULL REFERENCES lms.groups (id),
    user_id   bigint NOT NULL REFERENCES lms.users (id),
    change    text NOT NULL CHECK (change IN ('added', 'removed')),
    at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX membership_changes_run ON sync.membership_changes (run_id);

-- A file-drop run of a bundle waits (queued, not planned) until every expected file has arrived.
ALTER TABLE sync.runs ADD COLUMN waiting_for text[];

-- Warnings sent for runs with errors, so a redelivered finalize never sends twice.
CREATE TABLE sync.notifications (
    run_id   bigint NOT NULL REFERENCES sync.runs (id),
    channel  text NOT NULL,            -- webhook | email
    sent_at  timestamptz,
    error    text,
    PRIMARY KEY (run_id, channel)
);
