-- Which of dcvaas's accounts at a CA a domain uses (DCVAAS_ACME_<NAME>_ACCOUNTS):
-- assigned once, so every renewal goes through the account that issued
-- the certificate it replaces (ARI's replaces must come from it). Account
-- n > 1 is stored in acme_accounts under directory_url '<directory>#account=n'.

-- +goose Up
CREATE TABLE domain_acme_accounts (
    domain_id  TEXT NOT NULL REFERENCES domains (id) ON DELETE CASCADE,
    ca_name    TEXT NOT NULL,
    account    INTEGER NOT NULL CHECK (account >= 1),
    created_at BIGINT NOT NULL,
    PRIMARY KEY (domain_id, ca_name)
);

-- Domains are dealt to a CA's accounts in turn: next counts the deals.
CREATE TABLE acme_account_cursor (
    ca_name TEXT PRIMARY KEY,
    next    BIGINT NOT NULL
);

-- +goose Down
DROP TABLE acme_account_cursor;
DROP TABLE domain_acme_accounts;
