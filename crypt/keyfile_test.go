package crypt

import (
	"bytes"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
)

func TestLoadOrCreateKeyFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state", "keys", "master.key")

	key, created, err := LoadOrCreateKeyFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !created {
		t.Error("created = false for a new file")
	}
	if len(key) != KeySize {
		t.Fatalf("key is %d bytes, want %d", len(key), KeySize)
	}
	if runtime.GOOS != "windows" {
		assertMode(t, path, 0o600)
		assertMode(t, filepath.Dir(path), 0o700)
	}
	content, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if parsed, err := ParseHexKey(string(content)); err != nil || !bytes.Equal(parsed, key) {
		t.Errorf("file holds %q, want the hex of the returned key", content)
	}
	if entries, _ := os.ReadDir(filepath.Dir(path)); len(entries) != 1 {
		t.Errorf("directory holds %d entries, want only the key file", len(entries))
	}

	again, created, err := LoadOrCreateKeyFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if created {
		t.Error("created = true for an existing file")
	}
	if !bytes.Equal(again, key) {
		t.Error("second call returned a different key")
	}
}

func TestLoadOrCreateKeyFileExisting(t *testing.T) {
	dir := t.TempDir()
	good := strings.Repeat("ab", KeySize)
	tests := []struct {
		name    string
		content string
		ok      bool
	}{
		{"bare", good, true},
		{"with newline", good + "\n", true},
		{"with spaces", "  " + good + "\r\n\n", true},
		{"empty", "", false},
		{"short", good[:40], false},
		{"not hex", "hunter2" + good[7:], false},
	}
	for _, tt := range tests {
		path := filepath.Join(dir, strings.ReplaceAll(tt.name, " ", "_"))
		if err := os.WriteFile(path, []byte(tt.content), 0o600); err != nil {
			t.Fatal(err)
		}
		key, created, err := LoadOrCreateKeyFile(path)
		if created {
			t.Errorf("%s: created = true for an existing file", tt.name)
		}
		if tt.ok {
			if err != nil || !bytes.Equal(key, bytes.Repeat([]byte{0xab}, KeySize)) {
				t.Errorf("%s: got %x, %v", tt.name, key, err)
			}
			continue
		}
		if err == nil {
			t.Errorf("%s: accepted", tt.name)
			continue
		}
		if strings.Contains(err.Error(), "hunter2") || (tt.content != "" && strings.Contains(err.Error(), tt.content)) {
			t.Errorf("%s: error echoes the file: %v", tt.name, err)
		}
		if !strings.Contains(err.Error(), path) {
			t.Errorf("%s: error %q does not name the file", tt.name, err)
		}
		// A broken key file must be left alone for a human to look at.
		if b, _ := os.ReadFile(path); string(b) != tt.content {
			t.Errorf("%s: file was changed", tt.name)
		}
	}
}

// Processes starting together on a shared volume must agree on one key.
func TestLoadOrCreateKeyFileRace(t *testing.T) {
	for range 20 {
		path := filepath.Join(t.TempDir(), "sub", "master.key")
		const n = 8
		keys := make([][]byte, n)
		created := make([]bool, n)
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() { keys[i], created[i], errs[i] = LoadOrCreateKeyFile(path) })
		}
		wg.Wait()
		creators := 0
		for i := range n {
			if errs[i] != nil {
				t.Fatalf("goroutine %d: %v", i, errs[i])
			}
			if !bytes.Equal(keys[i], keys[0]) {
				t.Fatalf("goroutine %d got a different key", i)
			}
			if created[i] {
				creators++
			}
		}
		if creators != 1 {
			t.Fatalf("%d callers report creating the file, want 1", creators)
		}
	}
}

func TestLoadOrCreateKeyFileUnwritable(t *testing.T) {
	if runtime.GOOS == "windows" || os.Geteuid() == 0 {
		t.Skip("needs POSIX permissions enforced (not root)")
	}
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o500); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Chmod(dir, 0o700) })
	if _, _, err := LoadOrCreateKeyFile(filepath.Join(dir, "master.key")); err == nil {
		t.Error("no error creating a key in a read-only directory")
	}
}

func assertMode(t *testing.T, path string, want os.FileMode) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != want {
		t.Errorf("%s has mode %o, want %o", path, got, want)
	}
}
