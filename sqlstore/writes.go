package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"regexp"
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

var placeholder = regexp.MustCompile(`\$(\d+)`)

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
		renumbered := placeholder.ReplaceAllStringFunc(s.query, func(p string) string {
			n, _ := strconv.Atoi(p[1:])
			return "$" + strconv.Itoa(n+offset)
		})
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
