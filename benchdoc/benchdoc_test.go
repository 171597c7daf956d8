package benchdoc

import (
	"os"
	"path/filepath"
	"testing"
)

func TestReplaceSection(t *testing.T) {
	path := filepath.Join(t.TempDir(), "b.md")
	os.WriteFile(path, []byte("# B\n\n## One\n\nold\n\n## Two\n\nkeep\n"), 0o644)
	// A body without its closing blank line still leaves one before the next section.
	if err := ReplaceSection(path, "## One", "new"); err != nil {
		t.Fatal(err)
	}
	if err := ReplaceSection(path, "## Three", "added\n"); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(path)
	want := "# B\n\n## One\n\nnew\n\n## Two\n\nkeep\n\n## Three\n\nadded\n"
	if string(got) != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}
