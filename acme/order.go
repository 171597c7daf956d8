package acme

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/dcvaas/dcvaas"
	"github.com/dcvaas/dcvaas/sqlstore"
	acmeapi "github.com/mholt/acmez/v3/acme"
)

// session is one attempt at one CA: its client (whose transport records
// the CA's status codes and Retry-After) and dcvaas's account there.
type session struct {
	is     *Issuer
	ca     CA
	rec    *recorder
	client *acmeapi.Client
	acct   acmeapi.Account
	// accountNumber is which of dcvaas's accounts at the CA the domain
	// uses (1-based).
	accountNumber int
	// csr, for a csr-mode domain, is the customer's CSR as the job began;
	// orderCSR is the one its order is (to be) finalized with.
	csr      *dcvaas.DomainCSR
	orderCSR string
	// cleaned: the order's TXT values are removed (cleanup).
	cleaned bool
}

func (is *Issuer) newSession(ca CA) *session {
	rec := &recorder{base: is.transport, now: is.now}
	return &session{is: is, ca: ca, rec: rec, accountNumber: 1, client: &acmeapi.Client{
		Directory:   ca.Directory,
		HTTPClient:  &http.Client{Transport: rec, Timeout: is.cfg.HTTPTimeout},
		UserAgent:   is.cfg.UserAgent,
		PollTimeout: is.cfg.PollTimeout,
		Logger:      is.log,
	}}
}

// obtain runs an order at the session's CA through to a stored
// certificate: it resumes po when given (the domain's pending order at this
// CA), else creates one. prev is the certificate a renewal replaces.
func (s *session) obtain(ctx context.Context, d *dcvaas.Domain, po *sqlstore.PendingOrder, prev *dcvaas.Certificate) (*Result, error) {
	if err := s.assignAccount(ctx, d); err != nil {
		return nil, err
	}
	acct, err := s.account(ctx)
	if err != nil {
		return nil, err
	}
	s.acct = acct
	var order acmeapi.Order
	var key crypto.Signer
	resumed := false
	if po != nil {
		order, key, err = s.resume(ctx, d, po)
		resumed = err == nil
		if err != nil && !errors.Is(err, errOrderGone) {
			return nil, err
		}
	}
	if !resumed {
		if order, key, err = s.newOrder(ctx, d, prev); err != nil {
			return nil, err
		}
	}
	defer s.cleanup(ctx, d, order)
	c, err := s.complete(ctx, d, order, key)
	if err != nil {
		return nil, err
	}
	return &Result{Outcome: "issued", CertificateID: c.ID, CAName: c.CAName, SerialNumber: c.SerialNumber,
		NotAfter: c.NotAfter, OrderURL: c.OrderURL, Replaces: order.Replaces, ResumedOrder: resumed, Account: s.accountNumber}, nil
}

// errOrderGone: the pending order cannot be resumed and a new one is due.
var errOrderGone = errors.New("pending order is gone")

