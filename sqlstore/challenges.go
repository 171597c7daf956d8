package sqlstore

import (
	"context"
	"strings"
	"time"
)

// The DNS-01 TXT values of the verify zone live in the database, so that
// every node's DNS server answers the same. Each node's server answers from
// a copy in memory that follows the table (challengefeed.go): a write
// returns once this node's copy has it, and the other nodes' copies follow
// within 100 ms; a new value (PutChallengeTXT) returns only once every
// live node's copy has it, as a CA may ask any of them at once. Names are stored lowercase without the trailing dot:
// DNS names compare case-insensitively (RFC 4343).

func recordName(name string) string { return strings.ToLower(strings.TrimSuffix(name, ".")) }

// PutChallengeTXT publishes value at name under key (the ACME authorization
// it answers), replacing what key held before.
//
// On PostgreSQL it returns once every live node's DNS server serves the
// value (challengefeed.go's waitServed), as the CA asks any of them.
func (db *DB) PutChallengeTXT(ctx context.Context, name, key, value string) error {
	q := `INSERT INTO challenge_records (name, key, value, created_at)
		VALUES ($1, $2, $3, $4)
		ON CONFLICT (name, key) DO UPDATE SET value = excluded.value, created_at = excluded.created_at`
	args := []any{recordName(name), key, value, micros(db.now())}
	if db.dialect != Postgres {
		_, err := db.write.ExecContext(ctx, q, args...)
		if err == nil {
			db.challengesChanged(ctx)
		}
		return err
	}
	var xid string
	if err := db.write.QueryRowContext(ctx, q+` RETURNING pg_current_xact_id()::text`, args...).Scan(&xid); err != nil {
		return err
	}
	db.challengesChanged(ctx)
	return db.waitServed(ctx, xid)
}

// DeleteChallengeTXT removes the value published at name under key; a
// missing one is no error.
func (db *DB) DeleteChallengeTXT(ctx context.Context, name, key string) error {
	_, err := db.write.ExecContext(ctx, `DELETE FROM challenge_records WHERE name = $1 AND key = $2`, recordName(name), key)
	if err == nil {
		db.challengesChanged(ctx)
	}
	return err
}

// ClearChallengeTXT removes every value at name.
func (db *DB) ClearChallengeTXT(ctx context.Context, name string) error {
	_, err := db.write.ExecContext(ctx, `DELETE FROM challenge_records WHERE name = $1`, recordName(name))
	if err == nil {
		db.challengesChanged(ctx)
	}
	return err
}

// ChallengeTXT returns every value currently published at name, oldest
// first; none is an empty slice.
func (db *DB) ChallengeTXT(ctx context.Context, name string) ([]string, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT value FROM challenge_records WHERE name = $1 ORDER BY created_at, key`, recordName(name))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []string{}
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// PurgeChallengeTXT removes values published before cutoff and returns how
// many. A value outlives its order only when the process publishing it died
// and its job was never resumed (the domain was deleted meanwhile); ACME
// authorizations are done within minutes, so an hour-old value is litter.
func (db *DB) PurgeChallengeTXT(ctx context.Context, cutoff time.Time) (int64, error) {
	res, err := db.write.ExecContext(ctx, `DELETE FROM challenge_records WHERE created_at < $1`, micros(cutoff))
	if err != nil {
		return 0, err
	}
	n, err := res.RowsAffected()
	if n > 0 {
		db.challengesChanged(ctx)
	}
	return n, err
}
