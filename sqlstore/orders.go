package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/dcvaas/dcvaas"
)

// PendingOrder is the ACME order a domain's issuance is working on. It is
// written right after newOrder returns and before any polling, so that a
// job interrupted anywhere later (crash, deploy, timeout) resumes this order
// instead of creating another (RFC 8555 §7.4: an order is re-read with
// POST-as-GET at its URL).
type PendingOrder struct {
	DomainID     string
	OrgID        string
	CAName       string
	DirectoryURL string
	OrderURL     string
	KeyType      string
	// KeyEnc is the private key (PEM) of the CSR this order will be
	// finalized with, sealed by crypt.Keyring: after a crash between
	// finalize and download, the certificate still needs its key.
	KeyEnc string
	// Replaces is the ARI id (RFC 9773 §5) of the certificate this order
	// renews, empty for a first issuance.
	Replaces string
	// CSRPEM, for a csr-mode domain (KeyEnc empty), is the customer's CSR
	// the order is finalized with.
	CSRPEM    string
	CreatedAt time.Time
}

// FindPendingOrder returns the domain's pending order. ENOTFOUND.
func (db *DB) FindPendingOrder(ctx context.Context, domainID string) (*PendingOrder, error) {
	var o PendingOrder
	var created int64
	err := db.write.QueryRowContext(ctx, `SELECT domain_id, org_id, ca_name, directory_url, order_url, key_type, key_enc, replaces, created_at, csr_pem
		FROM acme_orders WHERE domain_id = $1`, domainID).
		Scan(&o.DomainID, &o.OrgID, &o.CAName, &o.DirectoryURL, &o.OrderURL, &o.KeyType, &o.KeyEnc, &o.Replaces, &created, &o.CSRPEM)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, dcvaas.Errorf(dcvaas.ENOTFOUND, "no pending order")
	} else if err != nil {
		return nil, err
	}
	o.CreatedAt = fromMicros(created)
	return &o, nil
}

// SavePendingOrder records o as the domain's pending order, replacing an
// older one (which the caller has given up on).
func (db *DB) SavePendingOrder(ctx context.Context, o *PendingOrder) error {
	o.CreatedAt = db.now().UTC()
	_, err := db.write.ExecContext(ctx, `INSERT INTO acme_orders
		(domain_id, org_id, ca_name, directory_url, order_url, key_type, key_enc, replaces, created_at, csr_pem)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
		ON CONFLICT (domain_id) DO UPDATE SET org_id = excluded.org_id, ca_name = excluded.ca_name,
			directory_url = excluded.directory_url, order_url = excluded.order_url, key_type = excluded.key_type,
			key_enc = excluded.key_enc, replaces = excluded.replaces, created_at = excluded.created_at, csr_pem = excluded.csr_pem`,
		o.DomainID, o.OrgID, o.CAName, o.DirectoryURL, o.OrderURL, o.KeyType, o.KeyEnc, o.Replaces, micros(o.CreatedAt), o.CSRPEM)
	return err
}

// DeletePendingOrder forgets the domain's pending order if it is still
// orderURL (empty: whichever it is).
func (db *DB) DeletePendingOrder(ctx context.Context, domainID, orderURL string) error {
	if orderURL == "" {
		_, err := db.write.ExecContext(ctx, `DELETE FROM acme_orders WHERE domain_id = $1`, domainID)
		return err
	}
	_, err := db.write.ExecContext(ctx, `DELETE FROM acme_orders WHERE domain_id = $1 AND order_url = $2`, domainID, orderURL)
	return err
}

// CABackoffs returns, per CA name, until when the CA is to be left alone;
// expired entries are left out.
func (db *DB) CABackoffs(ctx context.Context, now time.Time) (map[string]time.Time, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT ca_name, until_at FROM ca_backoffs WHERE until_at > $1`, micros(now))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]time.Time{}
	for rows.Next() {
		var name string
		var until int64
		if err := rows.Scan(&name, &until); err != nil {
			return nil, err
		}
		out[name] = fromMicros(until)
	}
	return out, rows.Err()
}

// SetCABackoff makes every node skip the CA until the given time (a later
// one already stored wins) and writes the audit entry action (e.g.
// "ca.rate_limit") for the organization whose job met the refusal.
func (db *DB) SetCABackoff(ctx context.Context, actor dcvaas.Actor, caName string, until time.Time, reason, action string, details map[string]any) error {
	return db.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO ca_backoffs (ca_name, until_at, reason, updated_at) VALUES ($1, $2, $3, $4)
			ON CONFLICT (ca_name) DO UPDATE SET until_at = excluded.until_at, reason = excluded.reason, updated_at = excluded.updated_at
			WHERE ca_backoffs.until_at < excluded.until_at`,
			caName, micros(until), reason, micros(db.now())); err != nil {
			return err
		}
		if action == "" {
			return nil
		}
		return db.audit(ctx, tx, actor, action, "ca", caName, details)
	})
}

// AuditCAEvent writes one audit entry about a CA (e.g. "ca.failover") for
// the organization whose job it concerns.
func (db *DB) AuditCAEvent(ctx context.Context, actor dcvaas.Actor, action, caName string, details map[string]any) error {
	return db.inTx(ctx, func(tx *sql.Tx) error {
		return db.audit(ctx, tx, actor, action, "ca", caName, details)
	})
}

// RecordValidationFailure counts one failed validation of hostname.
func (db *DB) RecordValidationFailure(ctx context.Context, hostname, caName, domainID string) error {
	_, err := db.write.ExecContext(ctx, `INSERT INTO validation_failures (id, hostname, ca_name, domain_id, failed_at)
		VALUES ($1, $2, $3, $4, $5)`, newID(), recordName(hostname), caName, domainID, micros(db.now()))
	return err
}

// ValidationFailuresSince returns how many validations of hostname failed
// at or after since, and when the oldest of them was (zero when none).
func (db *DB) ValidationFailuresSince(ctx context.Context, hostname string, since time.Time) (int, time.Time, error) {
	var n int
	var oldest sql.NullInt64
	if err := db.write.QueryRowContext(ctx, `SELECT COUNT(*), MIN(failed_at) FROM validation_failures
		WHERE hostname = $1 AND failed_at >= $2`, recordName(hostname), micros(since)).Scan(&n, &oldest); err != nil {
		return 0, time.Time{}, err
	}
	if !oldest.Valid {
		return n, time.Time{}, nil
	}
	return n, fromMicros(oldest.Int64), nil
}
