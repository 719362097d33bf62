-- One manager's direct and indirect reports, walking down from them: the lms.reports view computes
-- every manager's closure, which a report for one manager should not pay for.
CREATE FUNCTION lms.reports_of(manager bigint) RETURNS TABLE (user_id bigint, depth int)
LANGUAGE sql STABLE AS $$
    WITH RECURSIVE r (user_id, active, depth, path) AS (
        SELECT u.id, u.active, 1, ARRAY[manager, u.id] FROM lms.users u WHERE u.manager_id = manager
        UNION ALL
        SELECT u.id, u.active, r.depth + 1, r.path || u.id
        FROM r JOIN lms.users u ON u.manager_id = r.user_id
        WHERE NOT u.id = ANY (r.path)
    )
    SELECT user_id, depth FROM r WHERE active
$$;
