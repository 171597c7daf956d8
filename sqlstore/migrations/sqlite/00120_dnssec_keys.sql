-- DNSSEC keys of the verify zone (DCVAAS_DNSSEC): shared by every node,
-- private halves sealed with the keyring (AD 'dnssec-key:' || id).
-- dnssec_zones has one row per signed zone: inserting it is how the first
-- node to start claims the right to create the keys, and rollovers lock it.
-- A key's life is a schedule every node reads the same way: in the DNSKEY
-- RRset from published_at until removed_at, signing from active_at until
-- retired_at (0: not scheduled).

-- +goose Up
CREATE TABLE dnssec_zones (
    zone       TEXT PRIMARY KEY,
    created_at BIGINT NOT NULL,
    rolled_at  BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE dnssec_keys (
    id              TEXT PRIMARY KEY,
    zone            TEXT NOT NULL REFERENCES dnssec_zones (zone) ON DELETE CASCADE,
    flags           INTEGER NOT NULL,
    key_tag         INTEGER NOT NULL,
    public_key      TEXT NOT NULL,
    private_key_enc TEXT NOT NULL,
    published_at    BIGINT NOT NULL,
    active_at       BIGINT NOT NULL,
    retired_at      BIGINT NOT NULL DEFAULT 0,
    removed_at      BIGINT NOT NULL DEFAULT 0,
    created_at      BIGINT NOT NULL
);

CREATE INDEX dnssec_keys_zone ON dnssec_keys (zone);

-- +goose Down
DROP TABLE dnssec_keys;
DROP TABLE dnssec_zones;
