package sqlstore_test

import (
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/dcvaas/dcvaas/sqlstore"
)

// TestSQLiteFilesPrivate: the database and its WAL and SHM files are 0600
// under a umask that lets everyone read, in a directory everyone may
// enter; a database file made readable by others gets its bits taken away
// on open. (Not parallel: the umask is the process's.)
func TestSQLiteFilesPrivate(t *testing.T) {
	old := syscall.Umask(0)
	defer syscall.Umask(old)
	dir := filepath.Join(t.TempDir(), "open")
	if err := os.Mkdir(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	os.Chmod(dir, 0o777)
	ctx := context.Background()
	check := func(path string) {
		t.Helper()
		db, err := sqlstore.Open(ctx, path, sqlstore.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		if err := db.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
		for _, p := range []string{path, path + "-wal", path + "-shm"} {
			fi, err := os.Stat(p)
			if err != nil {
				t.Fatal(err)
			}
			if m := fi.Mode().Perm(); m != 0o600 {
				t.Errorf("%s: mode %o, want 600", filepath.Base(p), m)
			}
		}
	}
	check(filepath.Join(dir, "new.db"))

	existing := filepath.Join(dir, "existing.db")
	if err := os.WriteFile(existing, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	check(existing)
}
