-- Tokens are contained (issue 13): a token created by another token
-- records it as its parent, and revoking a token revokes the tokens it
-- created, transitively. Tokens made at bootstrap or on the command line
-- have none. A parent row that goes (its user or organization deleted)
-- takes its children with it.

-- +goose Up
ALTER TABLE api_tokens ADD COLUMN parent_id TEXT REFERENCES api_tokens (id) ON DELETE CASCADE;
CREATE INDEX api_tokens_parent ON api_tokens (parent_id) WHERE parent_id IS NOT NULL;

-- +goose Down
DROP INDEX api_tokens_parent;
ALTER TABLE api_tokens DROP COLUMN parent_id;
