-- Every node's DNS server answers from a copy of challenge_records in
-- memory (sqlstore/challengefeed.go). A change by any node notifies them
-- all, once per statement; the payload is the writer's schema, so that
-- schemas sharing one database (tests) tell their changes apart.
--
-- SQLite needs no trigger: processes sharing its file see each other's
-- commits through PRAGMA data_version.

-- +goose Up
-- +goose StatementBegin
CREATE FUNCTION notify_challenge_records() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('dcvaas_challenge_records', current_schema());
    RETURN NULL;
END $$;
-- +goose StatementEnd

CREATE TRIGGER challenge_records_notify AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON challenge_records
    FOR EACH STATEMENT EXECUTE FUNCTION notify_challenge_records();

-- +goose Down
DROP TRIGGER challenge_records_notify ON challenge_records;
DROP FUNCTION notify_challenge_records();
