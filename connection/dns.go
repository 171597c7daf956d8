package connection

import (
	"context"
	"errors"
	"fmt"

	"github.com/dcvaas/dcvaas"
	"github.com/dcvaas/dcvaas/provider"
)

// withDNS runs fn with a client for the connection. OAuth tokens close to
// expiry are refreshed first, and a provider's "unauthorized" gets one
// refresh and one more try (the token may have been revoked early). The
// outcome is noted on the connection, so the UI can show what is wrong.
func (s *Service) withDNS(ctx context.Context, conn *dcvaas.Connection, fn func(provider.DNS) error) error {
	p, err := s.provider(conn.Provider)
	if err != nil {
		return err
	}
	if conn.Status == dcvaas.ConnectionNeedsReauth {
		return needsReauth(p)
	}
	cred, err := s.open(conn)
	if err != nil {
		return err
	}
	oauth := conn.Kind == dcvaas.ConnectionOAuth
	refreshed := false
	if oauth && !cred.Expiry.IsZero() && !s.now().Add(refreshMargin).Before(cred.Expiry) {
		if conn, cred, err = s.refresh(ctx, p, conn, cred); err != nil {
			return err
		}
		refreshed = true
	}
	for {
		dns, err := p.Open(ctx, cred)
		if err != nil {
			return err
		}
		err = fn(dns)
		if err != nil && oauth && !refreshed && provider.KindOf(err) == provider.KindAuth {
			if conn, cred, err = s.refresh(ctx, p, conn, cred); err != nil {
				return err
			}
			refreshed = true
			continue
		}
		s.note(ctx, p, conn, err)
		if err != nil {
			return providerError(p, err)
		}
		return nil
	}
}

// note records a refusal as the connection's last error, and clears it
// after a success. Outages are not the connection's fault and leave it be.
func (s *Service) note(ctx context.Context, p *Provider, conn *dcvaas.Connection, err error) {
	msg := ""
	if err != nil {
		if provider.KindOf(err) == provider.KindUnavailable {
			return
		}
		msg = dcvaas.ErrorMessage(providerError(p, err))
	}
	if msg == conn.LastError {
		return
	}
	if serr := s.cfg.Store.SetConnectionStatus(ctx, dcvaas.SystemActor(conn.OrgID), conn.ID, conn.Status, msg, ""); serr != nil {
		s.log.WarnContext(ctx, "cannot record connection outcome", "connection", conn.ID, "err", serr)
	}
}

// providerError turns a provider failure into the application's error: the
// provider's refusal is the customer's to fix (422, with its reason), an
// outage is worth retrying (503).
func providerError(p *Provider, err error) error {
	var de *dcvaas.Error
	if errors.As(err, &de) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	var pe *provider.Error
	if !errors.As(err, &pe) {
		return &dcvaas.Error{Code: dcvaas.EUNAVAILABLE, Message: p.Title + " could not be reached; try again", Err: err}
	}
	switch pe.Kind {
	case provider.KindUnavailable:
		msg := p.Title + " is unavailable"
		if pe.Status != 0 {
			msg += fmt.Sprintf(" (HTTP %d)", pe.Status)
		}
		return &dcvaas.Error{Code: dcvaas.EUNAVAILABLE, Message: msg + "; try again", Err: err}
	case provider.KindAuth:
		return &dcvaas.Error{Code: dcvaas.EINVALID, Message: p.Title + " rejected the credential: " + pe.Message, Err: err}
	case provider.KindForbidden:
		return &dcvaas.Error{Code: dcvaas.EINVALID, Message: p.Title + " denied a permission dcvaas needs: " + pe.Message, Err: err}
	default:
		return &dcvaas.Error{Code: dcvaas.EINVALID, Message: p.Title + " refused the request: " + pe.Message, Err: err}
	}
}
