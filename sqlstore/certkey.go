package sqlstore

import (
	"context"
	"database/sql"
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
		err := tx.QueryRowContext(ctx, `SELECT c.id, c.org_id, c.domain_id, c.serial_number, c.ca_name, c.not_after, c.private_key_enc, d.domain_name
			FROM certificates c JOIN domains d ON d.id = c.domain_id
			WHERE c.domain_id = $1 AND c.org_id = $2 AND d.deleted_at IS NULL
			ORDER BY c.created_at DESC, c.id DESC LIMIT 1`, domainID, actor.OrgID).
			Scan(&c.ID, &c.OrgID, &c.DomainID, &c.SerialNumber, &c.CAName, &notAfter, &c.PrivateKeyEnc, &domainName)
		if errors.Is(err, sql.ErrNoRows) {
			return dcvaas.Errorf(dcvaas.ENOTFOUND, "no certificate has been issued for this domain yet")
		} else if err != nil {
			return err
		}
		c.NotAfter = fromMicros(notAfter)
		if key, err = open(&c); err != nil {
			return err
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
