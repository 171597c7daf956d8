-- DNS provider connections (issue 6). oauth_connections exists since 00001;
-- this adds who created a connection and why it last failed, and the table
-- of pending OAuth authorizations.
--
-- Every sealed value (crypt.Keyring envelope) uses its row's primary key as
-- associated data, so `dcvaas keys rotate` can re-seal any table the same way.

-- +goose Up
ALTER TABLE oauth_connections ADD COLUMN created_by TEXT NOT NULL DEFAULT '';
ALTER TABLE oauth_connections ADD COLUMN last_error TEXT NOT NULL DEFAULT '';

-- One row per authorization attempt (RFC 9700 §2.1: single-use state bound
-- to the org and user, with the PKCE verifier). Only the SHA-256 of the
-- state is kept; used_at makes a replay recognizable instead of "unknown".
CREATE TABLE oauth_states (
    state_hash   TEXT PRIMARY KEY,
    org_id       TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    user_id      TEXT NOT NULL DEFAULT '',
    provider     TEXT NOT NULL,
    verifier_enc TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    used_at      BIGINT
);
CREATE INDEX oauth_states_expires ON oauth_states (expires_at);

-- +goose Down
DROP TABLE oauth_states;
ALTER TABLE oauth_connections DROP COLUMN last_error;
ALTER TABLE oauth_connections DROP COLUMN created_by;
