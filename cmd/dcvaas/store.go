package main

import (
	"context"
	"flag"
	"io"
	"log/slog"

	"github.com/dcvaas/dcvaas/crypt"
	"github.com/dcvaas/dcvaas/jobs"
	"github.com/dcvaas/dcvaas/sqlstore"
)

// openStore connects to the configured database and applies migrations.
func openStore(ctx context.Context, cfg *Config, log *slog.Logger) (*sqlstore.DB, error) {
	db, err := sqlstore.Open(ctx, cfg.DatabaseURL, sqlstore.Options{Logger: log, MaxConns: cfg.DBMaxConns, Synchronous: cfg.Hardening.SQLiteSynchronous})
	if err != nil {
		return nil, err
	}
	if err := db.Migrate(ctx); err != nil {
		db.Close()
		return nil, err
	}
	// River's own tables (the job queue) migrate with ours.
	if err := jobs.Migrate(ctx, db); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

// readiness is GET /readyz: the database reachable and every migration
// applied, the store's and the job queue's (River's).
func readiness(db *sqlstore.DB) (func(context.Context) error, error) {
	queue, err := jobs.MigrationCheck(db)
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context) error {
		if err := db.Ping(ctx); err != nil {
			return err
		}
		return queue(ctx)
	}, nil
}

// keyring returns the encryption keys for secrets at rest. Without
// DCVAAS_ENCRYPTION_KEY (allowed with SQLite only) the key is generated once
// into a 0600 file beside the database, with a warning: losing that file
// loses every stored private key.
func keyring(cfg *Config, log *slog.Logger) (*crypt.Keyring, error) {
	key := cfg.EncryptionKey
	if key == nil {
		var created bool
		var err error
		if key, created, err = crypt.LoadOrCreateKeyFile(cfg.KeyFile()); err != nil {
			return nil, err
		}
		if created {
			log.Warn("DCVAAS_ENCRYPTION_KEY is unset: generated a key file; back it up, or set DCVAAS_ENCRYPTION_KEY", "file", cfg.KeyFile())
		}
	}
	return crypt.NewKeyring(key, cfg.Connections.OldKeys...)
}

// migrate is `dcvaas migrate`.
func migrate(ctx context.Context, fs *flag.FlagSet, args []string, getenv func(string) string, stderr io.Writer) error {
	cfg, err := parseConfig(fs, args, getenv)
	if err != nil {
		return err
	}
	a, err := openApp(ctx, cfg, stderr, opening{}) // app.go
	if err != nil {
		return err
	}
	defer a.Close()
	a.log.Info("migrations applied", "database", string(cfg.Dialect))
	return nil
}
