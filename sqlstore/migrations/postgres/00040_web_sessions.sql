-- Browser sign-in (issue 17) and the OAuth flow bound to it (issue 13).
--
-- A session is what a browser holds after signing in with an API token: a
-- random id in a cookie, of which only the SHA-256 is stored, tied to the
-- token that signed in so that revoking the token ends its sessions.

-- +goose Up
CREATE TABLE web_sessions (
    id_hash      TEXT PRIMARY KEY,
    token_id     TEXT NOT NULL REFERENCES api_tokens (id) ON DELETE CASCADE,
    created_at   BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL
);
CREATE INDEX web_sessions_token ON web_sessions (token_id);
CREATE INDEX web_sessions_expires ON web_sessions (expires_at);

-- The SHA-256 of the random value the start page put in the browser's
-- cookie (RFC 9700 §4.7.1); the callback completes only for that browser.
ALTER TABLE oauth_states ADD COLUMN binding_hash TEXT;

-- +goose Down
ALTER TABLE oauth_states DROP COLUMN binding_hash;
DROP TABLE web_sessions;
