-- Who a token is and what the Caddy endpoint serves are kept in memory on
-- every node (sqlstore/changes.go). The triggers that move the identity
-- versions (00008) and the delivery version (00050) now also tell every
-- node, through NOTIFY, which of the two changed; the payload is
-- "<schema>:<kind>", so that schemas sharing one database (tests) skip
-- each other's changes. PostgreSQL sends one notification per distinct
-- payload per transaction, at its commit.
--
-- SQLite needs none of this: one process writes the file and watches its
-- own commits (sqlstore/readcache.go).

-- +goose Up
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION bump_identity_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE organizations SET identity_version = identity_version + 1 WHERE id = OLD.org_id;
    IF TG_OP = 'UPDATE' THEN
        IF NEW.org_id IS DISTINCT FROM OLD.org_id THEN
            UPDATE organizations SET identity_version = identity_version + 1 WHERE id = NEW.org_id;
        END IF;
    END IF;
    PERFORM pg_notify('dcvaas_changes', current_schema() || ':identity');
    RETURN NULL;
END $$;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE OR REPLACE FUNCTION bump_own_identity_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.identity_version := OLD.identity_version + 1;
    PERFORM pg_notify('dcvaas_changes', current_schema() || ':identity');
    RETURN NEW;
END $$;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE OR REPLACE FUNCTION bump_delivery_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE delivery_version SET version = version + 1 WHERE id = 1;
    PERFORM pg_notify('dcvaas_changes', current_schema() || ':delivery');
    RETURN NULL;
END $$;
-- +goose StatementEnd

-- +goose Down
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION bump_identity_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE organizations SET identity_version = identity_version + 1 WHERE id = OLD.org_id;
    IF TG_OP = 'UPDATE' THEN
        IF NEW.org_id IS DISTINCT FROM OLD.org_id THEN
            UPDATE organizations SET identity_version = identity_version + 1 WHERE id = NEW.org_id;
        END IF;
    END IF;
    RETURN NULL;
END $$;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE OR REPLACE FUNCTION bump_own_identity_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.identity_version := OLD.identity_version + 1;
    RETURN NEW;
END $$;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE OR REPLACE FUNCTION bump_delivery_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE delivery_version SET version = version + 1 WHERE id = 1;
    RETURN NULL;
END $$;
-- +goose StatementEnd