// resume fetches the pending order (RFC 8555 §7.4: POST-as-GET to its URL)
// with the key sealed beside it.
func (s *session) resume(ctx context.Context, d *dcvaas.Domain, po *sqlstore.PendingOrder) (acmeapi.Order, crypto.Signer, error) {
	order, err := s.client.GetOrder(ctx, s.acct, acmeapi.Order{Location: po.OrderURL})
	if err != nil {
		var p acmeapi.Problem
		if errors.As(err, &p) && p.Status >= 400 && p.Status < 500 && p.Type != acmeapi.ProblemTypeRateLimited {
			// Unknown to the CA (expired and purged, or another account's).
			s.is.log.InfoContext(ctx, "pending order cannot be resumed", "domain", d.Name, "order", po.OrderURL, "err", err)
			return order, nil, s.dropOrder(ctx, d, po.OrderURL)
		}
		return order, nil, err
	}
	order.Location = po.OrderURL
	switch order.Status {
	case acmeapi.StatusInvalid:
		// The order failed (a validation, most likely) before the job
		// could see it. That is this attempt's outcome; the next attempt
		// starts a new order.
		if err := s.is.cfg.Store.DeletePendingOrder(ctx, d.ID, po.OrderURL); err != nil {
			return order, nil, err
		}
		return order, nil, s.orderFailed(d, order)
	case acmeapi.StatusPending, acmeapi.StatusReady, acmeapi.StatusProcessing, acmeapi.StatusValid:
	default: // expired, deactivated
		return order, nil, s.dropOrder(ctx, d, po.OrderURL)
	}
	if s.csr != nil {
		// No key: the order is finalized (or was) with the customer's CSR.
		s.orderCSR = po.CSRPEM
		s.is.log.InfoContext(ctx, "resuming pending order", "domain", d.Name, "ca", s.ca.Name, "order", po.OrderURL, "status", order.Status, "keyMode", d.KeyMode)
		return order, nil, nil
	}
	pemKey, err := s.is.cfg.Keyring.Decrypt(po.KeyEnc, orderKeyAD(d.ID, po.OrderURL))
	if err != nil {
		return order, nil, fmt.Errorf("open the key of pending order %s: %w", po.OrderURL, err)
	}
	key, err := decodeKey(pemKey)
	if err != nil {
		return order, nil, err
	}
	s.is.log.InfoContext(ctx, "resuming pending order", "domain", d.Name, "ca", s.ca.Name, "order", po.OrderURL, "status", order.Status)
	return order, key, nil
}

func (s *session) dropOrder(ctx context.Context, d *dcvaas.Domain, orderURL string) error {
	if err := s.is.cfg.Store.DeletePendingOrder(ctx, d.ID, orderURL); err != nil {
		return err
	}
	return errOrderGone
}

