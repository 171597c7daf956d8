package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"strconv"
	"time"

	"github.com/dcvaas/dcvaas/cabudget"
)

// TakeBudgets implements cabudget.Store. Every budget is taken by one
// conditional UPDATE (the GCRA step of cabudget.Bucket, in SQL) inside one
// transaction, in key order: when any is empty the transaction rolls back
// and nothing is spent. On PostgreSQL the UPDATE waits for a row another
// node is taking from and re-checks its condition on the row that node
// wrote, so no two nodes spend the last token.
func (db *DB) TakeBudgets(ctx context.Context, spends []cabudget.Spend, now time.Time, exempt bool) (*cabudget.Wait, error) {
	if len(spends) == 0 {
		return nil, nil
	}
	nowUS := micros(now)
	var short bool
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		for _, s := range spends {
			if _, err := tx.ExecContext(ctx, `INSERT INTO ca_budgets (key, ca_name, kind, subject, capacity, window_us, tat, taken, exempt, updated_at)
				VALUES ($1, $2, $3, $4, $5, $6, 0, 0, 0, $7) ON CONFLICT (key) DO NOTHING`,
				s.Key, s.CA, string(s.Kind), s.Subject, s.Limit.Count, s.Limit.Window.Microseconds(), nowUS); err != nil {
				return err
			}
			if exempt {
				if _, err := tx.ExecContext(ctx, `UPDATE ca_budgets SET exempt = exempt + 1, updated_at = $2 WHERE key = $1`, s.Key, nowUS); err != nil {
					return err
				}
				continue
			}
			var tat int64
			err := tx.QueryRowContext(ctx, `UPDATE ca_budgets
				SET tat = (CASE WHEN tat > $2 THEN tat ELSE $2 END) + $3, taken = taken + 1,
					capacity = $5, window_us = $4, updated_at = $2
				WHERE key = $1 AND (CASE WHEN tat > $2 THEN tat ELSE $2 END) + $3 <= $2 + $4
				RETURNING tat`, s.Key, nowUS, s.Limit.Interval().Microseconds(), s.Limit.Window.Microseconds(), s.Limit.Count).Scan(&tat)
			if errors.Is(err, sql.ErrNoRows) {
				short = true
				return errShortBudget
			}
			if err != nil {
				return err
			}
		}
		return nil
	})
	if !short {
		return nil, err
	}
	// Nothing was spent. Wait until every budget of the order has a token.
	var wait *cabudget.Wait
	for _, s := range spends {
		var tat int64
		err := db.write.QueryRowContext(ctx, `SELECT tat FROM ca_budgets WHERE key = $1`, s.Key).Scan(&tat)
		if errors.Is(err, sql.ErrNoRows) {
			continue
		} else if err != nil {
			return nil, err
		}
		at := cabudget.Available(s.Limit, fromMicros(tat), now)
		if at.After(now) && (wait == nil || at.After(wait.Until)) {
			wait = &cabudget.Wait{For: s.Name(), Until: at}
		}
	}
	if wait == nil {
		// Refilled between the two statements: a moment's wait.
		wait = &cabudget.Wait{For: spends[0].Name(), Until: now.Add(time.Second)}
	}
	return wait, nil
}

var errShortBudget = errors.New("budget empty")

// ListBudgets implements cabudget.Store.
func (db *DB) ListBudgets(ctx context.Context, kinds ...cabudget.Kind) ([]cabudget.State, error) {
	q := `SELECT key, ca_name, kind, subject, capacity, window_us, tat, taken, exempt FROM ca_budgets`
	var args []any
	if len(kinds) > 0 {
		q += ` WHERE kind IN (`
		for i, k := range kinds {
			if i > 0 {
				q += `, `
			}
			args = append(args, string(k))
			q += "$" + strconv.Itoa(len(args))
		}
		q += `)`
	}
	rows, err := db.read.QueryContext(ctx, q+` ORDER BY key`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []cabudget.State
	for rows.Next() {
		var s cabudget.State
		var kind string
		var windowUS, tat int64
		if err := rows.Scan(&s.Key, &s.CA, &kind, &s.Subject, &s.Limit.Count, &windowUS, &tat, &s.Taken, &s.Exempt); err != nil {
			return nil, err
		}
		s.Kind, s.Limit.Window, s.TAT = cabudget.Kind(kind), time.Duration(windowUS)*time.Microsecond, fromMicros(tat)
		out = append(out, s)
	}
	return out, rows.Err()
}

// PruneBudgets deletes budgets full since before (a missing row is a full
// bucket) except account order budgets, which the API lists; it returns
// how many went. Per-domain and duplicate budgets would otherwise keep a
// row per registered domain and name set for good.
func (db *DB) PruneBudgets(ctx context.Context, before time.Time) (int64, error) {
	res, err := db.write.ExecContext(ctx, `DELETE FROM ca_budgets WHERE tat < $1 AND kind <> 'orders'`, micros(before))
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}
