-- The event outbox (issue 11). Every change a customer cares about writes
-- one row here in the transaction that makes the change; the event list,
-- the SSE stream and webhook deliveries all read it.
--
-- seq orders the rows. On PostgreSQL, sequence values are taken before
-- commit, so a row with a lower seq can become visible after one with a
-- higher seq; readers therefore order by (txid, seq) and only read rows
-- whose transaction is older than every transaction still running
-- (pg_snapshot_xmin; see sqlstore/events.go), so a cursor never skips a
-- row that commits later.
--
-- id is the event's public id (UUIDv7, made by the writer; the webhook-id of
-- deliveries). It has no index: nothing looks events up by id yet, and each
-- index costs every change that writes an event.
--
-- dedupe_key, when set, makes an event happen at most once (e.g. one
-- certificate.expiring per threshold per certificate).

-- +goose Up
CREATE TABLE events (
    seq        BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    txid       BIGINT NOT NULL DEFAULT (pg_current_xact_id()::text::bigint),
    id         TEXT NOT NULL,
    org_id     TEXT NOT NULL,
    type       TEXT NOT NULL,
    domain_id  TEXT NOT NULL DEFAULT '',
    data       TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    dedupe_key TEXT UNIQUE
);
CREATE INDEX events_org ON events (org_id, txid, seq);
CREATE INDEX events_order ON events (txid, seq);
CREATE INDEX events_created ON events (created_at);

-- +goose Down
DROP TABLE events;
