package sqlstore

import (
	"context"
	"database/sql/driver"
	"errors"
	"reflect"
	"sync/atomic"

	"modernc.org/sqlite"
)

// SQLite connections are opened through this wrapper for two reasons:
//
//   - A statement cache. modernc.org/sqlite compiles a statement's SQL on
//     every ExecContext and QueryContext; for the short statements of the
//     API, the job engine and River's own queries, compiling was the
//     largest single cost. Each connection keeps the statements it has run,
//     keyed by their text, and runs them again without compiling.
//   - Commit notification. The write pool calls onCommit after every
//     transaction commits and after every statement run outside one, so the
//     read cache (readcache.go) learns of each change the moment it is
//     visible, whoever made it: our store, River or the job engine. A
//     pre-update hook notes which sets of watched tables had a row
//     changed, and onCommit is told.
type sqliteConnector struct {
	driver.Connector
	queries  *atomic.Uint64          // counts statements; nil: not counted
	onCommit func(touched tableSets) // nil on the read pool
	watch    map[string]tableSets
}

// tableSets is a set of named groups of tables (readcache.go), one bit each.
type tableSets uint8

func newSQLiteConnector(dsn string, queries *atomic.Uint64, onCommit func(tableSets), watch map[string]tableSets) (*sqliteConnector, error) {
	base, err := sqlite.NewConnector(dsn)
	if err != nil {
		return nil, err
	}
	return &sqliteConnector{Connector: base, queries: queries, onCommit: onCommit, watch: watch}, nil
}

func (c *sqliteConnector) Connect(ctx context.Context) (driver.Conn, error) {
	dc, err := c.Connector.Connect(ctx)
	if err != nil {
		return nil, err
	}
	conn, ok := dc.(sqliteDriverConn)
	if !ok {
		dc.Close()
		return nil, errors.New("modernc.org/sqlite connection lacks the context interfaces")
	}
	sc := &sqliteConn{sqliteDriverConn: conn, stmts: map[string]*cachedStmt{}, onCommit: c.onCommit, queries: c.queries}
	if len(c.watch) > 0 {
		hooks, ok := dc.(interface {
			RegisterPreUpdateHook(sqlite.PreUpdateHookFn)
		})
		if !ok {
			dc.Close()
			return nil, errors.New("modernc.org/sqlite connection has no pre-update hook")
		}
		// Called on this connection's goroutine, inside the statement.
		hooks.RegisterPreUpdateHook(func(d sqlite.SQLitePreUpdateData) {
			sc.touched |= c.watch[d.TableName]
		})
	}
	return sc, nil
}

// sqliteDriverConn is what every modernc.org/sqlite connection implements;
// the wrapper forwards all of it (the driver's documentation asks for that).
type sqliteDriverConn interface {
	driver.Conn
	driver.ConnBeginTx
	driver.ConnPrepareContext
	driver.ExecerContext
	driver.QueryerContext
	driver.Pinger
	driver.SessionResetter
	driver.Validator
}

// maxCachedStmts bounds a connection's cache: queries are built from a
// fixed set of texts, but a filter combination or a batch size can vary.
const maxCachedStmts = 512

type sqliteConn struct {
	sqliteDriverConn
	stmts    map[string]*cachedStmt
	queries  *atomic.Uint64
	inTx     bool
	onCommit func(tableSets)
	// touched: the sets of watched tables changed since the last commit
	// or rollback.
	touched tableSets
}

// cachedStmt is a compiled statement; busy while rows read from it are
// open, since running it again would reset those rows.
type cachedStmt struct {
	stmt interface {
		driver.Stmt
		driver.StmtExecContext
		driver.StmtQueryContext
	}
	busy bool
}

// Unwrap returns the driver's connection (modernc's helpers look for it).
func (c *sqliteConn) Unwrap() driver.Conn { return c.sqliteDriverConn }

// database/sql uses one connection from one goroutine at a time (it holds
// the connection's lock around every driver call, rows.Close included), so
// the cache needs no lock of its own.

// cached returns query's compiled statement, compiling it on first use, or
// nil when it is busy (the caller then runs the query uncached).
func (c *sqliteConn) cached(ctx context.Context, query string) (*cachedStmt, error) {
	if st := c.stmts[query]; st != nil {
		if st.busy {
			return nil, nil
		}
		return st, nil
	}
	ds, err := c.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	s, ok := ds.(interface {
		driver.Stmt
		driver.StmtExecContext
		driver.StmtQueryContext
	})
	if !ok {
		ds.Close()
		return nil, errors.New("modernc.org/sqlite statement lacks the context interfaces")
	}
	if len(c.stmts) >= maxCachedStmts {
		for q, old := range c.stmts {
			if !old.busy {
				old.stmt.Close()
				delete(c.stmts, q)
			}
		}
	}
	st := &cachedStmt{stmt: s}
	c.stmts[query] = st
	return st, nil
}

