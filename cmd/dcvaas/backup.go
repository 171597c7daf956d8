package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/dcvaas/dcvaas/crypt"
	"github.com/dcvaas/dcvaas/sqlstore"
)

// backup is `dcvaas backup --to FILE`: an online, consistent copy of the
// SQLite database while serve keeps running. PostgreSQL is backed up with
// its own tools (README, Running in production).
func backup(ctx context.Context, fs *flag.FlagSet, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	to := fs.String("to", "", "file to write the copy to; must not exist (required)")
	cfg, err := parseConfig(fs, args, getenv)
	if err != nil {
		return err
	}
	if *to == "" {
		return errors.New("--to FILE is required")
	}
	if cfg.Dialect != sqlstore.SQLite {
		return sqlstore.ErrBackupPostgres
	}
	log := newLogger(cfg, stderr)
	db, err := openStore(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer db.Close()
	if err := db.Backup(ctx, *to); err != nil {
		return err
	}
	info, err := os.Stat(*to)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "backup written to %s (%d bytes); secrets in it stay sealed: keep %s with it, or DCVAAS_ENCRYPTION_KEY\n", *to, info.Size(), cfg.KeyFile())
	return nil
}

// restore is `dcvaas restore --from FILE`: it replaces the SQLite database
// with a backup, but only after the copy has passed SQLite's integrity check
// and the configured encryption key has opened its secrets — so a backup
// made under another key is refused before anything is overwritten. Every
// serve using the database must be stopped first.
func restore(ctx context.Context, fs *flag.FlagSet, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	from := fs.String("from", "", "backup file made by dcvaas backup (required)")
	cfg, err := parseConfig(fs, args, getenv)
	if err != nil {
		return err
	}
	if *from == "" {
		return errors.New("--from FILE is required")
	}
	if cfg.Dialect != sqlstore.SQLite {
		return errors.New("dcvaas restore replaces SQLite databases; restore PostgreSQL with pg_restore (see README, Running in production)")
	}
	_, target, _ := sqlstore.ParseURL(cfg.DatabaseURL)
	kr, err := restoreKeyring(cfg)
	if err != nil {
		return err
	}
	log := newLogger(cfg, stderr)

	// Check a private copy beside the target, so that the final step is a
	// rename within one directory.
	if err := os.MkdirAll(filepath.Dir(target), 0o700); err != nil {
		return err
	}
	tmp := target + ".restoring"
	if err := copyFile(*from, tmp); err != nil {
		return err
	}
	cleanup := func() {
		for _, p := range []string{tmp, tmp + "-wal", tmp + "-shm"} {
			os.Remove(p)
		}
	}
	db, err := sqlstore.Open(ctx, "sqlite://"+tmp, sqlstore.Options{Logger: log})
	if err != nil {
		cleanup()
		return fmt.Errorf("open %s: %w", *from, err)
	}
	if err = db.IntegrityCheck(ctx); err == nil {
		var n int
		if n, err = db.CheckSecrets(ctx, kr); err == nil {
			fmt.Fprintf(stdout, "backup checked: integrity ok, %d sealed values opened with key %s\n", n, kr.CurrentKeyID())
		}
	}
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		cleanup()
		return fmt.Errorf("restore refused, nothing was changed: %w", err)
	}
	// A WAL left beside the old database would be replayed into the new
	// one; the copy was checkpointed when its handle closed.
	for _, p := range []string{target + "-wal", target + "-shm", tmp + "-wal", tmp + "-shm"} {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			cleanup()
			return err
		}
	}
	if err := os.Rename(tmp, target); err != nil {
		cleanup()
		return err
	}
	fmt.Fprintf(stdout, "restored %s from %s\n", target, *from)
	return nil
}

// restoreKeyring is the configured keyring, without ever creating a key
// file: restoring under a freshly generated key would be a restore that no
// secret survives.
func restoreKeyring(cfg *Config) (*crypt.Keyring, error) {
	key := cfg.EncryptionKey
	if key == nil {
		if _, err := os.Stat(cfg.KeyFile()); err != nil {
			return nil, fmt.Errorf("no DCVAAS_ENCRYPTION_KEY and no key file at %s: put back the key the backup was made with first", cfg.KeyFile())
		}
		var err error
		if key, _, err = crypt.LoadOrCreateKeyFile(cfg.KeyFile()); err != nil {
			return nil, err
		}
	}
	return crypt.NewKeyring(key, cfg.Connections.OldKeys...)
}

// copyFile copies src to a new 0600 file dst, replacing any leftover dst.
func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if err := out.Sync(); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
