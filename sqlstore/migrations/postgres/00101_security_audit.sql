-- The security audit (dcvaas.SecurityAuditStore): failed authentications
-- and denied private-key reads, in aggregate, one row per action,
-- organization ('' for none), client address and minute with a count. A
-- flood of bad requests so writes one row per source and minute.

-- +goose Up
CREATE TABLE security_audit (
    action  TEXT NOT NULL CHECK (action IN ('auth.failed', 'certificate.key_read_denied')),
    org_id  TEXT NOT NULL DEFAULT '',
    source  TEXT NOT NULL,
    minute  BIGINT NOT NULL,
    count   BIGINT NOT NULL CHECK (count > 0),
    PRIMARY KEY (action, org_id, source, minute)
);
CREATE INDEX security_audit_minute ON security_audit (minute DESC);

-- +goose Down
DROP TABLE security_audit;
