-- CHECK constraints for the enumerated columns that had none (issue 13),
-- so that no invalid value can be stored even by a future bug: a key type
-- of domains and ACME orders, a connection's status, an OAuth state's
-- provider. (Roles, statuses, kinds and job types were checked already.)
-- A refused value is a 422 naming the field (sqlstore/constraint.go).
-- PostgreSQL checks the rows already there when each constraint is added.

-- +goose Up
ALTER TABLE domains ADD CONSTRAINT domains_key_type_check CHECK (key_type IN ('ec256','ec384','rsa2048','rsa4096'));
ALTER TABLE acme_orders ADD CONSTRAINT acme_orders_key_type_check CHECK (key_type IN ('ec256','ec384','rsa2048','rsa4096'));
ALTER TABLE oauth_connections ADD CONSTRAINT oauth_connections_status_check CHECK (status IN ('active','needs_reauth'));
ALTER TABLE oauth_states ADD CONSTRAINT oauth_states_provider_check CHECK (provider IN ('cloudflare','godaddy','route53'));

-- +goose Down
ALTER TABLE domains DROP CONSTRAINT domains_key_type_check;
ALTER TABLE acme_orders DROP CONSTRAINT acme_orders_key_type_check;
ALTER TABLE oauth_connections DROP CONSTRAINT oauth_connections_status_check;
ALTER TABLE oauth_states DROP CONSTRAINT oauth_states_provider_check;
