-- Approvals as a decision: when a run was held, when it was decided and the decider's comment
-- (why). Durations leave the wait between held_at and decided_at out and show it apart.
ALTER TABLE sync.runs
    ADD COLUMN held_at timestamptz,
    ADD COLUMN decided_at timestamptz,
    ADD COLUMN decision_comment text CHECK (char_length(decision_comment) <= 1000);
