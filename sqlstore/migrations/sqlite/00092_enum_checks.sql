-- CHECK constraints for the enumerated columns that had none (issue 13),
-- so that no invalid value can be stored even by a future bug: a key type
-- of domains and ACME orders, a connection's status, an OAuth state's
-- provider. (Roles, statuses, kinds and job types were checked already.)
-- A refused value is a 422 naming the field (sqlstore/constraint.go).
--
-- SQLite cannot add a CHECK to a table in place. Rebuilding these tables
-- is not safe inside goose's transaction: foreign_keys is on and cannot be
-- turned off there, and dropping the old domains table would delete, by
-- ON DELETE CASCADE, every row that references it (jobs, certificates,
-- orders, …). The same rule is enforced by triggers instead, which raise
-- SQLite's own "CHECK constraint failed: <name>" abort; the rows already
-- there are checked first, and the migration fails on any invalid one
-- (a temporary table whose CHECK admits only a count of 0).

-- +goose Up
CREATE TEMP TABLE enum_check_violations (n INTEGER CHECK (n = 0));
INSERT INTO enum_check_violations SELECT COUNT(*) FROM domains WHERE key_type NOT IN ('ec256','ec384','rsa2048','rsa4096');
INSERT INTO enum_check_violations SELECT COUNT(*) FROM acme_orders WHERE key_type NOT IN ('ec256','ec384','rsa2048','rsa4096');
INSERT INTO enum_check_violations SELECT COUNT(*) FROM oauth_connections WHERE status NOT IN ('active','needs_reauth');
INSERT INTO enum_check_violations SELECT COUNT(*) FROM oauth_states WHERE provider NOT IN ('cloudflare','godaddy','route53');
DROP TABLE enum_check_violations;
-- +goose StatementBegin
CREATE TRIGGER domains_key_type_check_insert BEFORE INSERT ON domains
WHEN NEW.key_type NOT IN ('ec256','ec384','rsa2048','rsa4096')
BEGIN SELECT RAISE(ABORT, 'CHECK constraint failed: domains_key_type_check'); END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER domains_key_type_check_update BEFORE UPDATE OF key_type ON domains
WHEN NEW.key_type NOT IN ('ec256','ec384','rsa2048','rsa4096')
BEGIN SELECT RAISE(ABORT, 'CHECK constraint failed: domains_key_type_check'); END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER acme_orders_key_type_check_insert BEFORE INSERT ON acme_orders
WHEN NEW.key_type NOT IN ('ec256','ec384','rsa2048','rsa4096')
BEGIN SELECT RAISE(ABORT, 'CHECK constraint failed: acme_orders_key_type_check'); END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER acme_orders_key_type_check_update BEFORE UPDATE OF key_type ON acme_orders
WHEN NEW.key_type NOT IN ('ec256','ec384','rsa2048','rsa4096')
BEGIN SELECT RAISE(ABORT, 'CHECK constraint failed: acme_orders_key_type_check'); END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER oauth_connections_status_check_insert BEFORE INSERT ON oauth_connections
WHEN NEW.status NOT IN ('active','needs_reauth')
BEGIN SELECT RAISE(ABORT, 'CHECK constraint failed: oauth_connections_status_check'); END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER oauth_connections_status_check_update BEFORE UPDATE OF status ON oauth_connections
WHEN NEW.status NOT IN ('active','needs_reauth')
BEGIN SELECT RAISE(ABORT, 'CHECK constraint failed: oauth_connections_status_check'); END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER oauth_states_provider_check_insert BEFORE INSERT ON oauth_states
WHEN NEW.provider NOT IN ('cloudflare','godaddy','route53')
BEGIN SELECT RAISE(ABORT, 'CHECK constraint failed: oauth_states_provider_check'); END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER oauth_states_provider_check_update BEFORE UPDATE OF provider ON oauth_states
WHEN NEW.provider NOT IN ('cloudflare','godaddy','route53')
BEGIN SELECT RAISE(ABORT, 'CHECK constraint failed: oauth_states_provider_check'); END;
-- +goose StatementEnd

-- +goose Down
DROP TRIGGER domains_key_type_check_insert;
DROP TRIGGER domains_key_type_check_update;
DROP TRIGGER acme_orders_key_type_check_insert;
DROP TRIGGER acme_orders_key_type_check_update;
DROP TRIGGER oauth_connections_status_check_insert;
DROP TRIGGER oauth_connections_status_check_update;
DROP TRIGGER oauth_states_provider_check_insert;
DROP TRIGGER oauth_states_provider_check_update;