// newOrder asks for the domain and, unless excluded, its wildcard
// (RFC 8555 §7.4), and records the order with its sealed CSR key before
// anything else happens: from here on a restarted job resumes it.
func (s *session) newOrder(ctx context.Context, d *dcvaas.Domain, prev *dcvaas.Certificate) (acmeapi.Order, crypto.Signer, error) {
	var key crypto.Signer
	var err error
	if s.csr == nil {
		// Customer-held keys (s.csr set) have none here, ever.
		if key, err = newKey(d.KeyType); err != nil {
			return acmeapi.Order{}, nil, err
		}
	}
	// Values left by an abandoned order of this domain must not linger
	// beside the new ones (a CA accepts any value present, but stale ones
	// are litter, and the issue wants none).
	if err := s.is.cfg.Publisher.ClearTXT(ctx, d.CNAMETarget); err != nil {
		return acmeapi.Order{}, nil, err
	}
	req := acmeapi.Order{Identifiers: []acmeapi.Identifier{{Type: "dns", Value: d.Name}}, Profile: s.ca.Profile}
	if d.IncludeWildcard {
		req.Identifiers = append(req.Identifiers, acmeapi.Identifier{Type: "dns", Value: "*." + d.Name})
	}
	if req.Replaces, err = s.replaces(ctx, prev); err != nil {
		return acmeapi.Order{}, nil, err
	}
	if err := s.takeBudget(ctx, req, false); err != nil {
		return acmeapi.Order{}, nil, err
	}
	order, err := s.client.NewOrder(ctx, s.acct, req)
	if accountDeactivated(err) {
		if s.acct, err = s.replaceAccount(ctx); err != nil {
			return order, nil, err
		}
		if req.Replaces != "" {
			// The new account cannot replace the old one's certificate;
			// without the hint the order is an ordinary one, which the
			// budgets must allow.
			req.Replaces = ""
			if err := s.takeBudget(ctx, req, true); err != nil {
				return acmeapi.Order{}, nil, err
			}
		}
		order, err = s.client.NewOrder(ctx, s.acct, req)
	}
	var p acmeapi.Problem
	if errors.As(err, &p) && p.Type == acmeapi.ProblemTypeAccountDoesNotExist {
		// The CA forgot the account (a test CA restarted, or it was
		// deactivated): register the same key again and retry once.
		if s.acct, err = s.register(ctx, s.acct); err != nil {
			return order, nil, err
		}
		order, err = s.client.NewOrder(ctx, s.acct, req)
	}
	if errors.As(err, &p) && req.Replaces != "" && p.Type != acmeapi.ProblemTypeRateLimited {
		// replaces is a hint (RFC 9773 §5), and the CA refused the order
		// that carried it: most often because an earlier run's order
		// already claimed the replacement (it crashed before recording
		// it), which the RFC lets the CA refuse; or because the CA could
		// not match the id to its certificate (Pebble, for 1 in 256
		// serials). The renewal goes ahead without the hint. A rate limit
		// is left alone: the hint is what may exempt the order from it.
		s.is.log.InfoContext(ctx, "the CA refused the order naming the certificate it replaces; ordering without replaces",
			"domain", d.Name, "problem", p.Type, "detail", p.Detail)
		req.Replaces = ""
		// Without the hint the order is an ordinary one, which the
		// budgets must allow.
		if err := s.takeBudget(ctx, req, true); err != nil {
			return acmeapi.Order{}, nil, err
		}
		order, err = s.client.NewOrder(ctx, s.acct, req)
	}
	if err != nil {
		return order, nil, err
	}
	sealed := ""
	if key != nil {
		pemKey, err := encodeKey(key)
		if err != nil {
			return order, nil, err
		}
		if sealed, err = s.is.cfg.Keyring.Encrypt(pemKey, orderKeyAD(d.ID, order.Location)); err != nil {
			return order, nil, err
		}
	} else {
		s.orderCSR = s.csr.PEM
	}
	if err := s.is.cfg.Store.SavePendingOrder(ctx, &sqlstore.PendingOrder{
		DomainID: d.ID, OrgID: d.OrgID, CAName: s.ca.Name, DirectoryURL: s.ca.Directory,
		OrderURL: order.Location, KeyType: d.KeyType, KeyEnc: sealed, Replaces: req.Replaces, CSRPEM: s.orderCSR,
	}); err != nil {
		return order, nil, err
	}
	order.Replaces = req.Replaces
	s.is.log.InfoContext(ctx, "order created", "domain", d.Name, "ca", s.ca.Name, "order", order.Location, "replaces", req.Replaces)
	return order, key, nil
}

// replaces returns the ARI id of prev (RFC 9773 §5) when this CA issued
// it and supports ARI; "" otherwise (another CA cannot replace it).
func (s *session) replaces(ctx context.Context, prev *dcvaas.Certificate) (string, error) {
	if prev == nil || prev.CAName != s.ca.Name {
		return "", nil
	}
	dir, err := s.client.GetDirectory(ctx)
	if err != nil {
		return "", err
	}
	if dir.RenewalInfo == "" {
		return "", nil
	}
	leaf, err := leafOf(prev.ChainPEM)
	if err != nil {
		return "", nil // an unreadable old certificate only loses the hint
	}
	id, err := acmeapi.ARIUniqueIdentifier(leaf)
	if err != nil {
		return "", nil
	}
	return id, nil
}

