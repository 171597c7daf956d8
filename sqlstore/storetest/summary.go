package storetest

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
)

// skipped counts the PostgreSQL halves this test binary left out.
var skipped atomic.Int64

// SkippedPostgres records that a test left out its PostgreSQL half
// (Dialects and URL call it; so may tests that skip by themselves).
func SkippedPostgres() { skipped.Add(1) }

// Main runs a package's tests (call it from TestMain) and then says how
// many PostgreSQL halves were skipped and how to run them. `go test ./...`
// shows a passing package's output only with -v, so the line goes to the
// terminal when there is one, else to stderr.
func Main(m *testing.M) {
	code := m.Run()
	if n := skipped.Load(); n > 0 {
		var w io.Writer = os.Stderr
		if tty, err := os.OpenFile("/dev/tty", os.O_WRONLY, 0); err == nil {
			defer tty.Close()
			w = tty
		}
		wd, _ := os.Getwd()
		fmt.Fprintf(w, "%s: %d PostgreSQL half(s) skipped; run them with %s='postgres://postgres@127.0.0.1:5432/test?sslmode=disable' go test ./...\n",
			filepath.Base(wd), n, PostgresEnv)
	}
	os.Exit(code)
}
