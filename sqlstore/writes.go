package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"
)

// writes collects the statements of one change, to be run in order by
// (*DB).exec. PostgreSQL receives them as a single statement, all but the
// last as data-modifying CTEs: one round trip to the server instead of one
// per statement, which is most of a short write's cost there. (Their
// effects are all visible at the end of the statement, foreign keys
// included, so a row may refer to one inserted beside it.) SQLite runs
// them one by one: it is in the process, there is no round trip to save.
//
// Each statement numbers its own placeholders from $1.
type writes struct {
	stmts  []stmt
	audits []auditEntry
}

type stmt struct {
	query string
	args  []any
}

func (w *writes) add(query string, args ...any) { w.stmts = append(w.stmts, stmt{query, args}) }

// audit adds an audit entry; all of them go in one multi-row insert, last.
func (w *writes) audit(e auditEntry) { w.audits = append(w.audits, e) }

// renumber adds offset to every $n placeholder of query. (The queries are
// ours: a '$' followed by digits is always a placeholder.)
func renumber(query string, offset int) string {
	if offset == 0 {
		return query
	}
	var b strings.Builder
	b.Grow(len(query) + 16)
	for {
		i := strings.IndexByte(query, '$')
		if i < 0 {
			b.WriteString(query)
			return b.String()
		}
		j := i + 1
		for j < len(query) && query[j] >= '0' && query[j] <= '9' {
			j++
		}
		if j == i+1 {
			b.WriteString(query[:j])
		} else {
			n, _ := strconv.Atoi(query[i+1 : j])
			b.WriteString(query[:i+1])
			b.WriteString(strconv.Itoa(n + offset))
		}
		query = query[j:]
	}
}

// exec runs w inside tx.
func (db *DB) exec(ctx context.Context, tx *sql.Tx, w *writes) error {
	stmts := w.stmts
	if len(w.audits) > 0 {
		a, err := db.auditStmt(w.audits...)
		if err != nil {
			return err
		}
		stmts = append(stmts[:len(stmts):len(stmts)], a)
	}
	if db.dialect != Postgres || len(stmts) == 1 {
		for _, s := range stmts {
			if _, err := tx.ExecContext(ctx, s.query, s.args...); err != nil {
				return err
			}
		}
		return nil
	}
	var q strings.Builder
	var args []any
	for i, s := range stmts {
		offset := len(args)
		renumbered := renumber(s.query, offset)
		switch {
		case i == 0:
			fmt.Fprintf(&q, "WITH w%d AS (%s)", i, renumbered)
		case i < len(stmts)-1:
			fmt.Fprintf(&q, ", w%d AS (%s)", i, renumbered)
		default:
			q.WriteString(" " + renumbered)
		}
		args = append(args, s.args...)
	}
	_, err := tx.ExecContext(ctx, q.String(), args...)
	return err
}
