package acme

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dcvaas/dcvaas"
	"github.com/dcvaas/dcvaas/cabudget"
	"github.com/dcvaas/dcvaas/sqlstore"
	acmeapi "github.com/mholt/acmez/v3/acme"
)

// Issuer obtains certificates. It is safe for concurrent use; all its
// state that matters beyond one call lives in the Store.
type Issuer struct {
	cfg       Config
	log       *slog.Logger
	now       dcvaas.Clock
	transport http.RoundTripper
	// lastPurge is when this process last swept stale TXT values.
	lastPurge atomic.Int64
	// registering lets one job of this process register an account with
	// a CA while the others wait for it (account.go).
	registering sync.Mutex
}

// purgeEvery and purgeAge: how often an Issuer sweeps TXT values, and how
// old a value must be to go. Authorizations finish in minutes; an hour-old
// value belongs to no live order.
const (
	purgeEvery = 10 * time.Minute
	purgeAge   = time.Hour
)

// purge sweeps stale TXT values at most every purgeEvery.
func (is *Issuer) purge(ctx context.Context, now time.Time) {
	p, ok := is.cfg.Publisher.(Purger)
	last := is.lastPurge.Load()
	if !ok || now.UnixNano()-last < int64(purgeEvery) || !is.lastPurge.CompareAndSwap(last, now.UnixNano()) {
		return
	}
	if n, err := p.PurgeTXT(ctx, now.Add(-purgeAge)); err != nil {
		is.log.WarnContext(ctx, "cannot purge stale challenge values", "err", err)
	} else if n > 0 {
		is.log.InfoContext(ctx, "purged stale challenge values", "count", n)
	}
}

// New checks cfg and returns an Issuer.
func New(cfg Config) (*Issuer, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	t, err := newTransport(cfg.CABundlePEM)
	if err != nil {
		return nil, err
	}
	return &Issuer{cfg: cfg, log: cfg.Logger, now: cfg.Clock, transport: t}, nil
}

// Result is what an issuance did; the jobs engine keeps it as the job's
// result.
type Result struct {
	// Outcome is "issued", "renewed", "already_active" (start_issuance
	// found a valid certificate) or "recently_renewed" (a renewal found
	// one issued moments ago, by a run that crashed before recording it).
	Outcome       string    `json:"outcome"`
	CertificateID string    `json:"certificateId,omitempty"`
	CAName        string    `json:"caName,omitempty"`
	SerialNumber  string    `json:"serialNumber,omitempty"`
	NotAfter      time.Time `json:"notAfter,omitzero"`
	OrderURL      string    `json:"orderUrl,omitempty"`
	// Account is which of dcvaas's accounts at the CA issued (1-based).
	Account int `json:"account,omitempty"`
	// Replaces is the ARI id (RFC 9773 §5) of the renewed certificate.
	Replaces string `json:"replaces,omitempty"`
	// ResumedOrder is set when a pending order of an earlier run was
	// completed instead of a new one created.
	ResumedOrder bool `json:"resumedOrder,omitempty"`
	// Skipped lists the CAs passed over before the one that issued.
	Skipped []Skip `json:"skipped,omitempty"`
}

// Skip is one CA passed over, and why.
type Skip struct {
	CA     string `json:"ca"`
	Reason string `json:"reason"` // "backoff", "caa", "budget", or a failure: "rate limited", "unavailable", …
	Error  string `json:"error,omitempty"`
	// Until is when the CA may be asked again, when it said.
	Until time.Time `json:"until,omitzero"`
}

// Issue implements the jobs engine's Issuer hook: it obtains a certificate
// for d (renewal: replacing its current one) and stores it, the domain
// becoming active. Errors are *dcvaas.Error with customer-safe messages;
// RetryAt tells when trying again makes sense, if the error says.
func (is *Issuer) Issue(ctx context.Context, d *dcvaas.Domain, renewal bool) (any, error) {
	res, err := is.Obtain(ctx, d, renewal)
	if err != nil {
		return nil, err
	}
	return res, nil
}

