-- A daily feed changes about a tenth of its people, rarely in an indexed column (e-mail, manager,
-- unit). With room left on each page the new row version stays on its page and no index is
-- touched (a HOT update); a full page forces a new entry in every index of lms.users.
ALTER TABLE lms.users SET (fillfactor = 85);
