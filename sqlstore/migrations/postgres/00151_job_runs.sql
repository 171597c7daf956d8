-- How often a job ran (issue 14: "attempts counts what ran"). attempts
-- keeps counting what uses up max_attempts; runs counts every start, also
-- the free ones: a check that found nothing yet, a budget wait, a run cut
-- short by shutdown. Jobs from before start from their attempts.

-- +goose Up
ALTER TABLE jobs ADD COLUMN runs INTEGER NOT NULL DEFAULT 0;
UPDATE jobs SET runs = attempts;

-- +goose Down
ALTER TABLE jobs DROP COLUMN runs;
