package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/dcvaas/dcvaas"
)

// domainInsertColumns are the columns a new domain's row is written with;
// domainColumns are the ones read back.
const (
	domainInsertColumns = `id, org_id, domain_name, cname_target, status, last_error, include_wildcard, key_type,
	created_at, updated_at, last_issued_at, expires_at, deleted_at, cname_status`
	domainColumns = domainInsertColumns + `, waiting_for, wait_until, key_mode`
)

func scanDomain(row interface{ Scan(...any) error }) (*dcvaas.Domain, error) {
	var d dcvaas.Domain
	var status, cname string
	var created, updated int64
	var issued, expires, deleted, waitUntil sql.NullInt64
	if err := row.Scan(&d.ID, &d.OrgID, &d.Name, &d.CNAMETarget, &status, &d.LastError, &d.IncludeWildcard, &d.KeyType,
		&created, &updated, &issued, &expires, &deleted, &cname, &d.WaitingFor, &waitUntil, &d.KeyMode); err != nil {
		return nil, err
	}
	d.WaitUntil = fromNullMicros(waitUntil)
	d.Status, d.CNAMEStatus = dcvaas.DomainStatus(status), dcvaas.CNAMEStatus(cname)
	d.CreatedAt, d.UpdatedAt = fromMicros(created), fromMicros(updated)
	d.LastIssuedAt, d.ExpiresAt, d.DeletedAt = fromNullMicros(issued), fromNullMicros(expires), fromNullMicros(deleted)
	return &d, nil
}

// CreateDomain implements dcvaas.DomainStore.
func (db *DB) CreateDomain(ctx context.Context, actor dcvaas.Actor, d *dcvaas.Domain) (*dcvaas.Job, error) {
	now := db.now().UTC()
	d.ID, d.OrgID, d.Status, d.CreatedAt, d.UpdatedAt = newID(), actor.OrgID, dcvaas.DomainPendingCNAME, now, now
	d.CNAMEStatus = dcvaas.CNAMEOK
	var job *dcvaas.Job
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		if err := db.reuseDeletedTarget(ctx, tx, d); err != nil {
			return err
		}
		var w writes
		if d.KeyMode == "" {
			d.KeyMode = dcvaas.KeyModeManaged
		}
		w.add(`INSERT INTO domains (`+domainInsertColumns+`, key_mode)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, NULL, NULL, NULL, 'ok', $11)`,
			d.ID, d.OrgID, d.Name, d.CNAMETarget, string(d.Status), "", d.IncludeWildcard, d.KeyType, micros(now), micros(now), d.KeyMode)
		w.audit(auditEntry{actor, "domain.created", "domain", d.ID, map[string]any{
			"domainName": d.Name, "cnameTarget": d.CNAMETarget, "includeWildcard": d.IncludeWildcard, "keyMode": d.KeyMode,
		}})
		if err := w.event(db, eventRow{orgID: d.OrgID, domainID: d.ID, typ: dcvaas.EventDomainCreated, data: dcvaas.DomainData(d)}); err != nil {
			return err
		}
		var err error
		job, err = db.insertJob(ctx, tx, actor, d.ID, dcvaas.JobDNSCheck, EnqueueOpts{NewDomain: true}, &w)
		if isUniqueViolation(err) && dcvaas.ErrorCode(err) != dcvaas.ECONFLICT {
			return dcvaas.Errorf(dcvaas.ECONFLICT, "domain %s already exists in this organization", d.Name)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return job, nil
}

// deletedTargetQuery finds the organization's newest deleted row of a name
// whose target is still held; every create runs it, so it must stay on
// its index (migration 00161).
const deletedTargetQuery = `SELECT id, cname_target FROM domains
	WHERE org_id = $1 AND domain_name = $2 AND deleted_at IS NOT NULL AND cname_target NOT LIKE '%#%'
	ORDER BY deleted_at DESC LIMIT 1`

// reuseDeletedTarget gives a domain added again to the organization that
// deleted it its old CNAME target, so the record the customer created
// still delegates it. The deleted row lets go of the target (it is unique)
// by a suffix no DNS name can have. With DCVAAS_HARD_DELETE the old row,
// and so its target, is gone.
func (db *DB) reuseDeletedTarget(ctx context.Context, tx *sql.Tx, d *dcvaas.Domain) error {
	var oldID, target string
	err := tx.QueryRowContext(ctx, deletedTargetQuery, d.OrgID, d.Name).Scan(&oldID, &target)
	if errors.Is(err, sql.ErrNoRows) {
		return nil
	}
	if err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `UPDATE domains SET cname_target = $1 WHERE id = $2`, target+"#released-by-"+d.ID, oldID); err != nil {
		return err
	}
	d.CNAMETarget = target
	return nil
}

