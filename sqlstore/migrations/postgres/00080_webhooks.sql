-- Webhook endpoints and their deliveries (issue 11).
--
-- webhooks.secret_enc and prev_secret_enc hold "whsec_…" secrets sealed by
-- the keyring with 'webhook:' || id as associated data (both columns, so a
-- rotation moves the envelope without opening it); `dcvaas keys rotate`
-- re-seals them (sqlstore/rotate.go).
--
-- webhook_deliveries: one row per (event, endpoint), made by the fan-out
-- that reads the event outbox after webhook_dispatch's cursor, in the
-- transaction that moves the cursor and queues the River jobs, so a crash
-- loses or doubles nothing. gen names the one queued attempt allowed to
-- run (a manual retry moves it on). payload is the event's JSON envelope,
-- kept so that retention of events never starves a delivery in flight.
--
-- webhook_attempts: every HTTP request of a delivery.

-- +goose Up
CREATE TABLE webhooks (
    id                     TEXT PRIMARY KEY,
    org_id                 TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    url                    TEXT NOT NULL,
    description            TEXT NOT NULL DEFAULT '',
    event_types            TEXT NOT NULL DEFAULT '[]',
    enabled                BOOLEAN NOT NULL,
    secret_enc             TEXT NOT NULL,
    prev_secret_enc        TEXT NOT NULL DEFAULT '',
    prev_secret_expires_at BIGINT,
    disabled_reason        TEXT NOT NULL DEFAULT '',
    failing_since          BIGINT,
    created_by             TEXT NOT NULL DEFAULT '',
    created_at             BIGINT NOT NULL,
    updated_at             BIGINT NOT NULL
);
CREATE INDEX webhooks_org ON webhooks (org_id, created_at);

CREATE TABLE webhook_deliveries (
    id               TEXT PRIMARY KEY,
    webhook_id       TEXT NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    org_id           TEXT NOT NULL,
    event_id         TEXT NOT NULL,
    event_type       TEXT NOT NULL,
    payload          TEXT NOT NULL,
    status           TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'failed', 'canceled')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    gen              BIGINT NOT NULL DEFAULT 0,
    next_attempt_at  BIGINT,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL,
    UNIQUE (event_id, webhook_id)
);
CREATE INDEX webhook_deliveries_webhook ON webhook_deliveries (webhook_id, created_at);
CREATE INDEX webhook_deliveries_created ON webhook_deliveries (created_at);

CREATE TABLE webhook_attempts (
    delivery_id   TEXT NOT NULL REFERENCES webhook_deliveries (id) ON DELETE CASCADE,
    attempt       INTEGER NOT NULL,
    started_at    BIGINT NOT NULL,
    status_code   INTEGER NOT NULL,
    error         TEXT NOT NULL,
    latency_us    BIGINT NOT NULL,
    response_body TEXT NOT NULL,
    PRIMARY KEY (delivery_id, attempt)
);

CREATE TABLE webhook_dispatch (
    id   INTEGER PRIMARY KEY CHECK (id = 1),
    txid BIGINT NOT NULL,
    seq  BIGINT NOT NULL
);
INSERT INTO webhook_dispatch (id, txid, seq) VALUES (1, 0, 0);

-- +goose Down
DROP TABLE webhook_dispatch;
DROP TABLE webhook_attempts;
DROP TABLE webhook_deliveries;
DROP TABLE webhooks;
