package sqlstore

import (
	"context"
	"database/sql"
	"time"

	"github.com/dcvaas/dcvaas"
)

// DNSSEC keys of the verify zone (migration 00120): every node reads the
// same rows, the first to start creates them.

// microsOrZero stores a zero time as 0 ("not scheduled").
func microsOrZero(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return micros(t)
}

func fromMicrosOrZero(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return fromMicros(v)
}

// DNSSECKeys returns the zone's keys, oldest first (a KSK before the ZSK
// created with it); none when the zone has
// never been signed.
func (db *DB) DNSSECKeys(ctx context.Context, zone string) ([]dcvaas.DNSSECKey, error) {
	return dnssecKeys(ctx, db.write.QueryContext, zone)
}

func dnssecKeys(ctx context.Context, query queryFunc, zone string) ([]dcvaas.DNSSECKey, error) {
	rows, err := query(ctx, `SELECT id, zone, flags, key_tag, public_key, private_key_enc,
		published_at, active_at, retired_at, removed_at, created_at
		FROM dnssec_keys WHERE zone = $1 ORDER BY created_at, flags DESC, id`, zone)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []dcvaas.DNSSECKey
	for rows.Next() {
		var k dcvaas.DNSSECKey
		var pub, act, ret, rem, created int64
		if err := rows.Scan(&k.ID, &k.Zone, &k.Flags, &k.KeyTag, &k.PublicKey, &k.PrivateKeyEnc,
			&pub, &act, &ret, &rem, &created); err != nil {
			return nil, err
		}
		k.PublishedAt, k.ActiveAt = fromMicros(pub), fromMicros(act)
		k.RetiredAt, k.RemovedAt = fromMicrosOrZero(ret), fromMicrosOrZero(rem)
		k.CreatedAt = fromMicros(created)
		out = append(out, k)
	}
	return out, rows.Err()
}

func insertDNSSECKey(ctx context.Context, tx *sql.Tx, k dcvaas.DNSSECKey) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO dnssec_keys (id, zone, flags, key_tag, public_key, private_key_enc,
		published_at, active_at, retired_at, removed_at, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
		k.ID, k.Zone, k.Flags, k.KeyTag, k.PublicKey, k.PrivateKeyEnc, micros(k.PublishedAt), micros(k.ActiveAt),
		microsOrZero(k.RetiredAt), microsOrZero(k.RemovedAt), micros(k.CreatedAt))
	return err
}

// CreateDNSSECKeys stores the zone's first keys unless another node
// created the zone's keys first (then it stores nothing), and returns the
// keys that won. Claiming the zone row and inserting the keys commit
// together, so no node ever sees a zone without its keys.
func (db *DB) CreateDNSSECKeys(ctx context.Context, zone string, keys []dcvaas.DNSSECKey) ([]dcvaas.DNSSECKey, error) {
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO dnssec_zones (zone, created_at) VALUES ($1, $2)
			ON CONFLICT (zone) DO NOTHING`, zone, micros(db.now()))
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			return err // another node's keys stand
		}
		for _, k := range keys {
			if err := insertDNSSECKey(ctx, tx, k); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return db.DNSSECKeys(ctx, zone)
}

// RollDNSSECKey runs plan on the zone's keys inside a transaction that
// holds the zone's row, so two rollovers (two operators, two nodes) run one
// after the other and the second sees the first's schedule. plan returns
// the key to add and the keys whose schedule it changed (by ID); an error
// from plan changes nothing. ENOTFOUND when the zone has no keys.
func (db *DB) RollDNSSECKey(ctx context.Context, zone string, plan func([]dcvaas.DNSSECKey) (add *dcvaas.DNSSECKey, changed []dcvaas.DNSSECKey, err error)) error {
	return db.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE dnssec_zones SET rolled_at = $1 WHERE zone = $2`, micros(db.now()), zone)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return dcvaas.Errorf(dcvaas.ENOTFOUND, "the zone %s has no DNSSEC keys yet", zone)
		}
		keys, err := dnssecKeys(ctx, tx.QueryContext, zone)
		if err != nil {
			return err
		}
		add, changed, err := plan(keys)
		if err != nil {
			return err
		}
		for _, k := range changed {
			if _, err := tx.ExecContext(ctx, `UPDATE dnssec_keys SET active_at = $1, retired_at = $2, removed_at = $3
				WHERE id = $4 AND zone = $5`, micros(k.ActiveAt), microsOrZero(k.RetiredAt), microsOrZero(k.RemovedAt), k.ID, zone); err != nil {
				return err
			}
		}
		if add != nil {
			return insertDNSSECKey(ctx, tx, *add)
		}
		return nil
	})
}

// DeleteDNSSECKeysRemovedBefore drops keys whose removal from the DNSKEY
// RRset is older than t: no answer refers to them any more.
func (db *DB) DeleteDNSSECKeysRemovedBefore(ctx context.Context, zone string, t time.Time) (int, error) {
	res, err := db.write.ExecContext(ctx, `DELETE FROM dnssec_keys WHERE zone = $1 AND removed_at <> 0 AND removed_at < $2`, zone, micros(t))
	if err != nil {
		return 0, err
	}
	n, err := res.RowsAffected()
	return int(n), err
}
