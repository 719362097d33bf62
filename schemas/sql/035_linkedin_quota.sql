-- LinkedIn Learning's daily quota (workers/sources/linkedin.py): a 429 parks the connection until
-- the quota resets at 00:00 UTC instead of retrying. Scheduled runs skip a parked connection until
-- then (producers/scheduler.py) and an alert of kind 'parked' says so (producers/alarms.py).
ALTER TABLE sync.connections
    ADD COLUMN parked_until timestamptz,
    ADD COLUMN parked_reason text;     -- one sentence: the request and the status, never a value

ALTER TABLE sync.alerts DROP CONSTRAINT alerts_kind_check;
ALTER TABLE sync.alerts ADD CONSTRAINT alerts_kind_check
    CHECK (kind IN ('late', 'missing', 'row_drift', 'failed_runs', 'held', 'dead_letter', 'parked'));
