-- The admin console (`feedsync web`): who may sign in, their sessions, and what they did.

-- Admins are added with `feedsync admins add NAME --role admin|viewer`; the password is kept
-- only as an argon2 hash. A viewer sees every page and changes nothing.
CREATE TABLE sync.admins (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name           text NOT NULL UNIQUE CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9_.@-]{0,62}$'),
    password_hash  text NOT NULL,
    role           text NOT NULL CHECK (role IN ('admin', 'viewer')),
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now()
);

-- A signed-in browser. The cookie holds a random token; only its SHA-256 is stored, so a copy of
-- this table signs nobody in. Removing an admin ends their sessions.
CREATE TABLE sync.admin_sessions (
    token_sha256   text PRIMARY KEY,
    admin_id       bigint NOT NULL REFERENCES sync.admins (id) ON DELETE CASCADE,
    csrf_token     text NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    expires_at     timestamptz NOT NULL
);
CREATE INDEX admin_sessions_admin ON sync.admin_sessions (admin_id);

-- Every console action (sign-in, upload, sync, rerun, approve, reject, replay, schedule change ...)
-- with who and when. `admin` is text, not a reference: the record outlives the admin.
-- A failed sign-in is kept too (admin NULL, the name tried in target): sign-in is throttled on it.
CREATE TABLE sync.audit (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT clock_timestamp(),
    admin       text,
    action      text NOT NULL,
    target      text,
    outcome     text NOT NULL DEFAULT 'ok',
    detail      jsonb NOT NULL DEFAULT '{}',
    client      text
);
CREATE INDEX audit_at ON sync.audit (at DESC);
CREATE INDEX audit_failed_sign_ins ON sync.audit (at) WHERE action = 'sign_in_failed';
