-- One-click setup that met a provider outage is retried by the job engine
-- (issue 6): a new job type, dns_setup, whose input (the connection, and
-- whether records in the way may be replaced) is kept with the job in
-- args, so that every attempt and a retry of a dead letter repeat the
-- same request. Other job types have no input (NULL).
--
-- SQLite cannot change a CHECK constraint in place, so the table is
-- rebuilt (https://www.sqlite.org/lang_altertable.html#otheralter) with
-- every index it had. No table references jobs, so dropping the old one
-- with foreign keys on deletes nothing elsewhere.
--
-- One open dns_setup per domain, like renewals: a second request while
-- the provider is still down finds the first (the store looks under the
-- domain's row lock; the index makes sure).

-- +goose Up
CREATE TABLE jobs_new (
    id           TEXT PRIMARY KEY,
    org_id       TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    domain_id    TEXT NOT NULL REFERENCES domains (id) ON DELETE CASCADE,
    type         TEXT NOT NULL CHECK (type IN ('dns_check', 'start_issuance', 'renewal', 'dns_setup')),
    status       TEXT NOT NULL CHECK (status IN ('queued', 'running', 'succeeded', 'failed')),
    attempts     INTEGER NOT NULL DEFAULT 0,
    max_attempts INTEGER NOT NULL,
    result       TEXT,
    last_error   TEXT NOT NULL DEFAULT '',
    run_at       BIGINT NOT NULL,
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL,
    queue_job_id BIGINT,
    args         TEXT
);
INSERT INTO jobs_new (id, org_id, domain_id, type, status, attempts, max_attempts, result, last_error, run_at, created_at, updated_at, queue_job_id)
SELECT id, org_id, domain_id, type, status, attempts, max_attempts, result, last_error, run_at, created_at, updated_at, queue_job_id FROM jobs;
DROP TABLE jobs;
ALTER TABLE jobs_new RENAME TO jobs;
CREATE INDEX jobs_org_created ON jobs (org_id, created_at DESC, id DESC);
CREATE INDEX jobs_domain_created ON jobs (domain_id, created_at DESC, id DESC);
CREATE INDEX jobs_org_status ON jobs (org_id, status, created_at DESC);
CREATE UNIQUE INDEX jobs_one_open_renewal ON jobs (domain_id) WHERE type = 'renewal' AND status IN ('queued', 'running');
CREATE INDEX jobs_failed ON jobs (type) WHERE status = 'failed';
CREATE UNIQUE INDEX jobs_one_open_dns_setup ON jobs (domain_id) WHERE type = 'dns_setup' AND status IN ('queued', 'running');

-- +goose Down
CREATE TABLE jobs_old (
    id           TEXT PRIMARY KEY,
    org_id       TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    domain_id    TEXT NOT NULL REFERENCES domains (id) ON DELETE CASCADE,
    type         TEXT NOT NULL CHECK (type IN ('dns_check', 'start_issuance', 'renewal')),
    status       TEXT NOT NULL CHECK (status IN ('queued', 'running', 'succeeded', 'failed')),
    attempts     INTEGER NOT NULL DEFAULT 0,
    max_attempts INTEGER NOT NULL,
    result       TEXT,
    last_error   TEXT NOT NULL DEFAULT '',
    run_at       BIGINT NOT NULL,
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL,
    queue_job_id BIGINT
);
INSERT INTO jobs_old (id, org_id, domain_id, type, status, attempts, max_attempts, result, last_error, run_at, created_at, updated_at, queue_job_id)
SELECT id, org_id, domain_id, type, status, attempts, max_attempts, result, last_error, run_at, created_at, updated_at, queue_job_id FROM jobs
WHERE type <> 'dns_setup';
DROP TABLE jobs;
ALTER TABLE jobs_old RENAME TO jobs;
CREATE INDEX jobs_org_created ON jobs (org_id, created_at DESC, id DESC);
CREATE INDEX jobs_domain_created ON jobs (domain_id, created_at DESC, id DESC);
CREATE INDEX jobs_org_status ON jobs (org_id, status, created_at DESC);
CREATE UNIQUE INDEX jobs_one_open_renewal ON jobs (domain_id) WHERE type = 'renewal' AND status IN ('queued', 'running');
CREATE INDEX jobs_failed ON jobs (type) WHERE status = 'failed';