// Obtain is Issue with a typed result.
func (is *Issuer) Obtain(ctx context.Context, d *dcvaas.Domain, renewal bool) (*Result, error) {
	if d.DeletedAt != nil {
		return nil, dcvaas.Errorf(dcvaas.ENOTFOUND, "domain was deleted")
	}
	now := is.now()
	is.purge(ctx, now)
	cur, err := is.cfg.Store.CurrentCertificate(ctx, d.OrgID, d.ID)
	if err != nil && dcvaas.ErrorCode(err) != dcvaas.ENOTFOUND {
		return nil, err
	}
	pending, err := is.cfg.Store.FindPendingOrder(ctx, d.ID)
	if err != nil && dcvaas.ErrorCode(err) != dcvaas.ENOTFOUND {
		return nil, err
	}
	var domainCSR *dcvaas.DomainCSR
	if d.KeyMode == dcvaas.KeyModeCSR {
		if domainCSR, err = is.domainCSR(ctx, d); err != nil {
			return nil, err
		}
	}
	// Idempotency: the work may be done already, by a run of this job
	// that crashed before it could record success. A csr-mode certificate
	// for another key than the CSR's is not: the customer rotated the key.
	if cur != nil && pending == nil && (domainCSR == nil || certMatchesCSR(cur.ChainPEM, domainCSR)) {
		if !renewal && d.Status == dcvaas.DomainActive && now.Before(cur.NotAfter) {
			return &Result{Outcome: "already_active", CertificateID: cur.ID, CAName: cur.CAName,
				SerialNumber: cur.SerialNumber, NotAfter: cur.NotAfter}, nil
		}
		if renewal && is.cfg.RenewDedup > 0 && now.Sub(cur.CreatedAt) < is.cfg.RenewDedup && !Due(cur, nil, now, is.cfg.RenewBefore) {
			return &Result{Outcome: "recently_renewed", CertificateID: cur.ID, CAName: cur.CAName,
				SerialNumber: cur.SerialNumber, NotAfter: cur.NotAfter}, nil
		}
	}
	if err := is.checkFailedValidations(ctx, d, now); err != nil {
		return nil, err
	}
	if err := is.checkDelegation(ctx, d); err != nil {
		return nil, err
	}
	cands, skipped, err := is.candidates(ctx, d, pending, now)
	if err != nil {
		return nil, err
	}
	if !renewal {
		cur = nil // a first issuance replaces nothing
	}
	var errs []string
	var wait *cabudget.Wait // the soonest refill of the CAs whose budgets are empty
	for i, ca := range cands {
		var po *sqlstore.PendingOrder
		if pending != nil && pending.CAName == ca.Name && pending.DirectoryURL == ca.Directory {
			po = pending
		}
		s := is.newSession(ca)
		s.csr = domainCSR
		res, err := s.obtain(ctx, d, po, cur)
		if err == nil {
			res.Skipped = skipped
			if renewal {
				res.Outcome = "renewed"
			}
			return res, nil
		}
		var w *cabudget.Wait
		if errors.As(err, &w) {
			if wait == nil || w.Until.Before(wait.Until) {
				wait = w
			}
			if i == len(cands)-1 || !cabudget.FailOver(w, now, is.cfg.FailoverAfter) {
				// Deferred to the refill: the soonest, when several
				// CAs are empty.
				return nil, waitError(wait)
			}
			skipped = append(skipped, is.budgetFailover(ctx, d, ca, w, cands[i+1]))
			continue
		}
		f := classify(ctx, err, s.rec)
		if f == failNone {
			return nil, publicError(ca, err)
		}
		skip := is.failover(ctx, d, ca, f, err, s.rec, cands[i+1:])
		skipped = append(skipped, skip)
		errs = append(errs, fmt.Sprintf("%s: %s", ca.Name, skip.Error))
	}
	e := &Error{RetryAt: earliest(skipped)}
	e.Err = fmt.Errorf("every CA failed: %s", strings.Join(errs, "; "))
	return nil, &dcvaas.Error{Code: dcvaas.EUNAVAILABLE, Err: e,
		Message: "no certificate authority could issue right now (" + strings.Join(errs, "; ") + "); it will be tried again"}
}

