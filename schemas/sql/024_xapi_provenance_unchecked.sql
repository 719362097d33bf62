-- lms.xapi_statements' provenance (the connection and file a statement came from) is written by the
-- load alone, from the run it is loading, and neither table ever loses a row (connections are
-- disabled, feed files kept as records when their bytes are removed). Checked as foreign keys, the
-- two cost two index probes per statement: about 7 s of a million-statement import, for a check
-- that cannot fail. The learner's foreign key (user_id) stays.
ALTER TABLE lms.xapi_statements DROP CONSTRAINT IF EXISTS xapi_statements_source_connection_id_fkey;
ALTER TABLE lms.xapi_statements DROP CONSTRAINT IF EXISTS xapi_statements_source_file_id_fkey;
