-- Renewal checks and delegation monitoring (issue 5).
--
-- A renewal check streams every active domain in id order (domains_active)
-- and decides from the domain row alone whether its certificate is due:
-- expires_at is the certificate's notAfter, cert_not_before its notBefore
-- (for "a third of its lifetime left"), ari_* the CA's renewal window (RFC
-- 9773). renewal_info_for is the expires_at these columns were read for:
-- once a new certificate is stored it differs, and the next check reads
-- the new certificate's dates and forgets the old window.

-- +goose Up
ALTER TABLE domains ADD COLUMN cert_not_before BIGINT;
ALTER TABLE domains ADD COLUMN renewal_info_for BIGINT;
ALTER TABLE domains ADD COLUMN ari_start BIGINT;
ALTER TABLE domains ADD COLUMN ari_end BIGINT;
ALTER TABLE domains ADD COLUMN ari_explanation TEXT NOT NULL DEFAULT '';
-- When to ask the CA for the window again (its Retry-After); 0: at once.
ALTER TABLE domains ADD COLUMN ari_next_check BIGINT NOT NULL DEFAULT 0;
-- What the daily check of the delegation CNAME last found.
ALTER TABLE domains ADD COLUMN cname_status TEXT NOT NULL DEFAULT 'ok' CHECK (cname_status IN ('ok', 'missing'));

UPDATE domains SET renewal_info_for = expires_at, cert_not_before = (
    SELECT c.not_before FROM certificates c WHERE c.domain_id = domains.id
    ORDER BY c.created_at DESC, c.id DESC LIMIT 1)
WHERE expires_at IS NOT NULL;

CREATE INDEX domains_active ON domains (id) WHERE status = 'active' AND deleted_at IS NULL;

-- At most one open renewal per domain, whoever queues it: two checks at
-- the same moment (two nodes, or the CLI beside the daemon) insert with
-- ON CONFLICT DO NOTHING and the second finds the first's. Duplicates from
-- before are ended as superseded first.
UPDATE jobs SET status = 'succeeded', result = '{"outcome": "superseded"}'
WHERE type = 'renewal' AND status IN ('queued', 'running') AND id NOT IN (
    SELECT max(id) FROM jobs WHERE type = 'renewal' AND status IN ('queued', 'running') GROUP BY domain_id);
CREATE UNIQUE INDEX jobs_one_open_renewal ON jobs (domain_id) WHERE type = 'renewal' AND status IN ('queued', 'running');

-- Open and dead-letter jobs are counted for metrics by type and status;
-- succeeded ones, the bulk, stay out of the index.
CREATE INDEX jobs_open_by_type ON jobs (type, status) WHERE status IN ('queued', 'running', 'failed');

-- One row per renewal check; the newest successful one says whether the
-- daily check is alive (metrics, and the catch-up check at start-up).
CREATE TABLE renewal_runs (
    id          TEXT PRIMARY KEY,
    cause       TEXT NOT NULL,
    status      TEXT NOT NULL CHECK (status IN ('running', 'succeeded', 'failed')),
    started_at  BIGINT NOT NULL,
    finished_at BIGINT,
    scanned     INTEGER NOT NULL DEFAULT 0,
    due         INTEGER NOT NULL DEFAULT 0,
    queued      INTEGER NOT NULL DEFAULT 0,
    skipped     INTEGER NOT NULL DEFAULT 0,
    ari_checks  INTEGER NOT NULL DEFAULT 0,
    errors      INTEGER NOT NULL DEFAULT 0,
    error       TEXT NOT NULL DEFAULT ''
);
CREATE INDEX renewal_runs_status_started ON renewal_runs (status, started_at DESC);

-- +goose Down
DROP TABLE renewal_runs;
DROP INDEX jobs_open_by_type;
DROP INDEX jobs_one_open_renewal;
DROP INDEX domains_active;
ALTER TABLE domains DROP COLUMN cname_status;
ALTER TABLE domains DROP COLUMN ari_next_check;
ALTER TABLE domains DROP COLUMN ari_explanation;
ALTER TABLE domains DROP COLUMN ari_end;
ALTER TABLE domains DROP COLUMN ari_start;
ALTER TABLE domains DROP COLUMN renewal_info_for;
ALTER TABLE domains DROP COLUMN cert_not_before;
