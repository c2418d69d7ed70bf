-- Claiming looks only at unfinished jobs, which are few, while finished ones pile up: both
-- the scan for runnable jobs (in id order) and the per-subject order check use indexes that
-- hold unfinished jobs only, so a claim costs the same with a million jobs done as with none.
CREATE INDEX jobs_open ON jobs (id) WHERE state IN ('pending', 'running');
CREATE INDEX jobs_open_by_subject ON jobs (rule, subject, id)
    WHERE state IN ('pending', 'running');
