-- A run can be cancelled by an admin (`feedsync cancel`): a queued run that would never start, a
-- run held for approval, a run stuck in progress. Who did it and why is kept in sync.run_actions.
ALTER TABLE sync.runs DROP CONSTRAINT runs_status_check;
ALTER TABLE sync.runs ADD CONSTRAINT runs_status_check
    CHECK (status IN ('queued', 'in_progress', 'awaiting_approval', 'completed', 'completed_with_errors',
                      'failed', 'rejected', 'cancelled'));

-- Every admin action that ended a run, as sync.replays keeps every replay.
CREATE TABLE sync.run_actions (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    run_id       bigint NOT NULL REFERENCES sync.runs (id),
    action       text NOT NULL CHECK (action IN ('cancel')),
    from_status  text NOT NULL,
    reason       text,
    done_by      text NOT NULL,
    done_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX run_actions_run ON sync.run_actions (run_id);
