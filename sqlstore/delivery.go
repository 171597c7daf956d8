package sqlstore

import (
	"context"
	"database/sql"
	"errors"

	"github.com/dcvaas/dcvaas"
)

// DeliveryVersion returns a number that moves whenever a certificate is
// saved or removed or a domain's status, name, wildcard or deletion
// changes, by any writer on any node (triggers of migration 00050). A
// cache of certificate answers stays right while it stays put; reading it
// is one primary-key row.
func (db *DB) DeliveryVersion(ctx context.Context) (int64, error) {
	var v int64
	err := db.read.QueryRowContext(ctx, `SELECT version FROM delivery_version WHERE id = 1`).Scan(&v)
	return v, err
}

// ServableCertificate returns the organization's live, active domain with
// exactly that (normalized) name and its current certificate. ENOTFOUND
// when there is none or it has no certificate.
func (db *DB) ServableCertificate(ctx context.Context, orgID, name string) (*dcvaas.Domain, *dcvaas.Certificate, error) {
	d, err := scanDomain(db.read.QueryRowContext(ctx, `SELECT `+domainColumns+` FROM domains
		WHERE org_id = $1 AND domain_name = $2 AND deleted_at IS NULL AND status = $3`, orgID, name, string(dcvaas.DomainActive)))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil, dcvaas.Errorf(dcvaas.ENOTFOUND, "domain not found")
	} else if err != nil {
		return nil, nil, err
	}
	c, err := db.CurrentCertificate(ctx, orgID, d.ID)
	if err != nil {
		return nil, nil, err
	}
	return d, c, nil
}