// failover records why ca was left (its back-off, for every node, and the
// audit entries) and returns the Skip for the result.
func (is *Issuer) failover(ctx context.Context, d *dcvaas.Domain, ca CA, f failure, err error, rec *recorder, next []CA) Skip {
	now := is.now()
	until := rec.lastRetryAfter()
	if until.IsZero() || !until.After(now) {
		until = now.Add(is.cfg.UnavailableBackoff)
		if f == failRateLimited {
			until = now.Add(is.cfg.RateLimitBackoff)
		}
	}
	msg := problemDetail(err)
	skip := Skip{CA: ca.Name, Reason: f.String(), Error: f.String() + ": " + msg, Until: until}
	actor := dcvaas.SystemActor(d.OrgID)
	details := map[string]any{"domainId": d.ID, "domainName": d.Name, "reason": f.String(), "error": msg,
		"retryAfter": until.UTC().Format(time.RFC3339)}
	action := ""
	if f == failRateLimited {
		action = "ca.rate_limit"
	}
	// A CA's own CAA verdict is about this domain only; the CA stays in use.
	if f != failCAA {
		if err := is.cfg.Store.SetCABackoff(ctx, actor, ca.Name, until, f.String()+": "+msg, action, details); err != nil {
			is.log.WarnContext(ctx, "cannot store CA back-off", "ca", ca.Name, "err", err)
		}
	}
	is.log.WarnContext(ctx, "CA failed, moving on", "ca", ca.Name, "domain", d.Name, "reason", f.String(), "err", err)
	if len(next) > 0 {
		details["to"] = next[0].Name
		if err := is.cfg.Store.AuditCAEvent(ctx, actor, "ca.failover", ca.Name, details); err != nil {
			is.log.WarnContext(ctx, "cannot audit failover", "ca", ca.Name, "err", err)
		}
	}
	return skip
}

// budgetFailover audits leaving ca, whose budget refills too late, for next.
func (is *Issuer) budgetFailover(ctx context.Context, d *dcvaas.Domain, ca CA, w *cabudget.Wait, next CA) Skip {
	details := map[string]any{"domainId": d.ID, "domainName": d.Name, "reason": "budget", "waitingFor": w.For,
		"until": w.Until.UTC().Format(time.RFC3339), "to": next.Name}
	if err := is.cfg.Store.AuditCAEvent(ctx, dcvaas.SystemActor(d.OrgID), "ca.failover", ca.Name, details); err != nil {
		is.log.WarnContext(ctx, "cannot audit failover", "ca", ca.Name, "err", err)
	}
	is.log.InfoContext(ctx, "CA budget refills too late, moving on", "ca", ca.Name, "domain", d.Name, "waitingFor", w.For, "until", w.Until, "to", next.Name)
	return Skip{CA: ca.Name, Reason: "budget", Error: w.Error(), Until: w.Until}
}

func earliest(skips []Skip) time.Time {
	var t time.Time
	for _, s := range skips {
		if !s.Until.IsZero() && (t.IsZero() || s.Until.Before(t)) {
			t = s.Until
		}
	}
	return t
}

// Error carries when an issuance may be tried again; it is the Err of the
// *dcvaas.Error that Issue returns.
type Error struct {
	RetryAt time.Time
	Err     error
}

func (e *Error) Error() string { return e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// RetryAt reports when an error of Issue says trying again makes sense
// (a CA's Retry-After, the end of a rate-limit hour); false when it does
// not say.
func RetryAt(err error) (time.Time, bool) {
	var e *Error
	if errors.As(err, &e) && !e.RetryAt.IsZero() {
		return e.RetryAt, true
	}
	var w *cabudget.Wait
	if errors.As(err, &w) {
		return w.Until, true
	}
	return time.Time{}, false
}

// problemDetail is the part of an error a customer can use: the CA's
// problem detail (RFC 8555 §6.7 asks clients to show it), else the error.
func problemDetail(err error) string {
	var p acmeapi.Problem
	if errors.As(err, &p) {
		if p.Detail != "" {
			return p.Detail
		}
		return p.Type
	}
	var de *dcvaas.Error
	if errors.As(err, &de) {
		return de.Message
	}
	return err.Error()
}

// publicError turns a non-failover error at ca into the *dcvaas.Error the
// job reports.
func publicError(ca CA, err error) error {
	var de *dcvaas.Error
	if errors.As(err, &de) {
		return err
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return &dcvaas.Error{Code: dcvaas.EUNAVAILABLE, Message: "issuance was interrupted; it resumes with the same order", Err: err}
	}
	return &dcvaas.Error{Code: dcvaas.EUNAVAILABLE, Message: fmt.Sprintf("%s: %s", ca.Name, problemDetail(err)), Err: err}
}
