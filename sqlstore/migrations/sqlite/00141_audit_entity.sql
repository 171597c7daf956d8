-- A domain's page shows its timeline: the audit entries of that entity.

-- +goose Up
CREATE INDEX audit_logs_org_entity ON audit_logs (org_id, entity_id, created_at DESC);

-- +goose Down
DROP INDEX audit_logs_org_entity;
