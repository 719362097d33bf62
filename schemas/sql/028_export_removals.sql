-- Removals the change-time exports must send (workers/connectors/exporting.py). The transcript,
-- skills and xAPI exports read rows changed in their window; a record deleted (by `feedsync undo`
-- taking back a run's completions, or a voiding that withdraws a skill) leaves no row to read, so the
-- destination would keep it for ever. Every delete of such a record leaves a removal here, written
-- by a statement-level trigger in the deleting transaction, whoever deletes: the next exports send
-- it (transcript: Status "Unenrolled"; skills: Completion Percentage 0, no date achieved; xAPI: a
-- statement voiding the removed one).
--
-- Keys only, and for a statement its actor (the voiding statement names it): the removed row's other
-- values are not kept. `run_id` is the journaled run that deleted it, if any.
CREATE TABLE sync.removals (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),   -- also the id of the voiding statement
    tbl          text NOT NULL CHECK (tbl IN ('learner_progress', 'user_skills', 'xapi_statements')),
    key          text[] NOT NULL,
    user_id      bigint,
    actor_email  text,
    actor        json,
    run_id       bigint,
    removed_at   timestamptz NOT NULL DEFAULT clock_timestamp()
);
-- Exports window on removed_at, as on updated_at / stored_at.
CREATE INDEX removals_removed_at ON sync.removals (removed_at);
CREATE INDEX removals_key ON sync.removals (tbl, key);

-- TG_ARGV[0]: the key as an SQL expression over the row alias r (a text[]); TG_ARGV[1]/[2]: the
-- actor's e-mail and actor, or NULL.
CREATE FUNCTION sync.record_removals() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format(
        'INSERT INTO sync.removals (tbl, key, user_id, actor_email, actor, run_id)
         SELECT $1, %s, r.user_id, %s, %s, $2 FROM o r', TG_ARGV[0], TG_ARGV[1], TG_ARGV[2])
        USING TG_TABLE_NAME, nullif(current_setting('feedsync.run_id', true), '')::bigint;
    RETURN NULL;
END $$;

CREATE TRIGGER removals_d AFTER DELETE ON lms.learner_progress REFERENCING OLD TABLE AS o
    FOR EACH STATEMENT EXECUTE FUNCTION sync.record_removals('ARRAY[r.user_id::text, r.course_id::text]', 'NULL', 'NULL');
CREATE TRIGGER removals_d AFTER DELETE ON lms.user_skills REFERENCING OLD TABLE AS o
    FOR EACH STATEMENT EXECUTE FUNCTION sync.record_removals('ARRAY[r.user_id::text, r.skill_id::text]', 'NULL', 'NULL');
CREATE TRIGGER removals_d AFTER DELETE ON lms.xapi_statements REFERENCING OLD TABLE AS o
    FOR EACH STATEMENT EXECUTE FUNCTION sync.record_removals('ARRAY[r.id::text]', 'r.actor_email', 'r.statement -> ''actor''');
