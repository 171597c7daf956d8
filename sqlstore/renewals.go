package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/dcvaas/dcvaas"
)

// The renewal check (package jobs) walks the active domains page by page
// in id order over domains_active (keyset pagination: memory stays bounded
// and no page costs more than the first), decides each candidate from its
// row, and queues a page's renewals in one transaction (renewaljobs.go).

// RenewalCandidate is an active domain as the renewal check sees it.
type RenewalCandidate struct {
	DomainID, OrgID, Name string
	// NotBefore and NotAfter are the current certificate's validity; nil
	// NotAfter means the domain has no certificate.
	NotBefore, NotAfter *time.Time
	// ARIStart is the beginning of the CA's suggested renewal window, nil
	// when unknown; ARINextCheck is when to ask the CA again.
	ARIStart     *time.Time
	ARINextCheck time.Time
	// Stale says the certificate changed since its renewal information was
	// stored: NotBefore was read from the certificate now and ARI is
	// unknown. SaveRenewalInfo stores the new state.
	Stale bool
}

// candidateColumns are what the renewal check reads of a domain; the last
// one is the current certificate's notBefore, looked up only when the
// stored one belongs to an older certificate.
const candidateColumns = `d.id, d.org_id, d.domain_name, d.expires_at, d.renewal_info_for, d.cert_not_before, d.ari_start,
	d.ari_next_check, CASE WHEN d.expires_at IS NOT NULL AND (d.renewal_info_for IS NULL OR d.renewal_info_for <> d.expires_at) THEN
		(SELECT c.not_before FROM certificates c WHERE c.domain_id = d.id ORDER BY c.created_at DESC, c.id DESC LIMIT 1)
	END`

