-- Single sign-on (issue 17): a browser signed in through OpenID Connect has
-- no API token; its session names the user and the organization instead,
-- and lives while that membership does. Memberships gain the read-only
-- role viewer, which caps every token of its user to read.
--
-- SQLite cannot change a column's NOT NULL or a CHECK in place: both tables
-- are rebuilt. Nothing references either of them.

-- +goose Up
CREATE TABLE organization_members_new (
    org_id     TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role       TEXT NOT NULL CHECK (role IN ('owner', 'admin', 'member', 'viewer')),
    created_at BIGINT NOT NULL,
    PRIMARY KEY (org_id, user_id)
);
INSERT INTO organization_members_new (org_id, user_id, role, created_at)
    SELECT org_id, user_id, role, created_at FROM organization_members;
DROP TABLE organization_members;
ALTER TABLE organization_members_new RENAME TO organization_members;
CREATE INDEX organization_members_user ON organization_members (user_id);

CREATE TABLE web_sessions_new (
    id_hash      TEXT PRIMARY KEY,
    token_id     TEXT REFERENCES api_tokens (id) ON DELETE CASCADE,
    user_id      TEXT REFERENCES users (id) ON DELETE CASCADE,
    org_id       TEXT REFERENCES organizations (id) ON DELETE CASCADE,
    created_at   BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    CHECK (token_id IS NOT NULL OR (user_id IS NOT NULL AND org_id IS NOT NULL))
);
INSERT INTO web_sessions_new (id_hash, token_id, created_at, last_seen_at, expires_at)
    SELECT id_hash, token_id, created_at, last_seen_at, expires_at FROM web_sessions;
DROP TABLE web_sessions;
ALTER TABLE web_sessions_new RENAME TO web_sessions;
CREATE INDEX web_sessions_token ON web_sessions (token_id);
CREATE INDEX web_sessions_user ON web_sessions (user_id);
CREATE INDEX web_sessions_expires ON web_sessions (expires_at);

-- +goose Down
DELETE FROM web_sessions WHERE token_id IS NULL;
CREATE TABLE web_sessions_old (
    id_hash      TEXT PRIMARY KEY,
    token_id     TEXT NOT NULL REFERENCES api_tokens (id) ON DELETE CASCADE,
    created_at   BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL
);
INSERT INTO web_sessions_old SELECT id_hash, token_id, created_at, last_seen_at, expires_at FROM web_sessions;
DROP TABLE web_sessions;
ALTER TABLE web_sessions_old RENAME TO web_sessions;
CREATE INDEX web_sessions_token ON web_sessions (token_id);
CREATE INDEX web_sessions_expires ON web_sessions (expires_at);

UPDATE organization_members SET role = 'member' WHERE role = 'viewer';
CREATE TABLE organization_members_old (
    org_id     TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role       TEXT NOT NULL CHECK (role IN ('owner', 'admin', 'member')),
    created_at BIGINT NOT NULL,
    PRIMARY KEY (org_id, user_id)
);
INSERT INTO organization_members_old SELECT org_id, user_id, role, created_at FROM organization_members;
DROP TABLE organization_members;
ALTER TABLE organization_members_old RENAME TO organization_members;
CREATE INDEX organization_members_user ON organization_members (user_id);
