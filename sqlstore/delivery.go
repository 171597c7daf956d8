package sqlstore

import (
	"context"
	"database/sql"
	"errors"

	"github.com/dcvaas/dcvaas"
)

// DeliveryGeneration implements delivery.Source: gen moves whenever a
// certificate is saved or removed or a domain's status, name, wildcard or
// deletion changes, by any writer on any node (triggers of migration
// 00050).
//
// Either way the number is kept in memory, so that no answer costs a read
// while nothing changed. SQLite: the count of commits that moved the
// delivery version (readcache.go), never stale; another process's
// commits count within dataVersionPoll. PostgreSQL: a generation moved by
// the triggers' notifications (changes.go).
func (db *DB) DeliveryGeneration(ctx context.Context) (gen, stale uint64, err error) {
	if db.dialect == Postgres {
		gen, stale := db.generation(changeDelivery)
		return gen, stale, nil
	}
	return db.cache.delivery.Load(), 0, nil
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
