-- Request rate limits (dcvaas.RateLimiter) by GCRA instead of fixed
-- one-minute windows: one row per key (org:<id>, user:<id>) holding its
-- theoretical arrival time in microseconds, and how many requests the last
-- statement granted (so that a combined batch learns its members' fate
-- from the same atomic statement). A key without a row has its full budget.
-- rate_limits (fixed windows) stays for one release: nodes of the previous
-- release still count in it during a rolling upgrade.

-- +goose Up
CREATE TABLE rate_limit_tats (
    key     TEXT PRIMARY KEY,
    tat     BIGINT NOT NULL,
    granted INTEGER NOT NULL
);

-- +goose Down
DROP TABLE rate_limit_tats;
