-- Every node serving the verify zone's DNS records here which snapshot of
-- challenge_records its copy in memory was last read from. A node that
-- publishes a challenge value waits, before the CA is asked to validate,
-- until every live node's snapshot shows the write (sqlstore/challengefeed.go):
-- CAs ask every nameserver, from several network perspectives, and all
-- must give the same answer.
--
-- SQLite has no such table: its nodes are processes on one file, whose
-- copies follow the file within milliseconds (PRAGMA data_version).

-- +goose Up
CREATE TABLE dns_feed_nodes (
    id TEXT PRIMARY KEY,            -- one running DNS server's feed, new at each start
    snapshot pg_snapshot NOT NULL,  -- of its last full read of challenge_records
    seen_at TIMESTAMPTZ NOT NULL    -- its last sign of life (a read, or the heartbeat)
);

-- +goose Down
DROP TABLE dns_feed_nodes;
