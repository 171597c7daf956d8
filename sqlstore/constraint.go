package sqlstore

import (
	"errors"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/dcvaas/dcvaas"
)

// checkFields names the API field of each column an enumeration CHECK
// guards, longest column name first so that "cname_status" is not taken
// for "status".
var checkFields = []struct{ column, field string }{
	{"cname_status", "cnameStatus"},
	{"key_type", "keyType"},
	{"provider", "provider"},
	{"status", "status"},
	{"role", "role"},
	{"kind", "kind"},
	{"type", "type"},
}

// checkViolation turns a CHECK constraint failure into EINVALID naming the
// field whose value the database refused; other errors pass unchanged.
// Constraints are named <table>_<column>_check on PostgreSQL and in the
// SQLite triggers of migration 00092; SQLite's own CHECKs report their
// expression, which starts with the column.
func checkViolation(err error) error {
	if err == nil {
		return nil
	}
	var detail string
	var pgErr *pgconn.PgError
	var sqliteErr *sqlite.Error
	switch {
	case errors.As(err, &pgErr) && pgErr.Code == "23514":
		detail = pgErr.ConstraintName
	case errors.As(err, &sqliteErr) && (sqliteErr.Code() == sqlite3.SQLITE_CONSTRAINT_CHECK || sqliteErr.Code() == sqlite3.SQLITE_CONSTRAINT_TRIGGER):
		_, detail, _ = strings.Cut(sqliteErr.Error(), "CHECK constraint failed: ")
		if detail == "" {
			return err
		}
	default:
		return err
	}
	field := "value"
	for _, c := range checkFields {
		if strings.Contains(detail, c.column) {
			field = c.field
			break
		}
	}
	return &dcvaas.Error{Code: dcvaas.EINVALID, Message: field + " is not one of the allowed values",
		Fields: map[string]string{field: "not one of the allowed values"}}
}
