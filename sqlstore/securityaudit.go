package sqlstore

import (
	"context"
	"database/sql"
	"time"

	"github.com/dcvaas/dcvaas"
)

// AddSecurityCounts implements dcvaas.SecurityAuditStore: one upsert per
// entry, in one transaction.
func (db *DB) AddSecurityCounts(ctx context.Context, counts []dcvaas.SecurityCount) error {
	if len(counts) == 0 {
		return nil
	}
	return db.inTx(ctx, func(tx *sql.Tx) error {
		for _, c := range counts {
			if _, err := tx.ExecContext(ctx, `INSERT INTO security_audit (action, org_id, source, minute, count) VALUES ($1, $2, $3, $4, $5)
				ON CONFLICT (action, org_id, source, minute) DO UPDATE SET count = security_audit.count + excluded.count`,
				c.Action, c.OrgID, c.Source, micros(c.Minute.Truncate(time.Minute)), c.Count); err != nil {
				return err
			}
		}
		return nil
	})
}

// ListSecurityCounts implements dcvaas.SecurityAuditStore.
func (db *DB) ListSecurityCounts(ctx context.Context, since time.Time, limit int) ([]dcvaas.SecurityCount, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT action, org_id, source, minute, count FROM security_audit
		WHERE minute >= $1 ORDER BY minute DESC, action, org_id, source LIMIT $2`, micros(since.Truncate(time.Minute)), limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []dcvaas.SecurityCount
	for rows.Next() {
		var c dcvaas.SecurityCount
		var m int64
		if err := rows.Scan(&c.Action, &c.OrgID, &c.Source, &m, &c.Count); err != nil {
			return nil, err
		}
		c.Minute = time.UnixMicro(m).UTC()
		out = append(out, c)
	}
	return out, rows.Err()
}
