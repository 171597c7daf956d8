package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"time"

	"github.com/dcvaas/dcvaas"
)

// SaveCertificate stores an issued certificate and makes it the domain's,
// in one transaction: the certificates row, the domain → active with
// last_issued_at and expires_at (from the certificate itself) and its
// last_error cleared, the pending order forgotten, and audit
// "certificate.issued", and event certificate.issued (the domain's first
// certificate) or certificate.renewed (a later one). c.ID may be preset (the private key is sealed with
// the id as associated data before the row exists); it is filled in when
// empty. ENOTFOUND when the domain is gone or deleted: a certificate for a
// deleted domain is not kept.
func (db *DB) SaveCertificate(ctx context.Context, actor dcvaas.Actor, c *dcvaas.Certificate, details map[string]any) error {
	now := db.now().UTC()
	if c.ID == "" {
		c.ID = newID()
	}
	c.OrgID, c.CreatedAt = actor.OrgID, now
	names, err := json.Marshal(c.DNSNames)
	if err != nil {
		return err
	}
	return db.inTx(ctx, func(tx *sql.Tx) error {
		d, err := db.findDomain(ctx, tx, actor.OrgID, c.DomainID, true)
		if err != nil {
			return err
		}
		// The certificate this one replaces, for certificate.renewed.
		var prevID, prevSerial string
		err = tx.QueryRowContext(ctx, `SELECT id, serial_number FROM certificates WHERE domain_id = $1
			ORDER BY created_at DESC, id DESC LIMIT 1`, d.ID).Scan(&prevID, &prevSerial)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO certificates (id, org_id, domain_id, serial_number, issuer, ca_name,
			order_url, dns_names, not_before, not_after, chain_pem, private_key_enc, created_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)`,
			c.ID, c.OrgID, c.DomainID, c.SerialNumber, c.Issuer, c.CAName, c.OrderURL, string(names),
			micros(c.NotBefore), micros(c.NotAfter), c.ChainPEM, c.PrivateKeyEnc, micros(now)); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE domains SET status = $1, last_error = '', last_issued_at = $2,
			expires_at = $3, updated_at = $2, waiting_for = '', wait_until = NULL WHERE id = $4`,
			string(dcvaas.DomainActive), micros(now), micros(c.NotAfter), d.ID); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM acme_orders WHERE domain_id = $1`, d.ID); err != nil {
			return err
		}
		all := map[string]any{
			"certificateId": c.ID, "domainName": d.Name, "serialNumber": c.SerialNumber, "caName": c.CAName,
			"notBefore": c.NotBefore.UTC().Format(time.RFC3339), "notAfter": c.NotAfter.UTC().Format(time.RFC3339),
			"previousStatus": string(d.Status),
		}
		for k, v := range details {
			all[k] = v
		}
		if err := db.audit(ctx, tx, actor, "certificate.issued", "domain", d.ID, all); err != nil {
			return err
		}
		d.Status = dcvaas.DomainActive
		data := dcvaas.DomainData(d).WithCertificate(c)
		typ := dcvaas.EventCertificateIssued
		if prevID != "" {
			typ, data.PreviousCertificateID, data.PreviousSerialNumber = dcvaas.EventCertificateRenewed, prevID, prevSerial
		}
		return db.domainEvent(ctx, tx, typ, d, data)
	})
}
