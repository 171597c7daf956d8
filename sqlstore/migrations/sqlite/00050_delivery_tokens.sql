-- Certificate delivery (issue 12):
--
--   - api_tokens: a third role, delivery (lists domains, reads
--     certificates and keys, nothing else), and its optional scope, a JSON
--     dcvaas.TokenScope (NULL: every domain of the organization). SQLite
--     cannot change a CHECK constraint in place, so the table is rebuilt
--     (https://www.sqlite.org/lang_altertable.html#otheralter); no table
--     references api_tokens.
--   - key_read_windows: the open audit window of each (token, certificate)
--     whose key a delivery token reads, so that its readings make one
--     audit entry per hour with a count instead of one entry each.
--   - delivery_version: one number that moves whenever what a certificate
--     endpoint could serve changes (a certificate saved or gone, a domain's
--     status, name, wildcard or deletion changed), kept by triggers so that
--     every writer, on every node, moves it. The Caddy endpoint keeps
--     decrypted bundles while it stays put.

-- +goose Up
CREATE TABLE api_tokens_new (
    id           TEXT PRIMARY KEY,
    org_id       TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    user_id      TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    prefix       TEXT NOT NULL,
    token_hash   TEXT NOT NULL UNIQUE,
    role         TEXT NOT NULL CHECK (role IN ('admin', 'read', 'delivery')),
    created_at   BIGINT NOT NULL,
    last_used_at BIGINT,
    expires_at   BIGINT,
    revoked_at   BIGINT,
    scope        TEXT
);
INSERT INTO api_tokens_new (id, org_id, user_id, name, prefix, token_hash, role, created_at, last_used_at, expires_at, revoked_at)
SELECT id, org_id, user_id, name, prefix, token_hash, role, created_at, last_used_at, expires_at, revoked_at FROM api_tokens;
DROP TABLE api_tokens;
ALTER TABLE api_tokens_new RENAME TO api_tokens;
CREATE INDEX api_tokens_org ON api_tokens (org_id, created_at DESC);

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

CREATE TRIGGER certificates_delivery_insert AFTER INSERT ON certificates
BEGIN UPDATE delivery_version SET version = version + 1 WHERE id = 1; END;
CREATE TRIGGER certificates_delivery_update AFTER UPDATE ON certificates
BEGIN UPDATE delivery_version SET version = version + 1 WHERE id = 1; END;
CREATE TRIGGER certificates_delivery_delete AFTER DELETE ON certificates
BEGIN UPDATE delivery_version SET version = version + 1 WHERE id = 1; END;
CREATE TRIGGER domains_delivery_update AFTER UPDATE ON domains
WHEN OLD.status IS NOT NEW.status OR OLD.deleted_at IS NOT NEW.deleted_at
  OR OLD.domain_name IS NOT NEW.domain_name OR OLD.include_wildcard IS NOT NEW.include_wildcard
BEGIN UPDATE delivery_version SET version = version + 1 WHERE id = 1; END;
CREATE TRIGGER domains_delivery_delete AFTER DELETE ON domains
BEGIN UPDATE delivery_version SET version = version + 1 WHERE id = 1; END;

-- +goose Down
DROP TRIGGER domains_delivery_delete;
DROP TRIGGER domains_delivery_update;
DROP TRIGGER certificates_delivery_delete;
DROP TRIGGER certificates_delivery_update;
DROP TRIGGER certificates_delivery_insert;
DROP TABLE delivery_version;
DROP TABLE key_read_windows;
CREATE TABLE api_tokens_old (
    id           TEXT PRIMARY KEY,
    org_id       TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    user_id      TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    prefix       TEXT NOT NULL,
    token_hash   TEXT NOT NULL UNIQUE,
    role         TEXT NOT NULL CHECK (role IN ('admin', 'read')),
    created_at   BIGINT NOT NULL,
    last_used_at BIGINT,
    expires_at   BIGINT,
    revoked_at   BIGINT
);
INSERT INTO api_tokens_old (id, org_id, user_id, name, prefix, token_hash, role, created_at, last_used_at, expires_at, revoked_at)
SELECT id, org_id, user_id, name, prefix, token_hash, role, created_at, last_used_at, expires_at, revoked_at FROM api_tokens
WHERE role <> 'delivery';
DROP TABLE api_tokens;
ALTER TABLE api_tokens_old RENAME TO api_tokens;
CREATE INDEX api_tokens_org ON api_tokens (org_id, created_at DESC);
