-- At most one queued dns_check per domain (issue 14: "two checks are
-- queued for the same domain at once"). A new check supersedes the queued
-- ones in the transaction that queues it, under the domain's row lock; this
-- index makes the rule the database's, whatever path queues a check. A
-- running check may sit beside one queued check: when it would go back to
-- the queue (not there yet, or an error), it ends as superseded instead.
--
-- Duplicates from before end as superseded first (the newest stays; ids
-- are UUIDv7, so the largest is the newest).

-- +goose Up
UPDATE jobs SET status = 'succeeded', result = '{"outcome":"superseded"}'
WHERE type = 'dns_check' AND status = 'queued' AND id NOT IN (
    SELECT max(id) FROM jobs WHERE type = 'dns_check' AND status = 'queued' GROUP BY domain_id);
CREATE UNIQUE INDEX jobs_one_queued_dns_check ON jobs (domain_id) WHERE type = 'dns_check' AND status = 'queued';

-- +goose Down
DROP INDEX jobs_one_queued_dns_check;
