-- Certificate delivery (issue 12); the SQLite migration of the same number
-- explains each part. Here the role CHECK changes in place, and the
-- triggers are statement-level where no row condition is needed.

-- +goose Up
ALTER TABLE api_tokens DROP CONSTRAINT api_tokens_role_check;
ALTER TABLE api_tokens ADD CONSTRAINT api_tokens_role_check CHECK (role IN ('admin', 'read', 'delivery'));
ALTER TABLE api_tokens ADD COLUMN scope TEXT;

CREATE TABLE key_read_windows (
    token_id       TEXT NOT NULL REFERENCES api_tokens (id) ON DELETE CASCADE,
    certificate_id TEXT NOT NULL REFERENCES certificates (id) ON DELETE CASCADE,
    audit_id       TEXT NOT NULL,
    window_start   BIGINT NOT NULL,
    reads          BIGINT NOT NULL,
    PRIMARY KEY (token_id, certificate_id)
);
CREATE INDEX key_read_windows_certificate ON key_read_windows (certificate_id);

CREATE TABLE delivery_version (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    version BIGINT NOT NULL
);
INSERT INTO delivery_version (id, version) VALUES (1, 0);

-- +goose StatementBegin
CREATE FUNCTION bump_delivery_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE delivery_version SET version = version + 1 WHERE id = 1;
    RETURN NULL;
END $$;
-- +goose StatementEnd

CREATE TRIGGER certificates_delivery AFTER INSERT OR UPDATE OR DELETE ON certificates
    FOR EACH STATEMENT EXECUTE FUNCTION bump_delivery_version();
CREATE TRIGGER domains_delivery_update AFTER UPDATE ON domains FOR EACH ROW
    WHEN (OLD.status IS DISTINCT FROM NEW.status OR OLD.deleted_at IS DISTINCT FROM NEW.deleted_at
      OR OLD.domain_name IS DISTINCT FROM NEW.domain_name OR OLD.include_wildcard IS DISTINCT FROM NEW.include_wildcard)
    EXECUTE FUNCTION bump_delivery_version();
CREATE TRIGGER domains_delivery_delete AFTER DELETE ON domains
    FOR EACH STATEMENT EXECUTE FUNCTION bump_delivery_version();

-- +goose Down
DROP TRIGGER domains_delivery_delete ON domains;
DROP TRIGGER domains_delivery_update ON domains;
DROP TRIGGER certificates_delivery ON certificates;
DROP FUNCTION bump_delivery_version();
DROP TABLE delivery_version;
DROP TABLE key_read_windows;
DELETE FROM api_tokens WHERE role = 'delivery';
ALTER TABLE api_tokens DROP COLUMN scope;
ALTER TABLE api_tokens DROP CONSTRAINT api_tokens_role_check;
ALTER TABLE api_tokens ADD CONSTRAINT api_tokens_role_check CHECK (role IN ('admin', 'read'));
