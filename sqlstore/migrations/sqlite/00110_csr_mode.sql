-- Customer-held keys (issue 12, CSR mode):
--
--   - domains.key_mode: 'managed' (dcvaas generates and seals the keys, as
--     before) or 'csr' (the customer holds the key and submits a CSR).
--   - domain_csrs: the CSR a csr-mode domain orders with (public data: a
--     CSR holds no secret), replaced whenever the customer rotates the key.
--   - acme_orders.csr_pem: the CSR a pending order is finalized with, so a
--     resumed order uses the CSR it began with even if a new one arrived
--     since. key_enc stays empty for such orders: there is no key.

-- +goose Up
ALTER TABLE domains ADD COLUMN key_mode TEXT NOT NULL DEFAULT 'managed';
CREATE TABLE domain_csrs (
    domain_id         TEXT PRIMARY KEY REFERENCES domains (id) ON DELETE CASCADE,
    csr_pem           TEXT NOT NULL,
    key_type          TEXT NOT NULL,
    public_key_sha256 TEXT NOT NULL,
    submitted_at      BIGINT NOT NULL
);
ALTER TABLE acme_orders ADD COLUMN csr_pem TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE acme_orders DROP COLUMN csr_pem;
DROP TABLE domain_csrs;
ALTER TABLE domains DROP COLUMN key_mode;
