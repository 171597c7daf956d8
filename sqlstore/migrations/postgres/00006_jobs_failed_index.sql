-- 00005's index on the jobs' type and status, for counting open jobs in
-- metrics, misled the planner: with statistics from before a burst of new
-- jobs (a renewal check queuing thousands), it looked like the best way to
-- find one domain's open job, and each lookup walked every open job. Open
-- jobs are now counted in the queue (River's index on state); dead letters
-- keep an index of their own, which no query for open jobs can pick.

-- +goose Up
DROP INDEX jobs_open_by_type;
CREATE INDEX jobs_failed ON jobs (type) WHERE status = 'failed';

-- +goose Down
DROP INDEX jobs_failed;
CREATE INDEX jobs_open_by_type ON jobs (type, status) WHERE status IN ('queued', 'running', 'failed');
