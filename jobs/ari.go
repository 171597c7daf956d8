package jobs

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/dcvaas/dcvaas"
	dcacme "github.com/dcvaas/dcvaas/acme"
	"github.com/dcvaas/dcvaas/sqlstore"
)

// ACME Renewal Information (RFC 9773) for the renewal check: a CA may move
// a certificate's suggested renewal window (ahead of a mass revocation, say),
// and says through Retry-After when to ask again. renewal_info jobs ask for
// the certificates whose stored Retry-After has passed, store the window,
// and queue the renewal when it has begun.

// renewalInfoSource asks a certificate's CA for its renewal window;
// *acme.Issuer is one. Without it (no issuer configured) only the stored
// windows and the certificates' dates count.
type renewalInfoSource interface {
	RenewalWindow(ctx context.Context, cert *dcvaas.Certificate) (*dcacme.Window, error)
}

func (e *Engine) renewalInfo() renewalInfoSource {
	s, _ := e.cfg.Issuer.(renewalInfoSource)
	return s
}

// ARI request pacing: when the CA gives no Retry-After (RFC 9773 §4.3), ask
// again after defaultARIRetry; a CA without ARI is asked weekly (it may
// gain it); a failed request is tried again after failedARIRetry.
const (
	defaultARIRetry = 6 * time.Hour
	noARIRetry      = 7 * 24 * time.Hour
	failedARIRetry  = time.Hour
	maxARIRetry     = 7 * 24 * time.Hour
	ariTimeout      = 30 * time.Second
)

// checkRenewalInfo asks the CA of each domain's certificate for its renewal
// window, stores it, and queues the renewals that are now due (spread when
// spread is set; a renewal_info job was spread itself). It returns how many
// renewals it queued and how many requests failed; err only for the
// database.
func (e *Engine) checkRenewalInfo(ctx context.Context, ids []string, runID string, spread bool) (queued, failed int, err error) {
	src := e.renewalInfo()
	if src == nil {
		return 0, 0, nil
	}
	var mu sync.Mutex
	var reqs []sqlstore.RenewalRequest
	var dbErr error
	fanOut(ids, checkFanout, func(id string) {
		req, ok, err := e.askRenewalInfo(ctx, src, id, runID)
		mu.Lock()
		defer mu.Unlock()
		switch {
		case err != nil && !errors.Is(err, errARIRequest):
			dbErr = errors.Join(dbErr, err)
		case err != nil:
			failed++
		case ok:
			if spread {
				req.RunAt = req.RunAt.Add(e.spreadOffset(id))
			}
			reqs = append(reqs, req)
		}
	})
	if dbErr != nil {
		return 0, failed, dbErr
	}
	if len(reqs) == 0 {
		return 0, failed, nil
	}
	tx, err := e.db.SQL().BeginTx(ctx, nil)
	if err != nil {
		return 0, failed, err
	}
	defer tx.Rollback()
	n, err := e.queueRenewalsTx(ctx, tx, reqs)
	if err != nil {
		return 0, failed, err
	}
	return n, failed, tx.Commit()
}

var errARIRequest = errors.New("ARI request failed")

// askRenewalInfo refreshes one domain's renewal window and says whether
// its certificate is due now.
func (e *Engine) askRenewalInfo(ctx context.Context, src renewalInfoSource, id, runID string) (sqlstore.RenewalRequest, bool, error) {
	d, err := e.db.DomainByID(ctx, id)
	if dcvaas.ErrorCode(err) == dcvaas.ENOTFOUND {
		return sqlstore.RenewalRequest{}, false, nil
	} else if err != nil {
		return sqlstore.RenewalRequest{}, false, err
	}
	if d.Status != dcvaas.DomainActive || d.DeletedAt != nil || d.ExpiresAt == nil {
		return sqlstore.RenewalRequest{}, false, nil
	}
	cert, err := e.db.CurrentCertificate(ctx, d.OrgID, d.ID)
	if dcvaas.ErrorCode(err) == dcvaas.ENOTFOUND {
		return sqlstore.RenewalRequest{}, false, nil
	} else if err != nil {
		return sqlstore.RenewalRequest{}, false, err
	}
	if !cert.NotAfter.Equal(*d.ExpiresAt) {
		return sqlstore.RenewalRequest{}, false, nil // a new one is being stored
	}
	rctx, cancel := context.WithTimeout(ctx, ariTimeout)
	w, err := src.RenewalWindow(rctx, cert)
	cancel()
	now := e.now().UTC()
	if err != nil {
		e.log.WarnContext(ctx, "ARI request failed", "domainId", d.ID, "ca", cert.CAName, "err", err)
		if perr := e.db.PostponeARI(ctx, d.ID, now.Add(failedARIRetry)); perr != nil {
			return sqlstore.RenewalRequest{}, false, perr
		}
		return sqlstore.RenewalRequest{}, false, errARIRequest
	}
	next := now.Add(noARIRetry)
	var stored *sqlstore.ARIWindow
	if w != nil {
		stored = &sqlstore.ARIWindow{Start: w.Start, End: w.End, ExplanationURL: w.ExplanationURL}
		next = now.Add(defaultARIRetry)
		if !w.RetryAfter.IsZero() {
			next = clampTime(w.RetryAfter, now.Add(time.Minute), now.Add(maxARIRetry))
		}
		if w.ExplanationURL != "" {
			e.log.InfoContext(ctx, "CA explains its renewal window", "domainId", d.ID, "ca", cert.CAName, "url", w.ExplanationURL)
		}
	}
	if err := e.db.SaveARI(ctx, d.ID, cert.NotBefore, cert.NotAfter, stored, next); err != nil {
		return sqlstore.RenewalRequest{}, false, err
	}
	reason := reasonDue(cert, w, now, e.cfg.Renewal.RenewBefore)
	if reason == "" {
		return sqlstore.RenewalRequest{}, false, nil
	}
	return sqlstore.RenewalRequest{DomainID: d.ID, OrgID: d.OrgID, NotAfter: &cert.NotAfter, Reason: reason,
		RunID: runID, RunAt: now}, true, nil
}

func clampTime(t, lo, hi time.Time) time.Time {
	if t.Before(lo) {
		return lo
	}
	if t.After(hi) {
		return hi
	}
	return t
}
