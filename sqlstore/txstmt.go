package sqlstore

import (
	"context"
	"database/sql"
	"sync"
)

// txStmtCache keeps prepared statements of the write connection for the
// hot paths (job bookkeeping, audit entries) on SQLite. modernc.org/sqlite
// parses a statement's SQL on every ExecContext; for the job engine's short
// transactions that parse was the largest single cost. The write pool is one connection, so a statement
// prepared once serves every later transaction (Tx.StmtContext reuses it on
// that connection). PostgreSQL needs none of this: pgx caches prepared
// statements per connection itself.
type txStmtCache struct {
	mu    sync.Mutex
	stmts map[string]*sql.Stmt
	// pending marks statements being prepared in the background.
	pending map[string]bool
}

// txExec runs query in tx, prepared when the cache has it.
func (db *DB) txExec(ctx context.Context, tx *sql.Tx, query string, args ...any) (sql.Result, error) {
	if st := db.cachedStmt(query); st != nil {
		return tx.StmtContext(ctx, st).ExecContext(ctx, args...)
	}
	return tx.ExecContext(ctx, query, args...)
}

// txQueryRow is txExec for a single-row query.
func (db *DB) txQueryRow(ctx context.Context, tx *sql.Tx, query string, args ...any) *sql.Row {
	if st := db.cachedStmt(query); st != nil {
		return tx.StmtContext(ctx, st).QueryRowContext(ctx, args...)
	}
	return tx.QueryRowContext(ctx, query, args...)
}

// cachedStmt returns the prepared statement for query, or nil while there is
// none yet. Preparing needs the write connection, which the calling
// transaction holds, so the first use runs unprepared and the statement is
// prepared in the background once the connection is free.
func (db *DB) cachedStmt(query string) *sql.Stmt {
	if db.dialect != SQLite {
		return nil
	}
	c := &db.txStmts
	c.mu.Lock()
	defer c.mu.Unlock()
	if st := c.stmts[query]; st != nil {
		return st
	}
	if c.pending[query] {
		return nil
	}
	if c.pending == nil {
		c.pending, c.stmts = map[string]bool{}, map[string]*sql.Stmt{}
	}
	c.pending[query] = true
	go func() {
		st, err := db.write.PrepareContext(context.Background(), query)
		c.mu.Lock()
		defer c.mu.Unlock()
		if err != nil {
			// Stays unprepared (pending), e.g. when the DB was closed.
			return
		}
		c.stmts[query] = st
		delete(c.pending, query)
	}()
	return nil
}
