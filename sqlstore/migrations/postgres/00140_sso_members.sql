-- Single sign-on (issue 17): a browser signed in through OpenID Connect has
-- no API token; its session names the user and the organization instead,
-- and lives while that membership does. Memberships gain the read-only
-- role viewer, which caps every token of its user to read.

-- +goose Up
ALTER TABLE organization_members DROP CONSTRAINT organization_members_role_check;
ALTER TABLE organization_members ADD CONSTRAINT organization_members_role_check
    CHECK (role IN ('owner', 'admin', 'member', 'viewer'));

ALTER TABLE web_sessions ALTER COLUMN token_id DROP NOT NULL;
ALTER TABLE web_sessions ADD COLUMN user_id TEXT REFERENCES users (id) ON DELETE CASCADE;
ALTER TABLE web_sessions ADD COLUMN org_id TEXT REFERENCES organizations (id) ON DELETE CASCADE;
ALTER TABLE web_sessions ADD CONSTRAINT web_sessions_owner
    CHECK (token_id IS NOT NULL OR (user_id IS NOT NULL AND org_id IS NOT NULL));
CREATE INDEX web_sessions_user ON web_sessions (user_id);

-- +goose Down
DELETE FROM web_sessions WHERE token_id IS NULL;
DROP INDEX web_sessions_user;
ALTER TABLE web_sessions DROP CONSTRAINT web_sessions_owner;
ALTER TABLE web_sessions DROP COLUMN org_id;
ALTER TABLE web_sessions DROP COLUMN user_id;
ALTER TABLE web_sessions ALTER COLUMN token_id SET NOT NULL;

UPDATE organization_members SET role = 'member' WHERE role = 'viewer';
ALTER TABLE organization_members DROP CONSTRAINT organization_members_role_check;
ALTER TABLE organization_members ADD CONSTRAINT organization_members_role_check
    CHECK (role IN ('owner', 'admin', 'member'));
