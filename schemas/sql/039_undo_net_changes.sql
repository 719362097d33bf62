-- Undo (workers/runs/undo.py): the later runs that still count against a row a run changed. A
-- row's later changes are replayed in order as a stack: a run that changed it is pushed; an undo
-- of the run on top pops it (the undo gave the row back as it was before that run). What is left
-- changed the row since and has not been undone: an undo's restores are not conflicts.
-- runs and undo_ofs are parallel arrays in journal order (undo_ofs[i]: the run runs[i] undoes, or NULL).
CREATE FUNCTION sync.journal_net_runs(runs bigint[], undo_ofs bigint[]) RETURNS bigint[]
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    stack bigint[] := '{}';
    prev bigint;
    i int;
BEGIN
    FOR i IN 1 .. coalesce(cardinality(runs), 0) LOOP
        -- A run that changed the row in several statements is one change of it.
        CONTINUE WHEN runs[i] IS NOT DISTINCT FROM prev;
        prev := runs[i];
        IF undo_ofs[i] IS NOT NULL AND cardinality(stack) > 0 AND stack[cardinality(stack)] = undo_ofs[i] THEN
            stack := stack[1:cardinality(stack) - 1];
        ELSIF NOT runs[i] = ANY (stack) THEN
            stack := stack || runs[i];
        END IF;
    END LOOP;
    RETURN stack;
END $$;