// complete drives the order through its states (RFC 8555 §7.1.6) to a
// stored certificate.
func (s *session) complete(ctx context.Context, d *dcvaas.Domain, order acmeapi.Order, key crypto.Signer) (*dcvaas.Certificate, error) {
	deadline := time.Now().Add(s.is.cfg.PollTimeout)
	for {
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("order %s still %s after %s: %w", order.Location, order.Status, s.is.cfg.PollTimeout, context.DeadlineExceeded)
		}
		var err error
		switch order.Status {
		case acmeapi.StatusPending:
			if err := s.authorize(ctx, d, order); err != nil {
				return nil, err
			}
			order, err = s.getOrder(ctx, order)
		case acmeapi.StatusReady:
			var csr []byte
			if s.csr != nil {
				csr, err = s.customerCSR(ctx, d, order)
			} else {
				csr, err = newCSR(key, order.Identifiers)
			}
			if err != nil {
				return nil, err
			}
			// FinalizeOrder polls while processing, honouring Retry-After.
			order, err = s.client.FinalizeOrder(ctx, s.acct, order, csr)
		case acmeapi.StatusProcessing:
			if err := s.wait(ctx, deadline); err != nil {
				return nil, err
			}
			order, err = s.getOrder(ctx, order)
		case acmeapi.StatusValid:
			return s.download(ctx, d, order, key)
		case acmeapi.StatusInvalid:
			if err := s.is.cfg.Store.DeletePendingOrder(ctx, d.ID, order.Location); err != nil {
				return nil, err
			}
			return nil, s.orderFailed(d, order)
		default:
			return nil, fmt.Errorf("order %s has status %q", order.Location, order.Status)
		}
		if err != nil {
			if order.Status == acmeapi.StatusInvalid {
				continue // finalize failed the order: report it as such
			}
			return nil, err
		}
	}
}

// getOrder re-reads the order; acmez does not keep its URL on the result.
func (s *session) getOrder(ctx context.Context, order acmeapi.Order) (acmeapi.Order, error) {
	loc := order.Location
	order, err := s.client.GetOrder(ctx, s.acct, order)
	order.Location = loc
	return order, err
}

// wait sleeps for the CA's Retry-After on the last response (RFC 8555
// §7.4: clients poll a processing order no faster than asked), 1s without.
func (s *session) wait(ctx context.Context, deadline time.Time) error {
	d := time.Second
	if at := s.rec.lastPollAfter(); !at.IsZero() {
		d = max(time.Until(at), 0)
	}
	if time.Now().Add(d).After(deadline) {
		return fmt.Errorf("order still processing after %s: %w", s.is.cfg.PollTimeout, context.DeadlineExceeded)
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func (s *session) orderFailed(d *dcvaas.Domain, order acmeapi.Order) error {
	detail := "the CA gave no reason"
	if order.Error != nil {
		detail = problemDetail(*order.Error)
	}
	return &dcvaas.Error{Code: dcvaas.ECONFLICT, Message: fmt.Sprintf("%s refused the order for %s: %s", s.ca.Name, d.Name, detail),
		Err: fmt.Errorf("order %s invalid", order.Location)}
}

// newCSR makes the certificate request (RFC 2986) for the order's names,
// already ASCII (punycode) and lowercase as dcvaas stores them.
func newCSR(key crypto.Signer, ids []acmeapi.Identifier) ([]byte, error) {
	tmpl := &x509.CertificateRequest{}
	for _, id := range ids {
		tmpl.DNSNames = append(tmpl.DNSNames, id.Value)
	}
	return x509.CreateCertificateRequest(rand.Reader, tmpl, key)
}

// cleanup removes the TXT values of the order's authorizations once the
// order is done, whether it succeeded or failed: before the certificate is
// saved (download.go), so that nobody sees the domain active with its
// challenge values still published, and otherwise when Obtain returns.
// When ctx ended (the job is being stopped), they stay: the order is
// resumed by the next run, which publishes and removes them again.
func (s *session) cleanup(ctx context.Context, d *dcvaas.Domain, order acmeapi.Order) {
	if ctx.Err() != nil || s.cleaned {
		return
	}
	s.cleaned = true
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	for _, authz := range order.Authorizations {
		if err := s.is.cfg.Publisher.UnpublishTXT(cctx, d.CNAMETarget, authz); err != nil {
			s.is.log.WarnContext(ctx, "cannot remove challenge TXT value", "name", d.CNAMETarget, "authz", authz, "err", err)
		}
	}
}
