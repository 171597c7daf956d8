package jobs

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/dcvaas/dcvaas"
	"github.com/dcvaas/dcvaas/sqlstore"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/riverqueue/river/riverdriver"
	"github.com/riverqueue/river/riverdriver/riverdatabasesql"
	"github.com/riverqueue/river/riverdriver/riversqlite"
	"github.com/riverqueue/river/rivermigrate"
)

// migrateLockKey is the PostgreSQL advisory lock that serializes River's
// migrations when several nodes start at once ("dcvaas" + "rv" in ASCII).
const migrateLockKey = 0x6463766161737276

// Migrate applies River's own migrations (its river_job, river_leader, …
// tables) to the store's database. Call it after db.Migrate, before New.
func Migrate(ctx context.Context, db *sqlstore.DB) error {
	m, err := migrator(db)
	if err != nil {
		return fmt.Errorf("river migrations: %w", err)
	}
	if db.Dialect() == sqlstore.Postgres {
		// rivermigrate takes no lock of its own, and two nodes migrating at
		// once would both create the same tables. Its migrations must each
		// commit on their own (one adds an enum value that the next uses),
		// so the lock is a session lock on a connection held aside.
		conn, err := db.SQL().Conn(ctx)
		if err != nil {
			return err
		}
		defer conn.Close()
		if _, err := conn.ExecContext(ctx, `SELECT pg_advisory_lock($1)`, int64(migrateLockKey)); err != nil {
			return fmt.Errorf("river migrations: lock: %w", err)
		}
		defer conn.ExecContext(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, int64(migrateLockKey))
	}
	// On SQLite the one write connection already serializes everything.
	if _, err := m.Migrate(ctx, rivermigrate.DirectionUp, nil); err != nil {
		return fmt.Errorf("river migrations: %w", err)
	}
	return nil
}

// migrator is River's migrator for the store's database. Its driver has no
// LISTEN connection: migrations and their checks need none.
func migrator(db *sqlstore.DB) (*rivermigrate.Migrator[*sql.Tx], error) {
	var driver riverdriver.Driver[*sql.Tx]
	if db.Dialect() == sqlstore.SQLite {
		driver = riversqlite.New(db.SQL())
	} else {
		driver = riverdatabasesql.New(db.SQL())
	}
	return rivermigrate.New(driver, nil)
}

// MigrationCheck returns a readiness check (GET /readyz) that fails while
// River's migrations are not all applied to the store's database: a node
// whose queue tables are missing or behind — a database restored from an
// old backup, rolled back by an older binary, or swapped underneath —
// would take domains whose jobs never run.
//
// The check is one indexed query (River's own Validate runs several in a
// transaction, on SQLite the one write connection): the highest applied
// version of River's main migration line against the newest this binary
// knows. Migrations apply in order, so the highest tells the rest; a
// database migrated further by a newer binary counts as ready.
func MigrationCheck(db *sqlstore.DB) (func(context.Context) error, error) {
	m, err := migrator(db)
	if err != nil {
		return nil, fmt.Errorf("river migrations: %w", err)
	}
	all := m.AllVersions()
	want := all[len(all)-1].Version
	return func(ctx context.Context) error {
		var have int
		err := db.SQL().QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM river_migration WHERE line = 'main'`).Scan(&have)
		if err != nil {
			// Typically: no river_migration table (or one from before River
			// had migration lines).
			return &dcvaas.Error{Code: dcvaas.EUNAVAILABLE, Message: "job queue migrations not applied", Err: err}
		}
		if have < want {
			return dcvaas.Errorf(dcvaas.EUNAVAILABLE, "job queue migrations pending (version %d of %d applied)", have, want)
		}
		return nil
	}, nil
}

// listenerPool opens a small pgx pool with exactly the settings (host,
// credentials, search_path) of the store's pool, for River's LISTEN
// connections; database/sql cannot hold one.
func listenerPool(db *sql.DB) (*pgxpool.Pool, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := db.Conn(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	var cc *pgx.ConnConfig
	if err := conn.Raw(func(dc any) error {
		c, ok := dc.(*stdlib.Conn)
		if !ok {
			return errors.New("store pool is not pgx")
		}
		cc = c.Conn().Config()
		return nil
	}); err != nil {
		return nil, err
	}
	// pgxpool demands a Config made by ParseConfig; its ConnConfig is then
	// replaced wholesale by the store's.
	pc, err := pgxpool.ParseConfig("")
	if err != nil {
		return nil, err
	}
	pc.ConnConfig = cc
	// The copied config still carries the store connection's notification
	// buffer (pgx installs it at connect); left there, notifications for the
	// listener would land in that other connection and River would read nil.
	pc.ConnConfig.OnNotification = nil
	pc.MinConns, pc.MaxConns = 0, 2
	return pgxpool.NewWithConfig(ctx, pc)
}
