package sqlstore

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/pressly/goose/v3"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// Dialect names a supported database.
type Dialect string

const (
	SQLite   Dialect = "sqlite"
	Postgres Dialect = "postgres"
)

func (d Dialect) gooseDialect() goose.Dialect {
	if d == Postgres {
		return goose.DialectPostgres
	}
	return goose.DialectSQLite3
}

// isUniqueViolation reports whether err is a UNIQUE constraint failure.
func isUniqueViolation(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code == "23505"
	}
	var sqliteErr *sqlite.Error
	if errors.As(err, &sqliteErr) {
		return sqliteErr.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE || sqliteErr.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
	}
	return false
}

// forUpdate locks the selected rows until the transaction ends. SQLite needs
// no clause: its transactions here begin IMMEDIATE and so hold the one write lock.
func (d Dialect) forUpdate() string {
	if d == Postgres {
		return " FOR UPDATE"
	}
	return ""
}

// jsonText is the text of a top-level field of a JSON column (NULL when
// absent): PostgreSQL stores results as JSONB, SQLite as text.
func (d Dialect) jsonText(column, field string) string {
	if d == Postgres {
		return column + "->>'" + field + "'"
	}
	return "json_extract(" + column + ", '$." + field + "')"
}

// IsUnavailable reports whether err says the database could not do the
// work in time rather than that the work is wrong: SQLite busy or locked
// (another connection or process holds the lock past busy_timeout),
// PostgreSQL lock or statement timeouts, cancellations, deadlocks and
// connection limits, or the caller's deadline passing. Such a request can
// be tried again: the API answers 503 with Retry-After, not 500.
func IsUnavailable(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var sqliteErr *sqlite.Error
	if errors.As(err, &sqliteErr) {
		switch sqliteErr.Code() & 0xff {
		case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED, sqlite3.SQLITE_INTERRUPT:
			return true
		}
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case "55P03", // lock_not_available (lock_timeout)
			"57014", // query_canceled (statement_timeout, cancel)
			"40P01", // deadlock_detected
			"40001", // serialization_failure
			"53300", // too_many_connections
			"57P03": // cannot_connect_now
			return true
		}
	}
	return false
}
