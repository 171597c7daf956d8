-- ACME issuance state shared by every node of a cluster: the DNS-01 TXT
-- values the built-in DNS server answers, the ACME accounts, pending orders
-- (so a restarted job resumes instead of ordering again), CA back-offs, and
-- failed validations per hostname.

-- +goose Up

-- TXT values at challenge names of the verify zone. One name (a domain's
-- cname_target) holds several values at once: the apex and the wildcard
-- authorization of one order each put one (RFC 8555 §8.4). key names the
-- authorization, so a value is replaced or removed without touching the other.
CREATE TABLE challenge_records (
    name       TEXT NOT NULL,
    key        TEXT NOT NULL,
    value      TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (name, key)
);
CREATE INDEX challenge_records_created ON challenge_records (created_at);

-- One account per CA and directory; the key is written before the account
-- is registered, so nodes racing on first use all end up with the same key
-- (and so the same account: RFC 8555 §7.3.1 returns the existing one).
CREATE TABLE acme_accounts (
    ca_name       TEXT NOT NULL,
    directory_url TEXT NOT NULL,
    key_enc       TEXT NOT NULL,
    account_url   TEXT NOT NULL DEFAULT '',
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL,
    PRIMARY KEY (ca_name, directory_url)
);

-- The order a domain's issuance is working on, written right after newOrder
-- and before any polling, with the sealed key its CSR will carry.
CREATE TABLE acme_orders (
    domain_id     TEXT PRIMARY KEY REFERENCES domains (id) ON DELETE CASCADE,
    org_id        TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    ca_name       TEXT NOT NULL,
    directory_url TEXT NOT NULL,
    order_url     TEXT NOT NULL,
    key_type      TEXT NOT NULL,
    key_enc       TEXT NOT NULL,
    replaces      TEXT NOT NULL DEFAULT '',
    created_at    BIGINT NOT NULL
);

-- A CA that asked us to stay away (Retry-After on rateLimited or 5xx) is
-- skipped by every node until until_at.
CREATE TABLE ca_backoffs (
    ca_name    TEXT PRIMARY KEY,
    until_at   BIGINT NOT NULL,
    reason     TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- Failed validations, counted per hostname over the last hour.
CREATE TABLE validation_failures (
    id        TEXT PRIMARY KEY,
    hostname  TEXT NOT NULL,
    ca_name   TEXT NOT NULL,
    domain_id TEXT NOT NULL,
    failed_at BIGINT NOT NULL
);
CREATE INDEX validation_failures_host ON validation_failures (hostname, failed_at);

-- +goose Down
DROP TABLE validation_failures;
DROP TABLE ca_backoffs;
DROP TABLE acme_orders;
DROP TABLE acme_accounts;
DROP TABLE challenge_records;
