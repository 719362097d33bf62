-- Every dead-letter replay is recorded: who, when, what, and what became of it.
CREATE TABLE sync.replays (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    dead_letter_id  bigint REFERENCES sync.dead_letters (id) ON DELETE SET NULL,
    run_id          bigint REFERENCES sync.runs (id),
    message_id      text NOT NULL,
    actor_name      text NOT NULL,
    replayed_by     text NOT NULL,
    replayed_at     timestamptz NOT NULL DEFAULT now(),
    forced          boolean NOT NULL DEFAULT false
);

ALTER TABLE sync.runs ADD COLUMN replayed_at timestamptz;
