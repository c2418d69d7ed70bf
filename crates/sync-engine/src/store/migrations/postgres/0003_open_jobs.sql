-- Claiming scans unfinished jobs in id order; finished ones pile up, so that scan uses an
-- index that holds unfinished jobs only (the per-subject check has had one since 0002).
CREATE INDEX jobs_open ON jobs (id) WHERE state IN ('pending', 'running');
