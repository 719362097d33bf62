-- Lookups by manager and by unit are for a given id, never for NULL: a partial index costs a
-- users feed without managers or units nothing per inserted row.
DROP INDEX lms.users_manager;
CREATE INDEX users_manager ON lms.users (manager_id) WHERE manager_id IS NOT NULL;
DROP INDEX lms.users_org_unit;
CREATE INDEX users_org_unit ON lms.users (org_unit_id) WHERE org_unit_id IS NOT NULL;
