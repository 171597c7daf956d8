-- One-click setup that met a provider outage is retried by the job engine
-- (issue 6): a new job type, dns_setup, whose input (the connection, and
-- whether records in the way may be replaced) is kept with the job in
-- args, so that every attempt and a retry of a dead letter repeat the
-- same request. Other job types have no input (NULL).
--
-- One open dns_setup per domain, like renewals: a second request while
-- the provider is still down finds the first (the store looks under the
-- domain's row lock; the index makes sure).

-- +goose Up
ALTER TABLE jobs DROP CONSTRAINT jobs_type_check;
ALTER TABLE jobs ADD CONSTRAINT jobs_type_check CHECK (type IN ('dns_check', 'start_issuance', 'renewal', 'dns_setup'));
ALTER TABLE jobs ADD COLUMN args JSONB;
CREATE UNIQUE INDEX jobs_one_open_dns_setup ON jobs (domain_id) WHERE type = 'dns_setup' AND status IN ('queued', 'running');

-- +goose Down
DROP INDEX jobs_one_open_dns_setup;
DELETE FROM jobs WHERE type = 'dns_setup';
ALTER TABLE jobs DROP COLUMN args;
ALTER TABLE jobs DROP CONSTRAINT jobs_type_check;
ALTER TABLE jobs ADD CONSTRAINT jobs_type_check CHECK (type IN ('dns_check', 'start_issuance', 'renewal'));
