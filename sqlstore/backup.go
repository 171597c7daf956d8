package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"os"
)

// ErrBackupPostgres is returned by Backup on PostgreSQL, whose own tools
// (pg_dump, or the server's base backups and WAL archive) do the job better
// than any copy through a client could.
var ErrBackupPostgres = errors.New("dcvaas backup copies SQLite databases; back PostgreSQL up with pg_dump (see README, Running in production)")

// Backup writes a consistent copy of an SQLite database to path while the
// service keeps running. VACUUM INTO reads inside one transaction, so the
// copy is one moment of the database even while writers go on, and the
// result is a plain, compacted database file with no WAL beside it. path
// must not exist yet: a backup never overwrites anything.
func (db *DB) Backup(ctx context.Context, path string) error {
	if db.dialect != SQLite {
		return ErrBackupPostgres
	}
	if _, err := os.Lstat(path); err == nil {
		return fmt.Errorf("backup: %s already exists; choose a new file", path)
	} else if !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("backup: %w", err)
	}
	// The reader pool is query_only, which refuses VACUUM INTO. The
	// writer of this handle reads for the copy; in WAL mode that holds no
	// lock another process's writer waits for, so a running serve goes on.
	if _, err := db.write.ExecContext(ctx, "VACUUM INTO ?", path); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	// Secrets stay sealed in the copy, but the copy is as sensitive as the
	// database: keep it to its owner.
	return os.Chmod(path, 0o600)
}

// IntegrityCheck runs SQLite's integrity check; on PostgreSQL it only pings.
func (db *DB) IntegrityCheck(ctx context.Context) error {
	if db.dialect != SQLite {
		return db.Ping(ctx)
	}
	var res string
	if err := db.read.QueryRowContext(ctx, "PRAGMA integrity_check").Scan(&res); err != nil {
		return fmt.Errorf("integrity check: %w", err)
	}
	if res != "ok" {
		return fmt.Errorf("integrity check: %s", res)
	}
	return nil
}

// CheckSecrets proves that kr opens this database's secrets: for every
// sealed column and every key id found in it, one value sealed under that
// id is opened with its associated data. It returns how many values it
// opened. A restore runs it on the copy before anything is overwritten, so
// a backup made under another DCVAAS_ENCRYPTION_KEY is refused instead of
// leaving a service whose private keys cannot be read.
func (db *DB) CheckSecrets(ctx context.Context, kr Resealer) (int, error) {
	opened := 0
	for _, col := range sealedColumns {
		// Envelopes are "v1.<8 hex key id>.<payload>": the first 12
		// characters name the key.
		rows, err := db.read.QueryContext(ctx, fmt.Sprintf(
			"SELECT DISTINCT substr(%s, 1, 12) FROM %s WHERE %s IS NOT NULL AND %s <> ''",
			col.Column, col.Table, col.Column, col.Column))
		if err != nil {
			return opened, fmt.Errorf("%s.%s: %w", col.Table, col.Column, err)
		}
		var prefixes []string
		for rows.Next() {
			var p string
			if err := rows.Scan(&p); err != nil {
				rows.Close()
				return opened, err
			}
			prefixes = append(prefixes, p)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return opened, err
		}
		for _, p := range prefixes {
			var ad, envelope string
			err := db.read.QueryRowContext(ctx, fmt.Sprintf(
				"SELECT %s, %s FROM %s WHERE substr(%s, 1, 12) = $1 LIMIT 1",
				col.AD, col.Column, col.Table, col.Column), p).Scan(&ad, &envelope)
			if err != nil {
				return opened, fmt.Errorf("%s.%s: %w", col.Table, col.Column, err)
			}
			if _, err := kr.Decrypt(envelope, []byte(ad)); err != nil {
				// err names the key id at most, never the value.
				return opened, fmt.Errorf("%s.%s: a value sealed under key %q does not open with the configured keys: %w", col.Table, col.Column, keyIDOf(p), err)
			}
			opened++
		}
	}
	return opened, nil
}

// keyIDOf returns the key id of an envelope prefix "v1.<id>.", or "" when
// the prefix is not of that shape.
func keyIDOf(prefix string) string {
	if len(prefix) == 12 && prefix[:3] == "v1." && prefix[11] == '.' {
		return prefix[3:11]
	}
	return ""
}
