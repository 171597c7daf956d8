package sqlstore

import (
	"fmt"
	"strings"
)

// where collects AND-ed conditions with numbered $n arguments, so filters
// stay parameterized on both dialects.
type where struct {
	conds []string
	args  []any
}

// add appends a condition; each "?" in cond becomes the next $n.
func (w *where) add(cond string, args ...any) {
	for _, a := range args {
		w.args = append(w.args, a)
		cond = strings.Replace(cond, "?", fmt.Sprintf("$%d", len(w.args)), 1)
	}
	w.conds = append(w.conds, cond)
}

func (w *where) String() string {
	if len(w.conds) == 0 {
		return ""
	}
	return " WHERE " + strings.Join(w.conds, " AND ")
}

// page appends LIMIT/OFFSET placeholders and returns the clause.
func (w *where) page(limit, offset int) (string, []any) {
	n := len(w.args)
	return fmt.Sprintf(" LIMIT $%d OFFSET $%d", n+1, n+2), append(append([]any{}, w.args...), limit, offset)
}

// numberedRows is a VALUES list of n rows of cols placeholders each,
// numbered $1, $2, … in order, for a short multi-row insert. (Thousands of
// rows on SQLite want valueRows instead.)
func numberedRows(n, cols int) string {
	var b strings.Builder
	for r := range n {
		if r > 0 {
			b.WriteString(", ")
		}
		b.WriteByte('(')
		for c := range cols {
			if c > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "$%d", r*cols+c+1)
		}
		b.WriteByte(')')
	}
	return b.String()
}
