-- The fetch stage (workers/stages/fetch.py): a run of a connection with an API source pulls its
-- feed before parse, and is recorded in sync.stage_runs like every other stage.
ALTER TABLE sync.stage_runs DROP CONSTRAINT stage_runs_stage_check;
ALTER TABLE sync.stage_runs ADD CONSTRAINT stage_runs_stage_check
    CHECK (stage IN ('plan', 'fetch', 'parse', 'transform', 'load', 'assign', 'export', 'finalize'));
