package acme

import (
	"context"
	"errors"
	"time"

	"github.com/dcvaas/dcvaas"
	acmeapi "github.com/mholt/acmez/v3/acme"
)

// Window is a CA's suggested renewal window for a certificate (ACME
// Renewal Information, RFC 9773 §4.2).
type Window struct {
	Start, End time.Time
	// ExplanationURL says why, when the CA moved the window (e.g. ahead of
	// a mass revocation); operators should see it.
	ExplanationURL string
	// RetryAfter is when the CA wants to be asked again (§4.3).
	RetryAfter time.Time
}

// Due reports whether cert should be renewed at now: when the CA's ARI
// window has begun (RFC 9773 §4.2 — the CA may pull it forward, e.g.
// before revoking), or when less than renewBefore of its validity remains.
// renewBefore ≤ 0 means a third of the certificate's lifetime, which is 30
// days of a 90-day certificate and 2 of a 6-day one. An expired
// certificate is due. ari may be nil (the CA has no ARI, or it could not
// be asked).
func Due(cert *dcvaas.Certificate, ari *Window, now time.Time, renewBefore time.Duration) bool {
	if cert == nil {
		return true
	}
	if ari != nil && !ari.Start.IsZero() && !now.Before(ari.Start) {
		return true
	}
	if renewBefore <= 0 {
		renewBefore = cert.NotAfter.Sub(cert.NotBefore) / 3
	}
	return cert.NotAfter.Sub(now) < renewBefore
}

// RenewalWindow asks the CA that issued cert for its renewal window
// (RFC 9773 §4.1: an unauthenticated GET of renewalInfo/<cert id>). It
// returns nil without error when that CA is no longer configured or has
// no ARI; then Due falls back to the certificate's own dates.
func (is *Issuer) RenewalWindow(ctx context.Context, cert *dcvaas.Certificate) (*Window, error) {
	var ca *CA
	for i := range is.cfg.CAs {
		if is.cfg.CAs[i].Name == cert.CAName {
			ca = &is.cfg.CAs[i]
		}
	}
	if ca == nil {
		return nil, nil
	}
	leaf, err := leafOf(cert.ChainPEM)
	if err != nil {
		return nil, err
	}
	ri, err := is.newSession(*ca).client.GetRenewalInfo(ctx, leaf)
	if errors.Is(err, acmeapi.ErrUnsupported) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	w := &Window{Start: ri.SuggestedWindow.Start, End: ri.SuggestedWindow.End, ExplanationURL: ri.ExplanationURL}
	if ri.RetryAfter != nil {
		w.RetryAfter = *ri.RetryAfter
	}
	return w, nil
}

// CheckRenewal is what a renewal scan asks of each certificate: is it due
// now, by its CA's ARI window or by the configured share of its lifetime?
// A failed ARI request does not stop the decision — Due falls back to the
// certificate's dates (RFC 9773 §4.2 lets clients make their own
// determination then) — but is returned for logging.
func (is *Issuer) CheckRenewal(ctx context.Context, cert *dcvaas.Certificate) (bool, *Window, error) {
	w, err := is.RenewalWindow(ctx, cert)
	return Due(cert, w, is.now(), is.cfg.RenewBefore), w, err
}