func (db *DB) findDomain(ctx context.Context, q querier, orgID, id string, lock bool) (*dcvaas.Domain, error) {
	query := `SELECT ` + domainColumns + ` FROM domains WHERE id = $1 AND org_id = $2 AND deleted_at IS NULL`
	if lock {
		query += db.dialect.forUpdate()
	}
	d, err := scanDomain(q.QueryRowContext(ctx, query, id, orgID))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, dcvaas.Errorf(dcvaas.ENOTFOUND, "domain not found")
	}
	return d, err
}

// FindDomain implements dcvaas.DomainStore.
func (db *DB) FindDomain(ctx context.Context, orgID, id string) (*dcvaas.Domain, error) {
	return db.findDomain(ctx, db.read, orgID, id, false)
}

// ListDomains implements dcvaas.DomainStore.
func (db *DB) ListDomains(ctx context.Context, orgID string, f dcvaas.DomainFilter) ([]*dcvaas.Domain, int, error) {
	var w where
	w.add("org_id = ?", orgID)
	w.add("deleted_at IS NULL")
	if f.Status != "" {
		w.add("status = ?", string(f.Status))
	}
	if f.Scope != nil {
		addScope(&w, f.Scope)
	}
	if f.Search != "" {
		// Names are stored lowercase ASCII; LIKE's wildcards in the search
		// are matched literally.
		esc := likeEscaper.Replace(strings.ToLower(f.Search))
		w.add(`domain_name LIKE ? ESCAPE '\'`, "%"+esc+"%")
	}
	order := " ORDER BY created_at DESC, id DESC"
	if f.ExpiresBefore != nil {
		w.add("expires_at < ?", micros(*f.ExpiresBefore))
		order = " ORDER BY expires_at, id"
	}
	if f.CNAMEMissing {
		w.add("status <> 'pending_cname'")
		w.add("cname_status = 'missing'")
	}
	var total int
	if err := db.read.QueryRowContext(ctx, "SELECT COUNT(*) FROM domains"+w.String(), w.args...).Scan(&total); err != nil {
		return nil, 0, err
	}
	limit, args := w.page(f.Limit, f.Offset)
	rows, err := db.read.QueryContext(ctx, "SELECT "+domainColumns+" FROM domains"+w.String()+order+limit, args...)
	if err != nil {
		return nil, 0, err
	}
	defer rows.Close()
	out := make([]*dcvaas.Domain, 0, f.Limit)
	for rows.Next() {
		d, err := scanDomain(rows)
		if err != nil {
			return nil, 0, err
		}
		out = append(out, d)
	}
	return out, total, rows.Err()
}

// DeleteDomain implements dcvaas.DomainStore.
func (db *DB) DeleteDomain(ctx context.Context, actor dcvaas.Actor, id string, hard bool) error {
	return db.inTx(ctx, func(tx *sql.Tx) error {
		d, err := db.findDomain(ctx, tx, actor.OrgID, id, true)
		if err != nil {
			return err
		}
		if hard {
			_, err = tx.ExecContext(ctx, `DELETE FROM domains WHERE id = $1`, id)
		} else {
			now := micros(db.now())
			_, err = tx.ExecContext(ctx, `UPDATE domains SET deleted_at = $1, updated_at = $1 WHERE id = $2`, now, id)
		}
		if err != nil {
			return err
		}
		if err := db.audit(ctx, tx, actor, "domain.deleted", "domain", id, map[string]any{"domainName": d.Name, "hard": hard}); err != nil {
			return err
		}
		return db.domainEvent(ctx, tx, dcvaas.EventDomainDeleted, d, nil)
	})
}

// EnqueueDomainJob implements dcvaas.DomainStore.
func (db *DB) EnqueueDomainJob(ctx context.Context, actor dcvaas.Actor, domainID string, jt dcvaas.JobType, allowed ...dcvaas.DomainStatus) (*dcvaas.Job, error) {
	var job *dcvaas.Job
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		d, err := db.findDomain(ctx, tx, actor.OrgID, domainID, true)
		if err != nil {
			return err
		}
		if len(allowed) > 0 && !slices.Contains(allowed, d.Status) {
			return dcvaas.Errorf(dcvaas.ECONFLICT, "%s", wrongState(d, jt, allowed))
		}
		// Two orders for one domain at once would waste CA rate limits and
		// race to store the certificate: an unfinished one is the answer.
		if jt == dcvaas.JobStartIssuance || jt == dcvaas.JobRenewal {
			if job, err = db.openJob(ctx, tx, domainID, jt); job != nil || err != nil {
				return err
			}
		}
		job, err = db.insertJob(ctx, tx, actor, domainID, jt, EnqueueOpts{}, nil)
		return err
	})
	return job, err
}

