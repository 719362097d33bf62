-- The audit holds every admin action, whoever does it: the console's (the signed-in admin) and the
-- CLI's (the operating-system user who ran `feedsync`), told apart by where it came from.
ALTER TABLE sync.audit ADD COLUMN source text NOT NULL DEFAULT 'console' CHECK (source IN ('console', 'cli'));
CREATE INDEX audit_admin_at ON sync.audit (admin, at DESC);

-- ALM's userState DELETED kept apart from SUSPENDED (the exports' userState): the people a users feed
-- said were DELETED, while they stay inactive. A side table, so lms.users rows (and the run journal's
-- hashes of them) are unchanged; a person reactivated leaves it.
CREATE TABLE lms.deleted_people (
    user_id     bigint PRIMARY KEY REFERENCES lms.users (id),
    deleted_at  timestamptz NOT NULL DEFAULT now()
);