func (c *sqliteConn) count() {
	if c.queries != nil {
		c.queries.Add(1)
	}
}

func (c *sqliteConn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	defer c.committed()
	c.count()
	st, err := c.cached(ctx, query)
	if err != nil {
		return nil, err
	}
	if st == nil {
		return c.sqliteDriverConn.ExecContext(ctx, query, args)
	}
	return st.stmt.ExecContext(ctx, args)
}

func (c *sqliteConn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	c.count()
	st, err := c.cached(ctx, query)
	if err != nil {
		return nil, err
	}
	if st == nil {
		rows, err := c.sqliteDriverConn.QueryContext(ctx, query, args)
		if err != nil {
			c.committed()
			return nil, err
		}
		return &sqliteRows{rows: rows, conn: c}, nil
	}
	rows, err := st.stmt.QueryContext(ctx, args)
	if err != nil {
		c.committed()
		return nil, err
	}
	st.busy = true
	return &sqliteRows{rows: rows, conn: c, stmt: st}, nil
}

// committed tells the write pool's listener that a statement outside a
// transaction (which commits on its own) has finished. It may have changed
// nothing; a spurious notification only costs a cache miss.
func (c *sqliteConn) committed() {
	if c.onCommit != nil && !c.inTx {
		c.onCommit(c.touched)
		c.touched = 0
	}
}

func (c *sqliteConn) Begin() (driver.Tx, error) {
	return c.BeginTx(context.Background(), driver.TxOptions{})
}

func (c *sqliteConn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	tx, err := c.sqliteDriverConn.BeginTx(ctx, opts)
	if err != nil {
		return nil, err
	}
	c.inTx = true
	return &sqliteTx{tx: tx, conn: c}, nil
}

func (c *sqliteConn) Close() error {
	for _, st := range c.stmts {
		st.stmt.Close()
	}
	c.stmts = nil
	return c.sqliteDriverConn.Close()
}

type sqliteTx struct {
	tx   driver.Tx
	conn *sqliteConn
}

func (t *sqliteTx) Commit() error {
	err := t.tx.Commit()
	t.conn.inTx = false
	if err == nil {
		t.conn.committed()
	}
	return err
}

func (t *sqliteTx) Rollback() error {
	err := t.tx.Rollback()
	t.conn.inTx, t.conn.touched = false, 0
	return err
}

// sqliteRows frees its statement for reuse when closed, and forwards the
// column-type interfaces modernc's rows implement.
type sqliteRows struct {
	rows driver.Rows
	conn *sqliteConn
	stmt *cachedStmt // nil when uncached
}

func (r *sqliteRows) Columns() []string              { return r.rows.Columns() }
func (r *sqliteRows) Next(dest []driver.Value) error { return r.rows.Next(dest) }

func (r *sqliteRows) Close() error {
	err := r.rows.Close()
	if r.stmt != nil {
		r.stmt.busy = false
		r.stmt = nil
	}
	// A query outside a transaction can write (INSERT … RETURNING); its
	// change is committed once its rows are done.
	r.conn.committed()
	return err
}

func (r *sqliteRows) ColumnTypeDatabaseTypeName(i int) string {
	if t, ok := r.rows.(driver.RowsColumnTypeDatabaseTypeName); ok {
		return t.ColumnTypeDatabaseTypeName(i)
	}
	return ""
}

func (r *sqliteRows) ColumnTypeLength(i int) (int64, bool) {
	if t, ok := r.rows.(driver.RowsColumnTypeLength); ok {
		return t.ColumnTypeLength(i)
	}
	return 0, false
}

func (r *sqliteRows) ColumnTypeNullable(i int) (bool, bool) {
	if t, ok := r.rows.(driver.RowsColumnTypeNullable); ok {
		return t.ColumnTypeNullable(i)
	}
	return false, false
}

func (r *sqliteRows) ColumnTypePrecisionScale(i int) (int64, int64, bool) {
	if t, ok := r.rows.(driver.RowsColumnTypePrecisionScale); ok {
		return t.ColumnTypePrecisionScale(i)
	}
	return 0, 0, false
}

func (r *sqliteRows) ColumnTypeScanType(i int) reflect.Type {
	if t, ok := r.rows.(driver.RowsColumnTypeScanType); ok {
		return t.ColumnTypeScanType(i)
	}
	return reflect.TypeFor[any]()
}