func joinStatuses(ss []dcvaas.DomainStatus) string {
	out := ""
	for i, s := range ss {
		if i > 0 {
			out += " or "
		}
		out += string(s)
	}
	return out
}

// CurrentCertificate implements dcvaas.DomainStore.
func (db *DB) CurrentCertificate(ctx context.Context, orgID, domainID string) (*dcvaas.Certificate, error) {
	var c dcvaas.Certificate
	var dnsNames string
	var notBefore, notAfter, created int64
	err := db.read.QueryRowContext(ctx, `SELECT c.id, c.org_id, c.domain_id, c.serial_number, c.issuer, c.ca_name, c.order_url,
		c.dns_names, c.not_before, c.not_after, c.chain_pem, c.private_key_enc, c.created_at
		FROM certificates c JOIN domains d ON d.id = c.domain_id
		WHERE c.domain_id = $1 AND c.org_id = $2 AND d.deleted_at IS NULL
		ORDER BY c.created_at DESC, c.id DESC LIMIT 1`, domainID, orgID).
		Scan(&c.ID, &c.OrgID, &c.DomainID, &c.SerialNumber, &c.Issuer, &c.CAName, &c.OrderURL,
			&dnsNames, &notBefore, &notAfter, &c.ChainPEM, &c.PrivateKeyEnc, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, dcvaas.Errorf(dcvaas.ENOTFOUND, "no certificate has been issued for this domain yet")
	} else if err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(dnsNames), &c.DNSNames); err != nil {
		return nil, fmt.Errorf("certificate %s dns names: %w", c.ID, err)
	}
	c.NotBefore, c.NotAfter, c.CreatedAt = fromMicros(notBefore), fromMicros(notAfter), fromMicros(created)
	return &c, nil
}

// wrongState says, in the user's words, why a domain cannot take a job
// now and what to do instead.
func wrongState(d *dcvaas.Domain, jt dcvaas.JobType, allowed []dcvaas.DomainStatus) string {
	cname := "_acme-challenge." + d.Name + " CNAME " + d.CNAMETarget
	switch {
	case d.Status == dcvaas.DomainPendingCNAME && jt == dcvaas.JobStartIssuance:
		return "the domain's CNAME has not been found yet: create " + cname + ", then POST /api/domains/" + d.ID + "/verify; issuance starts by itself once the CNAME is found"
	case d.Status == dcvaas.DomainPendingCNAME && jt == dcvaas.JobRenewal:
		return "the domain has no certificate to renew yet: create " + cname + ", then POST /api/domains/" + d.ID + "/verify"
	case d.Status == dcvaas.DomainActive && jt == dcvaas.JobStartIssuance:
		return "the domain already has a certificate; to get a new one now, POST /api/domains/" + d.ID + "/renew"
	case d.Status == dcvaas.DomainFailed && (jt == dcvaas.JobStartIssuance || jt == dcvaas.JobRenewal):
		return "the domain failed (" + d.LastError + "); fix the cause, then POST /api/domains/" + d.ID + "/verify to check the CNAME and issue again"
	case d.Status == dcvaas.DomainIssuing && jt == dcvaas.JobRenewal:
		return "the domain's first certificate is still being issued; follow it at /api/jobs?domain_id=" + d.ID
	}
	return fmt.Sprintf("domain is %s; %s needs it to be %s", d.Status, jt, joinStatuses(allowed))
}

// addScope keeps the domains a token scope allows, with the meaning of
// dcvaas.TokenScope.Allows: ids, exact names, and "*.suffix" for every
// name under suffix. An empty scope allows nothing.
func addScope(w *where, s *dcvaas.TokenScope) {
	var alts []string
	var args []any
	for _, id := range s.DomainIDs {
		alts, args = append(alts, "id = ?"), append(args, id)
	}
	for _, p := range s.Names {
		if suffix, ok := strings.CutPrefix(p, "*."); ok {
			alts, args = append(alts, `domain_name LIKE ? ESCAPE '\'`), append(args, "%."+likeEscaper.Replace(suffix))
		} else {
			alts, args = append(alts, "domain_name = ?"), append(args, p)
		}
	}
	if len(alts) == 0 {
		w.add("1 = 0")
		return
	}
	w.add("("+strings.Join(alts, " OR ")+")", args...)
}

// likeEscaper makes a string match itself in LIKE ... ESCAPE '\'.
var likeEscaper = strings.NewReplacer(`\`, `\\`, "%", `\%`, "_", `\_`)
