-- The run journal (workers/runs/journal.py): what every row a load changed was before, written by
-- statement-level triggers over the statement's transition tables, in bulk and in the same
-- transaction as the change. The load says which run it is with a transaction-local setting
-- (set_config('feedsync.run_id', …, true)); any other writer (rules applied from the CLI, the
-- console) leaves no journal, because the setting is absent.
--
-- A row per changed row: its table, its key (the primary key's values as text), the operation,
-- the row before (NULL for an insert) and the hash of the row after (NULL for an insert: a
-- million-row first import writes the key only; a later change to an inserted row is found in the
-- journal itself, by the run that made it).
--
-- Kept cheap for a million-row import: one sequence number per statement, not per row (a statement
-- changes a row at most once, so (seq, key) orders a row's changes), and block-range indexes only
-- (nearly free to maintain; the journal is written in run and statement order). Later changes to a
-- row are found by scanning the journal written after the run: an undo is rare, every load journals.
CREATE SEQUENCE sync.journal_statement;
CREATE TABLE sync.journal (
    seq         bigint NOT NULL,
    run_id      bigint NOT NULL,
    tbl         text NOT NULL,
    key         text[] NOT NULL,
    op          "char" NOT NULL CHECK (op IN ('I', 'U', 'D')),
    before      jsonb,
    after_hash  text
);
CREATE INDEX journal_run ON sync.journal USING brin (run_id);
CREATE INDEX journal_by_seq ON sync.journal USING brin (seq);

-- Runs of type undo (feedsync undo RUN_ID) name the run they undo; an undone run names its undo.
ALTER TABLE sync.runs DROP CONSTRAINT runs_trigger_check;
ALTER TABLE sync.runs ADD CONSTRAINT runs_trigger_check
    CHECK (trigger IN ('scheduled', 'on_demand', 'file_drop', 'rerun', 'replay', 'undo'));
ALTER TABLE sync.runs
    ADD COLUMN undo_of bigint REFERENCES sync.runs (id),
    ADD COLUMN undo_skip_conflicts boolean NOT NULL DEFAULT false,
    ADD COLUMN undone_by bigint REFERENCES sync.runs (id),
    -- Decided once, when the load plans: the run's changes were journaled (FEEDSYNC_JOURNAL on).
    ADD COLUMN journaled boolean NOT NULL DEFAULT false;
-- One live undo per run: a second `feedsync undo` of the same run while the first goes is refused.
CREATE UNIQUE INDEX runs_one_undo ON sync.runs (undo_of)
    WHERE undo_of IS NOT NULL AND status IN ('queued', 'in_progress', 'awaiting_approval', 'completed',
                                             'completed_with_errors');

-- TG_ARGV[0]: the key as an SQL expression over the row alias r (a text[]).
CREATE FUNCTION sync.journal_insert() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    run bigint := nullif(current_setting('feedsync.run_id', true), '')::bigint;
BEGIN
    IF run IS NOT NULL THEN
        EXECUTE format('INSERT INTO sync.journal (seq, run_id, tbl, key, op) SELECT $3, $1, $2, %s, ''I'' FROM n r',
                       TG_ARGV[0])
            USING run, TG_TABLE_NAME, nextval('sync.journal_statement');
    END IF;
    RETURN NULL;
END $$;

CREATE FUNCTION sync.journal_update() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    run bigint := nullif(current_setting('feedsync.run_id', true), '')::bigint;
    k text := TG_ARGV[0];
BEGIN
    IF run IS NOT NULL THEN
        -- Old and new rows paired by key (no load changes a key).
        EXECUTE format(
            'INSERT INTO sync.journal (seq, run_id, tbl, key, op, before, after_hash)
             SELECT $3, $1, $2, nk.k, ''U'', to_jsonb(ok.old_row), md5(r::text)
             FROM n r CROSS JOIN LATERAL (SELECT %s AS k) nk
             JOIN (SELECT %s AS k, r AS old_row FROM o r) ok ON ok.k = nk.k', k, k)
            USING run, TG_TABLE_NAME, nextval('sync.journal_statement');
    END IF;
    RETURN NULL;
END $$;

CREATE FUNCTION sync.journal_delete() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    run bigint := nullif(current_setting('feedsync.run_id', true), '')::bigint;
BEGIN
    IF run IS NOT NULL THEN
        EXECUTE format(
            'INSERT INTO sync.journal (seq, run_id, tbl, key, op, before)
             SELECT $3, $1, $2, %s, ''D'', to_jsonb(r) FROM o r', TG_ARGV[0])
            USING run, TG_TABLE_NAME, nextval('sync.journal_statement');
    END IF;
    RETURN NULL;
END $$;

-- Every store table an import kind writes, with its key. (lms.skills is only ever added to, by
-- name, and a skill nobody holds harms no one: not journaled.)
DO $$
DECLARE
    t record;
BEGIN
    FOR t IN SELECT * FROM (VALUES
        ('users', 'ARRAY[r.id::text]'),
        ('org_units', 'ARRAY[r.id::text]'),
        ('positions', 'ARRAY[r.id::text]'),
        ('courses', 'ARRAY[r.id::text]'),
        ('learner_progress', 'ARRAY[r.user_id::text, r.course_id::text]'),
        ('course_skills', 'ARRAY[r.course_id::text, r.skill_id::text]'),
        ('user_skills', 'ARRAY[r.user_id::text, r.skill_id::text]'),
        ('group_members', 'ARRAY[r.group_id::text, r.user_id::text]'),
        ('assignments', 'ARRAY[r.user_id::text, r.program]'),
        ('xapi_statements', 'ARRAY[r.id::text]')
    ) AS v (name, key)
    LOOP
        EXECUTE format('CREATE TRIGGER journal_i AFTER INSERT ON lms.%I REFERENCING NEW TABLE AS n
                        FOR EACH STATEMENT EXECUTE FUNCTION sync.journal_insert(%L)', t.name, t.key);
        EXECUTE format('CREATE TRIGGER journal_u AFTER UPDATE ON lms.%I REFERENCING OLD TABLE AS o NEW TABLE AS n
                        FOR EACH STATEMENT EXECUTE FUNCTION sync.journal_update(%L)', t.name, t.key);
        EXECUTE format('CREATE TRIGGER journal_d AFTER DELETE ON lms.%I REFERENCING OLD TABLE AS o
                        FOR EACH STATEMENT EXECUTE FUNCTION sync.journal_delete(%L)', t.name, t.key);
    END LOOP;
END $$;

-- An undo is an admin action on the run it undoes: who asked for it is kept with the others.
ALTER TABLE sync.run_actions DROP CONSTRAINT run_actions_action_check;
ALTER TABLE sync.run_actions ADD CONSTRAINT run_actions_action_check CHECK (action IN ('cancel', 'undo'));
