-- Schedules, plans and approval, online (batched) loads.

-- The clock schedules use: the database's, so a skewed host clock changes nothing. A session may
-- set feedsync.clock to move time (tests); nothing in production sets it.
CREATE FUNCTION sync.clock() RETURNS timestamptz LANGUAGE sql STABLE AS $$
    SELECT coalesce(nullif(current_setting('feedsync.clock', true), '')::timestamptz, now())
$$;

CREATE TABLE sync.schedules (
    connection_id  bigint PRIMARY KEY REFERENCES sync.connections (id),
    start_at       timestamptz NOT NULL,
    every_days     int NOT NULL CHECK (every_days >= 1),
    enabled        boolean NOT NULL DEFAULT true,
    armed_at       timestamptz NOT NULL,   -- slots at or before this are not owed (the schedule did not exist)
    last_slot      timestamptz,            -- the newest slot that has fired
    updated_at     timestamptz NOT NULL DEFAULT now()
);

ALTER TABLE sync.runs
    ADD COLUMN plan jsonb,
    ADD COLUMN approved_by text,
    ADD COLUMN approved_at timestamptz,
    ADD COLUMN decided_by text;

-- Online loads commit batch by batch; each batch's writes and its row commit together, so a
-- redelivered load resumes after the last committed batch and its counts add up exactly.
CREATE TABLE sync.load_batches (
    run_id    bigint NOT NULL REFERENCES sync.runs (id),
    batch_no  int NOT NULL,
    phase     text NOT NULL,
    counts    jsonb NOT NULL DEFAULT '{}',
    PRIMARY KEY (run_id, batch_no)
);
