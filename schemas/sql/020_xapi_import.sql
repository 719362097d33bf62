-- The xAPI import (kind xapi): statements read from CSV files. Each statement keeps the file and
-- line it came from, and whether a voiding statement voided it (present or arriving later).

ALTER TABLE lms.xapi_statements
    ADD COLUMN IF NOT EXISTS voided boolean NOT NULL DEFAULT false,
    ADD COLUMN IF NOT EXISTS source_line int,
    ADD COLUMN IF NOT EXISTS voids uuid;        -- a voiding statement's target (object.id of its StatementRef)
-- object_id is the activity IRI: an agent, group, statement ref or substatement object has none
-- (ALM's report leaves that cell empty).
ALTER TABLE lms.xapi_statements ALTER COLUMN object_id DROP NOT NULL;

-- Per person (a learner's statements, newest first).
CREATE INDEX IF NOT EXISTS xapi_statements_user ON lms.xapi_statements (user_id, "timestamp" DESC)
    WHERE user_id IS NOT NULL;
-- A statement arriving after its voider finds it by its own id, among voiders only.
CREATE INDEX IF NOT EXISTS xapi_statements_voiders ON lms.xapi_statements (voids) WHERE voids IS NOT NULL;
-- A load step reads back the statements its file stored (completions, voiding).
CREATE INDEX IF NOT EXISTS xapi_statements_file ON lms.xapi_statements (source_file_id);
-- Completions are matched to courses by their launch URL.
CREATE INDEX IF NOT EXISTS courses_launch_url ON lms.courses (launch_url) WHERE launch_url IS NOT NULL;
