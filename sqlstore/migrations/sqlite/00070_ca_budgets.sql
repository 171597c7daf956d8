-- CA rate-limit budgets (cabudget/), shared by every node. A budget of C
-- per W is a token bucket kept as one number: tat, its theoretical arrival
-- time (GCRA). Taking a token is one conditional UPDATE, so no two nodes
-- spend the last one. A budget without a row is full.
--
-- Jobs and domains say what a deferred issuance waits for, and until when.

-- +goose Up
CREATE TABLE ca_budgets (
    key        TEXT PRIMARY KEY,
    ca_name    TEXT NOT NULL,
    kind       TEXT NOT NULL CHECK (kind IN ('orders', 'per-domain', 'duplicate', 'failed-authz')),
    subject    TEXT NOT NULL,
    capacity   INTEGER NOT NULL CHECK (capacity > 0),
    window_us  BIGINT NOT NULL CHECK (window_us > 0),
    tat        BIGINT NOT NULL,
    taken      BIGINT NOT NULL DEFAULT 0,
    exempt     BIGINT NOT NULL DEFAULT 0,
    updated_at BIGINT NOT NULL
);
CREATE INDEX ca_budgets_tat ON ca_budgets (tat);

ALTER TABLE jobs ADD COLUMN waiting_for TEXT NOT NULL DEFAULT '';
ALTER TABLE jobs ADD COLUMN wait_until BIGINT;
ALTER TABLE domains ADD COLUMN waiting_for TEXT NOT NULL DEFAULT '';
ALTER TABLE domains ADD COLUMN wait_until BIGINT;

-- +goose Down
ALTER TABLE domains DROP COLUMN wait_until;
ALTER TABLE domains DROP COLUMN waiting_for;
ALTER TABLE jobs DROP COLUMN wait_until;
ALTER TABLE jobs DROP COLUMN waiting_for;
DROP TABLE ca_budgets;