func scanCandidates(rows *sql.Rows, limit int) ([]RenewalCandidate, error) {
	defer rows.Close()
	out := make([]RenewalCandidate, 0, limit)
	for rows.Next() {
		var c RenewalCandidate
		var expires, infoFor, notBefore, ariStart, fresh sql.NullInt64
		var next int64
		if err := rows.Scan(&c.DomainID, &c.OrgID, &c.Name, &expires, &infoFor, &notBefore, &ariStart, &next, &fresh); err != nil {
			return nil, err
		}
		c.NotAfter, c.NotBefore, c.ARIStart = fromNullMicros(expires), fromNullMicros(notBefore), fromNullMicros(ariStart)
		c.ARINextCheck = fromMicros(next)
		if expires.Valid && infoFor != expires {
			c.Stale, c.NotBefore, c.ARIStart, c.ARINextCheck = true, fromNullMicros(fresh), nil, time.Time{}
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// ActiveDomains returns up to limit active, live domains with ids greater
// than after, in id order: a page of the active domains, all of them.
func (db *DB) ActiveDomains(ctx context.Context, after string, limit int) ([]RenewalCandidate, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT `+candidateColumns+` FROM domains d`+activeIndex(db.dialect)+`
		WHERE d.status = 'active' AND d.deleted_at IS NULL AND d.id > $1 ORDER BY d.id LIMIT $2`, after, limit)
	if err != nil {
		return nil, err
	}
	return scanCandidates(rows, limit)
}

// RenewalFilter says which active domains the renewal check needs to see.
type RenewalFilter struct {
	Now time.Time
	// RenewBefore: certificates with less than this left (0: a third of
	// their lifetime).
	RenewBefore time.Duration
	// ARI: also those whose CA is to be asked for its renewal window again.
	ARI bool
}

// RenewalPage is one page of the renewal check's keyset scan: the next
// limit active domains after the id after. It counts them (scanned) and
// says where the page ends (last, "" when there are none), but returns only
// the candidates — domains whose certificate may be due under f, whose
// renewal window is to be asked for, or whose certificate changed — as
// the database can tell from the row: a superset of what the check
// decides, with a second of slack, and a tenth of the rows on a healthy
// fleet. The rest never leave the database.
func (db *DB) RenewalPage(ctx context.Context, after string, limit int, f RenewalFilter) (cands []RenewalCandidate, scanned int, last string, err error) {
	var lastID sql.NullString
	if err := db.read.QueryRowContext(ctx, `SELECT COUNT(*), MAX(id) FROM (SELECT id FROM domains`+activeIndex(db.dialect)+`
		WHERE status = 'active' AND deleted_at IS NULL AND id > $1 ORDER BY id LIMIT $2) p`, after, limit).Scan(&scanned, &lastID); err != nil {
		return nil, 0, "", err
	}
	if scanned == 0 {
		return nil, 0, "", nil
	}
	ari := 0
	if f.ARI {
		ari = 1
	}
	rows, err := db.read.QueryContext(ctx, `SELECT `+candidateColumns+` FROM domains d`+activeIndex(db.dialect)+`
		WHERE d.status = 'active' AND d.deleted_at IS NULL AND d.id > $1 AND d.id <= $2 AND (
			d.expires_at IS NULL OR d.renewal_info_for IS NULL OR d.renewal_info_for <> d.expires_at
			OR d.ari_start <= CAST($3 AS BIGINT)
			OR (CAST($4 AS INTEGER) = 1 AND d.ari_next_check <= CAST($3 AS BIGINT))
			OR (CAST($5 AS BIGINT) > 0 AND d.expires_at < CAST($3 AS BIGINT) + CAST($5 AS BIGINT))
			OR (CAST($5 AS BIGINT) = 0 AND 2 * d.expires_at + COALESCE(d.cert_not_before, d.expires_at - CAST($6 AS BIGINT))
				< 3 * CAST($3 AS BIGINT) + CAST($7 AS BIGINT)))
		ORDER BY d.id`,
		after, lastID.String, micros(f.Now), ari, f.RenewBefore.Microseconds(), (90 * 24 * time.Hour).Microseconds(),
		(3 * time.Second).Microseconds())
	if err != nil {
		return nil, 0, "", err
	}
	cands, err = scanCandidates(rows, limit/8)
	return cands, scanned, lastID.String, err
}

// activeIndex makes SQLite walk domains_active in id order. Its planner
// otherwise prefers domains_status_expires for the equality on status and
// sorts every active domain for each page; PostgreSQL picks the partial
// index by itself (and has no INDEXED BY).
func activeIndex(d Dialect) string {
	if d == SQLite {
		return " INDEXED BY domains_active"
	}
	return ""
}

// ActiveDomainIDs is ActiveDomains with the ids only.
func (db *DB) ActiveDomainIDs(ctx context.Context, after string, limit int) ([]string, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT id FROM domains`+activeIndex(db.dialect)+`
		WHERE status = 'active' AND deleted_at IS NULL AND id > $1 ORDER BY id LIMIT $2`, after, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := make([]string, 0, limit)
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		out = append(out, id)
	}
	return out, rows.Err()
}

// HasActiveDomains reports whether any live domain is active: a check that
// scanned none while this is true suspects its own query.
func (db *DB) HasActiveDomains(ctx context.Context) (bool, error) {
	var n int
	err := db.read.QueryRowContext(ctx, `SELECT COUNT(*) FROM (SELECT 1 FROM domains WHERE status = 'active' AND deleted_at IS NULL LIMIT 1) x`).Scan(&n)
	return n > 0, err
}

// SaveRenewalInfo stores, inside tx, the dates of the current certificate
// of each stale candidate and forgets the renewal window of the one before.
// A domain whose certificate changed again meanwhile is left for the next
// check.
func (db *DB) SaveRenewalInfo(ctx context.Context, tx *sql.Tx, cs []RenewalCandidate) error {
	if len(cs) == 0 {
		return nil
	}
	if db.dialect == Postgres {
		ids, notBefore, infoFor := make([]string, len(cs)), make([]int64, len(cs)), make([]int64, len(cs))
		for i, c := range cs {
			ids[i], infoFor[i] = c.DomainID, micros(*c.NotAfter)
			if c.NotBefore != nil {
				notBefore[i] = micros(*c.NotBefore)
			}
		}
		_, err := tx.ExecContext(ctx, `UPDATE domains SET cert_not_before = NULLIF(v.not_before, 0), renewal_info_for = v.info_for,
			ari_start = NULL, ari_end = NULL, ari_explanation = '', ari_next_check = 0
			FROM unnest($1::text[], $2::bigint[], $3::bigint[]) AS v(id, not_before, info_for)
			WHERE domains.id = v.id AND domains.expires_at = v.info_for`, ids, notBefore, infoFor)
		return err
	}
	for _, c := range cs {
		if _, err := tx.ExecContext(ctx, `UPDATE domains SET cert_not_before = $1, renewal_info_for = $2,
			ari_start = NULL, ari_end = NULL, ari_explanation = '', ari_next_check = 0
			WHERE id = $3 AND expires_at = $2`, nullMicros(c.NotBefore), micros(*c.NotAfter), c.DomainID); err != nil {
			return err
		}
	}
	return nil
}

// ARIWindow is a CA's suggested renewal window for a certificate (RFC 9773).
type ARIWindow struct {
	Start, End     time.Time
	ExplanationURL string
}

// SaveARI stores what the CA said about the certificate that expires at
// notAfter: its window (nil: the CA has none) and when to ask again. A
// domain whose certificate changed meanwhile keeps its row.
func (db *DB) SaveARI(ctx context.Context, domainID string, notBefore, notAfter time.Time, w *ARIWindow, next time.Time) error {
	var start, end sql.NullInt64
	var why string
	if w != nil {
		start, end, why = nullMicros(&w.Start), nullMicros(&w.End), w.ExplanationURL
	}
	_, err := db.write.ExecContext(ctx, `UPDATE domains SET cert_not_before = $1, renewal_info_for = $2, ari_start = $3, ari_end = $4,
		ari_explanation = $5, ari_next_check = $6 WHERE id = $7 AND expires_at = $2`,
		micros(notBefore), micros(notAfter), start, end, why, micros(next), domainID)
	return err
}

// PostponeARI moves the next ARI request for the domain to next (after a
// failed request).
func (db *DB) PostponeARI(ctx context.Context, domainID string, next time.Time) error {
	_, err := db.write.ExecContext(ctx, `UPDATE domains SET ari_next_check = $1 WHERE id = $2`, micros(next), domainID)
	return err
}

// StartRenewalRun records that a renewal check began.
func (db *DB) StartRenewalRun(ctx context.Context, cause string) (*dcvaas.RenewalRun, error) {
	r := &dcvaas.RenewalRun{ID: newID(), Cause: cause, Status: dcvaas.RenewalRunning, StartedAt: db.now().UTC()}
	_, err := db.write.ExecContext(ctx, `INSERT INTO renewal_runs (id, cause, status, started_at) VALUES ($1, $2, $3, $4)`,
		r.ID, r.Cause, string(r.Status), micros(r.StartedAt))
	return r, err
}

// FinishRenewalRun records the end of a check: r.Status (succeeded or
// failed) and its counts; FinishedAt is set.
func (db *DB) FinishRenewalRun(ctx context.Context, r *dcvaas.RenewalRun) error {
	now := db.now().UTC()
	r.FinishedAt = &now
	_, err := db.write.ExecContext(ctx, `UPDATE renewal_runs SET status = $1, finished_at = $2, scanned = $3, due = $4, queued = $5,
		skipped = $6, ari_checks = $7, errors = $8, error = $9 WHERE id = $10`,
		string(r.Status), micros(now), r.Scanned, r.Due, r.Queued, r.Skipped, r.ARIChecks, r.Errors, r.Error, r.ID)
	return err
}

const renewalRunColumns = `id, cause, status, started_at, finished_at, scanned, due, queued, skipped, ari_checks, errors, error`

func scanRenewalRun(row interface{ Scan(...any) error }) (*dcvaas.RenewalRun, error) {
	var r dcvaas.RenewalRun
	var status string
	var started int64
	var finished sql.NullInt64
	if err := row.Scan(&r.ID, &r.Cause, &status, &started, &finished, &r.Scanned, &r.Due, &r.Queued, &r.Skipped,
		&r.ARIChecks, &r.Errors, &r.Error); err != nil {
		return nil, err
	}
	r.Status, r.StartedAt, r.FinishedAt = dcvaas.RenewalRunStatus(status), fromMicros(started), fromNullMicros(finished)
	return &r, nil
}

// LastRenewalRun returns the newest renewal check with the given status
// (any when empty), nil when there is none.
func (db *DB) LastRenewalRun(ctx context.Context, status dcvaas.RenewalRunStatus) (*dcvaas.RenewalRun, error) {
	var w where
	if status != "" {
		w.add("status = ?", string(status))
	}
	r, err := scanRenewalRun(db.read.QueryRowContext(ctx, `SELECT `+renewalRunColumns+` FROM renewal_runs`+w.String()+
		` ORDER BY started_at DESC, id DESC LIMIT 1`, w.args...))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	return r, err
}

// LockDomain reads a domain by id alone under a row lock inside tx, also
// when soft-deleted (DeletedAt set). ENOTFOUND when it is gone.
func (db *DB) LockDomain(ctx context.Context, tx *sql.Tx, id string) (*dcvaas.Domain, error) {
	d, err := scanDomain(tx.QueryRowContext(ctx, `SELECT `+domainColumns+` FROM domains WHERE id = $1`+db.dialect.forUpdate(), id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, dcvaas.Errorf(dcvaas.ENOTFOUND, "domain not found")
	}
	return d, err
}

// DomainByID reads a domain by id alone, also when soft-deleted.
// ENOTFOUND when it is gone.
func (db *DB) DomainByID(ctx context.Context, id string) (*dcvaas.Domain, error) {
	d, err := scanDomain(db.read.QueryRowContext(ctx, `SELECT `+domainColumns+` FROM domains WHERE id = $1`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, dcvaas.Errorf(dcvaas.ENOTFOUND, "domain not found")
	}
	return d, err
}

// SaveDelegation writes d's CNAMEStatus and LastError, sets d.UpdatedAt,
// and writes the audit entry action (none when empty), inside tx.
func (db *DB) SaveDelegation(ctx context.Context, tx *sql.Tx, d *dcvaas.Domain, action string, details map[string]any) error {
	d.UpdatedAt = db.now().UTC()
	if _, err := tx.ExecContext(ctx, `UPDATE domains SET cname_status = $1, last_error = $2, updated_at = $3 WHERE id = $4`,
		string(d.CNAMEStatus), d.LastError, micros(d.UpdatedAt), d.ID); err != nil {
		return err
	}
	if action == "" {
		return nil
	}
	return db.audit(ctx, tx, dcvaas.SystemActor(d.OrgID), action, "domain", d.ID, details)
}
