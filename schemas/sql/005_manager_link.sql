-- manager_id is set only by the loader, from ids it resolved in the same run, and people are never
-- deleted, so the self-reference cannot dangle. Without the foreign key a million new people load
-- without a million per-row trigger checks, and an online batch may name a manager that the next
-- batch inserts.
ALTER TABLE lms.users DROP CONSTRAINT users_manager_id_fkey;
