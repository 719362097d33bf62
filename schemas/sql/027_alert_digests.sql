-- Alert digests (producers/notifier.py): the alerts one evaluation round has to send, one row per
-- destination (a connection's [connections.notify] channels), sent off the scheduler's thread.
-- While a digest waits (a slow or dead webhook), the next rounds add their alerts to it instead of
-- queueing more messages for the same destination: an alarm flood is one message per destination.
CREATE TABLE sync.alert_digests (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    channels    jsonb NOT NULL,          -- {"webhook": url or null, "email": [addresses]}
    alert_ids   bigint[] NOT NULL,
    created_at  timestamptz NOT NULL,
    claimed_at  timestamptz,             -- a notifier took it; it is never sent twice
    sent_at     timestamptz,
    error       text                     -- why a channel did not take it (a safe sentence)
);
-- One waiting digest per destination: a round adds to it (ON CONFLICT).
CREATE UNIQUE INDEX alert_digests_waiting ON sync.alert_digests (channels) WHERE claimed_at IS NULL;
