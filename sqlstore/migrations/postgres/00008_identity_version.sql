-- The API keeps who a token is (the token, its user's membership, the
-- organization's defaults) in memory, and every request confirms the
-- answer through the organization's identity_version, which the request's
-- rate-limit count reads in the same round trip (sqlstore/admit.go). These
-- triggers move the version whenever one of those rows changes or goes, by
-- any statement of any node, so a revoked token is refused at its next
-- request anywhere in the cluster. Recording a token's use (last_used_at)
-- does not count. New rows need no bump: nothing can have cached them.
--
-- SQLite needs none of this: one process writes the file, and its store
-- watches the same tables through a pre-update hook (readcache.go).

-- +goose Up
ALTER TABLE organizations ADD COLUMN identity_version BIGINT NOT NULL DEFAULT 0;

-- +goose StatementBegin
CREATE FUNCTION bump_identity_version() RETURNS trigger LANGUAGE plpgsql AS $$
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
CREATE FUNCTION bump_own_identity_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.identity_version := OLD.identity_version + 1;
    RETURN NEW;
END $$;
-- +goose StatementEnd

CREATE TRIGGER api_tokens_identity AFTER UPDATE ON api_tokens FOR EACH ROW
    WHEN ((to_jsonb(OLD) - 'last_used_at') IS DISTINCT FROM (to_jsonb(NEW) - 'last_used_at'))
    EXECUTE FUNCTION bump_identity_version();
CREATE TRIGGER api_tokens_identity_gone AFTER DELETE ON api_tokens FOR EACH ROW
    EXECUTE FUNCTION bump_identity_version();
CREATE TRIGGER organization_members_identity AFTER UPDATE OR DELETE ON organization_members FOR EACH ROW
    EXECUTE FUNCTION bump_identity_version();
-- Any other change of the organization's row moves its version; a bump
-- (which changes the version itself) is left as it is.
CREATE TRIGGER organizations_identity BEFORE UPDATE ON organizations FOR EACH ROW
    WHEN (NEW.identity_version = OLD.identity_version AND to_jsonb(NEW) IS DISTINCT FROM to_jsonb(OLD))
    EXECUTE FUNCTION bump_own_identity_version();

-- +goose Down
DROP TRIGGER organizations_identity ON organizations;
DROP TRIGGER organization_members_identity ON organization_members;
DROP TRIGGER api_tokens_identity_gone ON api_tokens;
DROP TRIGGER api_tokens_identity ON api_tokens;
DROP FUNCTION bump_own_identity_version();
DROP FUNCTION bump_identity_version();
ALTER TABLE organizations DROP COLUMN identity_version;
