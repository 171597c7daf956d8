package sqlstore

import (
	"context"
	"database/sql"
	"errors"

	"github.com/dcvaas/dcvaas"
)

// DomainCSR returns the CSR of a csr-mode domain. ENOTFOUND when none has
// been submitted.
func (db *DB) DomainCSR(ctx context.Context, domainID string) (*dcvaas.DomainCSR, error) {
	return db.domainCSR(ctx, db.write, domainID)
}

func (db *DB) domainCSR(ctx context.Context, q querier, domainID string) (*dcvaas.DomainCSR, error) {
	c := dcvaas.DomainCSR{DomainID: domainID}
	var at int64
	err := q.QueryRowContext(ctx, `SELECT csr_pem, key_type, public_key_sha256, submitted_at FROM domain_csrs WHERE domain_id = $1`,
		domainID).Scan(&c.PEM, &c.KeyType, &c.PublicKeySHA256, &at)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, dcvaas.Errorf(dcvaas.ENOTFOUND, "no CSR has been submitted for this domain yet")
	} else if err != nil {
		return nil, err
	}
	c.SubmittedAt = fromMicros(at)
	return &c, nil
}

// FindDomainCSR is DomainCSR for a domain of orgID (live): ENOTFOUND for
// another organization's domain, a deleted one, or no CSR.
func (db *DB) FindDomainCSR(ctx context.Context, orgID, domainID string) (*dcvaas.DomainCSR, error) {
	if _, err := db.findDomain(ctx, db.read, orgID, domainID, false); err != nil {
		return nil, err
	}
	return db.domainCSR(ctx, db.read, domainID)
}

// SubmitCSR makes c the CSR of a csr-mode domain of actor's organization
// (the caller has checked it against the domain: csr.Check), and queues
// what the new key needs, in one transaction with audit
// "domain.csr_submitted":
//
//   - issuing: start_issuance (none is queued while a csr-mode domain has
//     no CSR), unless one is open already;
//   - active, and the key differs from the previous CSR's (key rotation): a
//     renewal, so the new key is in use within minutes rather than at the
//     next due date;
//   - otherwise nothing: pending_cname issues with it once the CNAME is
//     found; a failed domain issues with it after POST …/verify.
//
// It returns the queued (or already open) job, nil when none. ENOTFOUND;
// ECONFLICT when the domain's keyMode is not csr.
func (db *DB) SubmitCSR(ctx context.Context, actor dcvaas.Actor, c *dcvaas.DomainCSR) (*dcvaas.Job, error) {
	var job *dcvaas.Job
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		d, err := db.findDomain(ctx, tx, actor.OrgID, c.DomainID, true)
		if err != nil {
			return err
		}
		if d.KeyMode != dcvaas.KeyModeCSR {
			return dcvaas.Errorf(dcvaas.ECONFLICT, "domain %s has keyMode %s: dcvaas generates its keys, so it takes no CSR (create the domain with keyMode csr to hold the keys yourself)", d.Name, d.KeyMode)
		}
		prev, err := db.domainCSR(ctx, tx, d.ID)
		if err != nil && dcvaas.ErrorCode(err) != dcvaas.ENOTFOUND {
			return err
		}
		now := db.now().UTC()
		c.SubmittedAt = now
		if _, err := tx.ExecContext(ctx, `INSERT INTO domain_csrs (domain_id, csr_pem, key_type, public_key_sha256, submitted_at)
			VALUES ($1, $2, $3, $4, $5)
			ON CONFLICT (domain_id) DO UPDATE SET csr_pem = excluded.csr_pem, key_type = excluded.key_type,
				public_key_sha256 = excluded.public_key_sha256, submitted_at = excluded.submitted_at`,
			d.ID, c.PEM, c.KeyType, c.PublicKeySHA256, micros(now)); err != nil {
			return err
		}
		rotated := prev != nil && prev.PublicKeySHA256 != c.PublicKeySHA256
		if err := db.audit(ctx, tx, actor, "domain.csr_submitted", "domain", d.ID, map[string]any{
			"domainName": d.Name, "keyType": c.KeyType, "publicKeySha256": c.PublicKeySHA256,
			"replaced": prev != nil, "keyRotated": rotated,
		}); err != nil {
			return err
		}
		var jt dcvaas.JobType
		switch {
		case d.Status == dcvaas.DomainIssuing:
			jt = dcvaas.JobStartIssuance
			// The domain no longer waits for the CSR.
			if _, err := tx.ExecContext(ctx, `UPDATE domains SET last_error = '', updated_at = $1 WHERE id = $2`, micros(now), d.ID); err != nil {
				return err
			}
		case d.Status == dcvaas.DomainActive && rotated:
			jt = dcvaas.JobRenewal
		default:
			return nil
		}
		if job, err = db.openJob(ctx, tx, d.ID, jt); job != nil || err != nil {
			return err
		}
		job, err = db.insertJob(ctx, tx, actor, d.ID, jt, EnqueueOpts{}, nil)
		return err
	})
	return job, err
}

// HasDomainCSRTx reports, inside tx, whether the domain has a CSR.
func (db *DB) HasDomainCSRTx(ctx context.Context, tx *sql.Tx, domainID string) (bool, error) {
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM domain_csrs WHERE domain_id = $1`, domainID).Scan(&n); err != nil {
		return false, err
	}
	return n > 0, nil
}

// SetPendingOrderCSR records the CSR a pending order is about to be
// finalized with: a resumed order checks its certificate against it.
func (db *DB) SetPendingOrderCSR(ctx context.Context, domainID, orderURL, csrPEM string) error {
	_, err := db.write.ExecContext(ctx, `UPDATE acme_orders SET csr_pem = $1 WHERE domain_id = $2 AND order_url = $3`, csrPEM, domainID, orderURL)
	return err
}
