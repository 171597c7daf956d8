package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
)

// Group commit (SQLite). SQLite has one writer, so transactions run one
// after another anyway; most of a short transaction's cost is its commit,
// which writes every page it touched to the WAL. The committer runs the
// transactions waiting at one moment as one: each under a SAVEPOINT of its
// own, so one that fails is rolled back alone, then a single COMMIT. A
// caller returns only after the commit that holds its work, with that
// commit's error if it fails, so nothing is reported done that is not.
// Serial order is kept: a later function sees what an earlier one wrote,
// exactly as if they had committed one by one.
//
// PostgreSQL has many writers and groups its WAL flushes itself; inTx runs
// there as a plain transaction.

// maxGroup bounds how many transactions share a commit, so one slow batch
// does not hold the first caller for long.
const maxGroup = 64

type committer struct {
	mu      sync.Mutex
	pending []*txRequest
	running bool
}

type txRequest struct {
	ctx  context.Context
	fn   func(*sql.Tx) error
	err  error
	done chan struct{}
	// panicked carries a panic of fn back to its caller's goroutine.
	panicked any
}

// InTx runs fn in a write transaction, committed when fn returns nil, for
// the job engine's own changes; on SQLite it shares commits like the
// store's (fn must then use only tx, and not wait on anything slow).
func (db *DB) InTx(ctx context.Context, fn func(tx *sql.Tx) error) error { return db.inTx(ctx, fn) }

// inTx runs fn in a transaction on the writer, committing when fn returns nil.
func (db *DB) inTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	// A value a CHECK constraint refuses is the caller's mistake, named by
	// its field, never an internal error (constraint.go).
	return checkViolation(db.inTxRaw(ctx, fn))
}

func (db *DB) inTxRaw(ctx context.Context, fn func(tx *sql.Tx) error) error {
	if db.dialect != SQLite {
		tx, err := db.write.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		defer tx.Rollback()
		if err := fn(tx); err != nil {
			return err
		}
		return tx.Commit()
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	r := &txRequest{ctx: ctx, fn: fn, done: make(chan struct{})}
	c := &db.committer
	c.mu.Lock()
	c.pending = append(c.pending, r)
	lead := !c.running
	c.running = true
	c.mu.Unlock()
	if lead {
		// The first caller to find the committer idle drives it until the
		// queue is empty; callers arriving meanwhile join the next group.
		go db.commitGroups()
	}
	<-r.done
	if r.panicked != nil {
		panic(r.panicked)
	}
	return r.err
}

// commitGroups runs groups of waiting transactions until none is left.
func (db *DB) commitGroups() {
	c := &db.committer
	for {
		c.mu.Lock()
		n := min(len(c.pending), maxGroup)
		if n == 0 {
			c.running = false
			c.mu.Unlock()
			return
		}
		group := c.pending[:n:n]
		c.pending = c.pending[n:]
		c.mu.Unlock()
		db.commitGroup(group)
		for _, r := range group {
			close(r.done)
		}
	}
}

func (db *DB) commitGroup(group []*txRequest) {
	// Not the callers' contexts: one caller giving up must not roll back
	// the others. Each function's statements still run under its own.
	tx, err := db.write.BeginTx(context.Background(), nil)
	if err != nil {
		for _, r := range group {
			r.err = err
		}
		return
	}
	alone := len(group) == 1
	var done []*txRequest
	for _, r := range group {
		if r.err = r.ctx.Err(); r.err != nil {
			continue
		}
		if alone {
			r.err = r.run(tx)
		} else if err := inSavepoint(tx, r); err != nil {
			// The transaction is in an unknown state: give it up as a
			// whole, and every function in it fails with the reason.
			tx.Rollback()
			for _, r := range group {
				if r.err == nil {
					r.err = err
				}
			}
			return
		}
		if r.err == nil && r.panicked == nil {
			done = append(done, r)
		}
	}
	if len(done) == 0 {
		tx.Rollback()
		return
	}
	if err := tx.Commit(); err != nil {
		for _, r := range done {
			r.err = err
		}
	}
}

// inSavepoint runs r in a savepoint of tx, rolling back to it when r fails.
// Its error is the savepoint's own; r's outcome is in r.
func inSavepoint(tx *sql.Tx, r *txRequest) error {
	if _, err := tx.Exec("SAVEPOINT grouped"); err != nil {
		return fmt.Errorf("group commit: %w", err)
	}
	if r.err = r.run(tx); r.err != nil || r.panicked != nil {
		if _, err := tx.Exec("ROLLBACK TO grouped"); err != nil {
			return fmt.Errorf("group commit: %w", err)
		}
	}
	if _, err := tx.Exec("RELEASE grouped"); err != nil {
		return fmt.Errorf("group commit: %w", err)
	}
	return nil
}

// run calls the function, catching a panic so the committer survives it.
func (r *txRequest) run(tx *sql.Tx) (err error) {
	defer func() {
		if p := recover(); p != nil {
			r.panicked = p
			err = errors.New("transaction function panicked")
		}
	}()
	return r.fn(tx)
}
