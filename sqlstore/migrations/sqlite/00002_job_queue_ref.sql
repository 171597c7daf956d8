-- The job queue (River) keeps its own rows; queue_job_id links a product job
-- to the one queue entry that may currently run it. The engine checks it
-- before recording any outcome, so a stale queue entry (one superseded,
-- re-queued by a retry, or rescued while a worker was still running) can
-- never write over the job's record. No index: it is only ever read with
-- the job's own id.

-- +goose Up
ALTER TABLE jobs ADD COLUMN queue_job_id BIGINT;

-- +goose Down
ALTER TABLE jobs DROP COLUMN queue_job_id;
