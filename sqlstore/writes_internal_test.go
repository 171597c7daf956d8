package sqlstore

import "testing"

func TestRenumber(t *testing.T) {
	for _, c := range []struct {
		query  string
		offset int
		want   string
	}{
		{"INSERT INTO t VALUES ($1, $2, $10)", 0, "INSERT INTO t VALUES ($1, $2, $10)"},
		{"INSERT INTO t VALUES ($1, $2, $10)", 9, "INSERT INTO t VALUES ($10, $11, $19)"},
		{"UPDATE t SET a = $1 WHERE b = $1", 3, "UPDATE t SET a = $4 WHERE b = $4"},
		{"SELECT '$' || $2", 1, "SELECT '$' || $3"},
		{"no placeholders", 5, "no placeholders"},
		{"$1", 1, "$2"},
	} {
		if got := renumber(c.query, c.offset); got != c.want {
			t.Errorf("renumber(%q, %d) = %q, want %q", c.query, c.offset, got, c.want)
		}
	}
}
