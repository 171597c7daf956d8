-- Timestamps are BIGINT Unix microseconds (UTC) in both dialects: the same
-- SQL text then compares and orders them correctly on SQLite and PostgreSQL.

-- +goose Up
CREATE TABLE organizations (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    settings   JSONB NOT NULL DEFAULT '{}',
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX organizations_name ON organizations (lower(name));

CREATE TABLE users (
    id         TEXT PRIMARY KEY,
    email      TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX users_email ON users (lower(email));

CREATE TABLE organization_members (
    org_id     TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role       TEXT NOT NULL CHECK (role IN ('owner', 'admin', 'member')),
    created_at BIGINT NOT NULL,
    PRIMARY KEY (org_id, user_id)
);
CREATE INDEX organization_members_user ON organization_members (user_id);

CREATE TABLE api_tokens (
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
CREATE INDEX api_tokens_org ON api_tokens (org_id, created_at DESC);

CREATE TABLE domains (
    id               TEXT PRIMARY KEY,
    org_id           TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    domain_name      TEXT NOT NULL,
    cname_target     TEXT NOT NULL UNIQUE,
    status           TEXT NOT NULL CHECK (status IN ('pending_cname', 'issuing', 'active', 'failed')),
    last_error       TEXT NOT NULL DEFAULT '',
    include_wildcard BOOLEAN NOT NULL,
    key_type         TEXT NOT NULL,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL,
    last_issued_at   BIGINT,
    expires_at       BIGINT,
    deleted_at       BIGINT
);
-- One live domain per name per organization; deleted ones may repeat.
CREATE UNIQUE INDEX domains_org_name ON domains (org_id, domain_name) WHERE deleted_at IS NULL;
CREATE INDEX domains_org_created ON domains (org_id, created_at DESC, id DESC) WHERE deleted_at IS NULL;
CREATE INDEX domains_status_expires ON domains (status, expires_at) WHERE deleted_at IS NULL;

CREATE TABLE jobs (
    id           TEXT PRIMARY KEY,
    org_id       TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    domain_id    TEXT NOT NULL REFERENCES domains (id) ON DELETE CASCADE,
    type         TEXT NOT NULL CHECK (type IN ('dns_check', 'start_issuance', 'renewal')),
    status       TEXT NOT NULL CHECK (status IN ('queued', 'running', 'succeeded', 'failed')),
    attempts     INTEGER NOT NULL DEFAULT 0,
    max_attempts INTEGER NOT NULL,
    result       JSONB,
    last_error   TEXT NOT NULL DEFAULT '',
    run_at       BIGINT NOT NULL,
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL
);
CREATE INDEX jobs_org_created ON jobs (org_id, created_at DESC, id DESC);
CREATE INDEX jobs_domain_created ON jobs (domain_id, created_at DESC, id DESC);
CREATE INDEX jobs_org_status ON jobs (org_id, status, created_at DESC);

CREATE TABLE certificates (
    id              TEXT PRIMARY KEY,
    org_id          TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    domain_id       TEXT NOT NULL REFERENCES domains (id) ON DELETE CASCADE,
    serial_number   TEXT NOT NULL,
    issuer          TEXT NOT NULL,
    ca_name         TEXT NOT NULL,
    order_url       TEXT NOT NULL DEFAULT '',
    dns_names       TEXT NOT NULL,
    not_before      BIGINT NOT NULL,
    not_after       BIGINT NOT NULL,
    chain_pem       TEXT NOT NULL,
    private_key_enc TEXT NOT NULL,
    created_at      BIGINT NOT NULL
);
CREATE INDEX certificates_domain ON certificates (domain_id, created_at DESC);

CREATE TABLE audit_logs (
    id          TEXT PRIMARY KEY,
    org_id      TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    user_id     TEXT NOT NULL DEFAULT '',
    token_id    TEXT NOT NULL DEFAULT '',
    action      TEXT NOT NULL,
    entity_type TEXT NOT NULL,
    entity_id   TEXT NOT NULL,
    details     JSONB NOT NULL DEFAULT '{}',
    ip          TEXT NOT NULL DEFAULT '',
    user_agent  TEXT NOT NULL DEFAULT '',
    created_at  BIGINT NOT NULL
);
CREATE INDEX audit_logs_org_created ON audit_logs (org_id, created_at DESC, id DESC);
CREATE INDEX audit_logs_org_action ON audit_logs (org_id, action, created_at DESC);

-- Connections to customers' DNS providers; secrets sealed by crypt.Keyring.
CREATE TABLE oauth_connections (
    id               TEXT PRIMARY KEY,
    org_id           TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    provider         TEXT NOT NULL CHECK (provider IN ('cloudflare', 'godaddy', 'route53')),
    kind             TEXT NOT NULL CHECK (kind IN ('oauth', 'credential')),
    status           TEXT NOT NULL,
    display_name     TEXT NOT NULL DEFAULT '',
    secret_enc       TEXT NOT NULL,
    token_expires_at BIGINT,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL
);
CREATE INDEX oauth_connections_org ON oauth_connections (org_id, created_at DESC);

-- Fixed one-minute windows of API requests per organization, shared by all
-- nodes of a cluster.
CREATE TABLE rate_limits (
    key          TEXT NOT NULL,
    window_start BIGINT NOT NULL,
    count        INTEGER NOT NULL,
    PRIMARY KEY (key, window_start)
);

-- +goose Down
DROP TABLE rate_limits;
DROP TABLE oauth_connections;
DROP TABLE audit_logs;
DROP TABLE certificates;
DROP TABLE jobs;
DROP TABLE domains;
DROP TABLE api_tokens;
DROP TABLE organization_members;
DROP TABLE users;
DROP TABLE organizations;
