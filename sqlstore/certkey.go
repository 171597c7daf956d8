package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"time"

	"github.com/dcvaas/dcvaas"
)

// ReadCertificateKey returns the domain's current certificate and its
// private key, opened by open, and writes audit "certificate.key_read" in
// the same transaction as the read: a key leaves the store only when its
// reading is on record, and a key that cannot be opened is not recorded as
// read. ENOTFOUND when the domain (of actor's organization, not deleted)
// has no certificate.
func (db *DB) ReadCertificateKey(ctx context.Context, actor dcvaas.Actor, domainID string, open func(*dcvaas.Certificate) ([]byte, error)) (*dcvaas.Certificate, []byte, error) {
	var c dcvaas.Certificate
	var key []byte
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		var domainName string
		var notAfter int64
		err := tx.QueryRowContext(ctx, `SELECT c.id, c.org_id, c.domain_id, c.serial_number, c.ca_name, c.not_after, c.private_key_enc, c.chain_pem, d.domain_name
			FROM certificates c JOIN domains d ON d.id = c.domain_id
			WHERE c.domain_id = $1 AND c.org_id = $2 AND d.deleted_at IS NULL
			ORDER BY c.created_at DESC, c.id DESC LIMIT 1`, domainID, actor.OrgID).
			Scan(&c.ID, &c.OrgID, &c.DomainID, &c.SerialNumber, &c.CAName, &notAfter, &c.PrivateKeyEnc, &c.ChainPEM, &domainName)
		if errors.Is(err, sql.ErrNoRows) {
			return dcvaas.Errorf(dcvaas.ENOTFOUND, "no certificate has been issued for this domain yet")
		} else if err != nil {
			return err
		}
		c.NotAfter = fromMicros(notAfter)
		if key, err = open(&c); err != nil {
			return err
		}
		if actor.TokenRole == dcvaas.TokenDelivery {
			return db.recordKeyReads(ctx, tx, actor, &c, domainName, 1)
		}
		return db.audit(ctx, tx, actor, "certificate.key_read", "domain", c.DomainID, map[string]any{
			"certificateId": c.ID, "domainName": domainName, "serialNumber": c.SerialNumber,
			"notAfter": c.NotAfter.UTC().Format(time.RFC3339),
		})
	})
	if err != nil {
		return nil, nil, err
	}
	return &c, key, nil
}

// keyReadWindow is how long one audit entry stands for a delivery token's
// readings of one certificate's key. A delivery agent or a Caddy in front
// of many names reads the same keys again and again; an entry each time
// would bury every other entry of the log.
const keyReadWindow = time.Hour

// recordKeyReads puts n readings of c's key by actor (a delivery token) on
// record inside tx: the first reading of a window writes a
// "certificate.key_read" entry with reads = n, later ones in the window
// add to that entry's reads and lastReadAt. One upsert decides which, so
// concurrent readers on several nodes still make one entry per window.
func (db *DB) recordKeyReads(ctx context.Context, tx *sql.Tx, actor dcvaas.Actor, c *dcvaas.Certificate, domainName string, n int64) error {
	now := db.now().UTC()
	details := map[string]any{
		"certificateId": c.ID, "domainName": domainName, "serialNumber": c.SerialNumber,
		"notAfter": c.NotAfter.UTC().Format(time.RFC3339),
	}
	entry, err := db.auditStmt(auditEntry{actor, "certificate.key_read", "domain", c.DomainID, details})
	if err != nil {
		return err
	}
	newAuditID := entry.args[0].(string)
	var auditID string
	var start, reads int64
	err = tx.QueryRowContext(ctx, `INSERT INTO key_read_windows AS w (token_id, certificate_id, audit_id, window_start, reads)
		VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (token_id, certificate_id) DO UPDATE SET
			audit_id = CASE WHEN w.window_start <= $6 THEN excluded.audit_id ELSE w.audit_id END,
			reads = CASE WHEN w.window_start <= $6 THEN excluded.reads ELSE w.reads + excluded.reads END,
			window_start = CASE WHEN w.window_start <= $6 THEN excluded.window_start ELSE w.window_start END
		RETURNING audit_id, window_start, reads`,
		actor.TokenID, c.ID, newAuditID, micros(now), n, micros(now.Add(-keyReadWindow))).Scan(&auditID, &start, &reads)
	if err != nil {
		return err
	}
	details["reads"] = reads
	details["firstReadAt"] = fromMicros(start).Format(time.RFC3339)
	details["lastReadAt"] = now.Format(time.RFC3339)
	if auditID == newAuditID {
		entry, err = db.auditStmt(auditEntry{actor, "certificate.key_read", "domain", c.DomainID, details})
		if err != nil {
			return err
		}
		entry.args[0] = newAuditID
		_, err = tx.ExecContext(ctx, entry.query, entry.args...)
		return err
	}
	raw, err := json.Marshal(details)
	if err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, `UPDATE audit_logs SET details = $1 WHERE id = $2`, string(raw), auditID)
	return err
}

// RecordKeyReads puts n readings of the key of certificate c (of domain
// domainName) by a delivery token on record, as recordKeyReads does; for
// readers that serve keys from memory (the Caddy endpoint) and count their
// readings between two records.
func (db *DB) RecordKeyReads(ctx context.Context, actor dcvaas.Actor, c *dcvaas.Certificate, domainName string, n int64) error {
	return db.inTx(ctx, func(tx *sql.Tx) error {
		return db.recordKeyReads(ctx, tx, actor, c, domainName, n)
	})
}
