package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/dcvaas/dcvaas/crypt"
	"github.com/dcvaas/dcvaas/sqlstore"
)

// app is what a command runs on: its configuration, logger, database and
// keyring. openApp is the one place that opens them, always in that order,
// so every subcommand starts, logs and fails the same way.
type app struct {
	cfg *Config
	log *slog.Logger
	db  *sqlstore.DB
	kr  *crypt.Keyring // nil unless asked for
}

// opening says what a command needs beyond its configuration.
type opening struct {
	// keyring: the command reads or writes secrets at rest.
	keyring bool
	// existing: the database must exist already; a command that only
	// adds to a running installation (bootstrap) must not create a second,
	// empty one because it was started from another directory.
	existing bool
}

// openApp opens the database (applying migrations, ours and the job
// queue's) and, when asked, the keyring.
func openApp(ctx context.Context, cfg *Config, stderr io.Writer, o opening) (*app, error) {
	a := &app{cfg: cfg, log: newLogger(cfg, stderr)}
	if cfg.Dialect == sqlstore.SQLite {
		_, path, _ := sqlstore.ParseURL(cfg.DatabaseURL)
		if o.existing {
			if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
				return nil, fmt.Errorf("DCVAAS_DATABASE_URL: no database at %s; start 'dcvaas serve' (or run 'dcvaas migrate') with the same setting first, or point DCVAAS_DATABASE_URL at the existing one", path)
			}
		}
		a.log.Info("database", "dialect", string(cfg.Dialect), "path", path)
	} else {
		a.log.Info("database", "dialect", string(cfg.Dialect))
	}
	var err error
	if a.db, err = openStore(ctx, cfg, a.log); err != nil {
		return nil, err
	}
	if o.keyring {
		if a.kr, err = keyring(cfg, a.log); err != nil {
			a.db.Close()
			return nil, err
		}
	}
	return a, nil
}

// Close closes the database.
func (a *app) Close() { a.db.Close() }

// absSQLitePath makes a relative SQLite path absolute against the working
// directory, once, at start: every command (and the key file beside the
// database) then names the same file, and the log says which.
func absSQLitePath(url string) string {
	dialect, path, err := sqlstore.ParseURL(url)
	if err != nil || dialect != sqlstore.SQLite || path == ":memory:" || strings.HasPrefix(path, "file:") {
		return url
	}
	file, query, _ := strings.Cut(path, "?")
	abs, err := filepath.Abs(file)
	if err != nil {
		return url
	}
	if query != "" {
		abs += "?" + query
	}
	return abs
}
