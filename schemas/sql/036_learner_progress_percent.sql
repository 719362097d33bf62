-- How far a learner is through a course, as a provider reports it (LinkedIn Learning's
-- PROGRESS_PERCENTAGE, 0 to 100); NULL where the provider says nothing of it. Like the other
-- counters of learner progress it only moves forward (workers/connectors/content.py).
ALTER TABLE lms.learner_progress
    ADD COLUMN progress_percent numeric CHECK (progress_percent BETWEEN 0 AND 100);
