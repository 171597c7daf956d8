-- Organization names are display names, not unique across tenants (issue
-- 13): a unique name let one tenant squat a future customer's name and
-- learn which names exist by trying them.

-- +goose Up
DROP INDEX organizations_name;

-- +goose Down
CREATE UNIQUE INDEX organizations_name ON organizations (lower(name));
