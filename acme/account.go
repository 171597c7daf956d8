package acme

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/dcvaas/dcvaas"
	acmez "github.com/mholt/acmez/v3/acme"
)

// account returns dcvaas's account at the CA, creating it on first use.
// The key is stored (sealed) before the account is registered: nodes racing
// on first use read back the same key, and newAccount with a key the CA
// already knows returns that account (RFC 8555 §7.3.1), so there is one
// account per CA however many nodes and restarts there are.
func (s *session) account(ctx context.Context) (acmez.Account, error) {
	is, ca := s.is, s.ca
	dir := s.accountDir()
	row, err := is.cfg.Store.FindACMEAccount(ctx, ca.Name, dir)
	if dcvaas.ErrorCode(err) == dcvaas.ENOTFOUND {
		key, kerr := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if kerr != nil {
			return acmez.Account{}, kerr
		}
		pemKey, kerr := encodeKey(key)
		if kerr != nil {
			return acmez.Account{}, kerr
		}
		sealed, kerr := is.cfg.Keyring.Encrypt(pemKey, accountKeyAD(ca.Name, dir))
		if kerr != nil {
			return acmez.Account{}, kerr
		}
		row, err = is.cfg.Store.CreateACMEAccount(ctx, ca.Name, dir, sealed)
	}
	if err != nil {
		return acmez.Account{}, fmt.Errorf("load ACME account for %s: %w", ca.Name, err)
	}
	pemKey, err := is.cfg.Keyring.Decrypt(row.KeyEnc, accountKeyAD(ca.Name, dir))
	if err != nil {
		return acmez.Account{}, fmt.Errorf("open ACME account key for %s: %w", ca.Name, err)
	}
	key, err := decodeKey(pemKey)
	if err != nil {
		return acmez.Account{}, fmt.Errorf("ACME account key for %s: %w", ca.Name, err)
	}
	acct := acmez.Account{PrivateKey: key, Location: row.AccountURL}
	if acct.Location != "" {
		return acct, nil
	}
	// The first jobs after start-up all find the account unregistered.
	// One registers; the others then read its URL instead of asking the
	// CA again for the same key (which Pebble does not take safely at
	// once, and which a CA counts against its account limits).
	is.registering.Lock()
	defer is.registering.Unlock()
	if row, err = is.cfg.Store.FindACMEAccount(ctx, ca.Name, dir); err != nil {
		return acmez.Account{}, fmt.Errorf("load ACME account for %s: %w", ca.Name, err)
	}
	if acct.Location = row.AccountURL; acct.Location != "" {
		return acct, nil
	}
	return s.register(ctx, acct)
}

// accountDeactivated reports whether err is the CA refusing a request
// because the account that signed it is deactivated (RFC 8555 §7.3.6: the
// server then takes no request signed by its key): an "unauthorized"
// problem saying so, as Boulder ("Account is not valid, has status
// \"deactivated\"") and Pebble ("Account has been deactivated") answer.
func accountDeactivated(err error) bool {
	var p acmez.Problem
	return errors.As(err, &p) && p.Type == acmez.ProblemTypeUnauthorized && strings.Contains(strings.ToLower(p.Detail), "deactivated")
}

// replaceAccount retires the session's account, which the CA deactivated
// (its operator, or the CA itself), and returns a new one registered in
// its place: a new key, so a new account at the CA. The domains dealt this
// place keep it and move to the new account — the one new assignment the
// stable assignment allows; their next orders carry no replaces, since a
// certificate of the old account cannot be replaced from another. Another
// node that got there first has put its new account in the place, which
// is then used.
func (s *session) replaceAccount(ctx context.Context) (acmez.Account, error) {
	old := s.acct.Location
	retired, err := s.is.cfg.Store.RetireACMEAccount(ctx, s.ca.Name, s.accountDir(), old)
	if err != nil {
		return acmez.Account{}, err
	}
	if retired {
		s.is.log.WarnContext(ctx, "the CA deactivated an ACME account: registering a new one in its place",
			"ca", s.ca.Name, "accountNumber", s.accountNumber, "account", old)
	}
	acct, err := s.account(ctx)
	if err == nil && acct.Location == old {
		err = fmt.Errorf("ACME account %s at %s is deactivated and could not be replaced", old, s.ca.Name)
	}
	return acct, err
}

// register creates (or finds again) the account for key at the CA and
// records its URL.
func (s *session) register(ctx context.Context, acct acmez.Account) (acmez.Account, error) {
	ca, dir := s.ca, s.accountDir()
	acct.Location = ""
	acct.TermsOfServiceAgreed = true
	if s.is.cfg.Email != "" {
		acct.Contact = []string{"mailto:" + s.is.cfg.Email}
	}
	if ca.EABKeyID != "" {
		if err := acct.SetExternalAccountBinding(ctx, s.client, acmez.EAB{KeyID: ca.EABKeyID, MACKey: ca.EABHMAC}); err != nil {
			return acct, fmt.Errorf("external account binding for %s: %w", ca.Name, err)
		}
	}
	acct, err := s.client.NewAccount(ctx, acct)
	if err != nil {
		return acct, fmt.Errorf("register ACME account at %s: %w", ca.Name, err)
	}
	if err := s.is.cfg.Store.SetACMEAccountURL(ctx, ca.Name, dir, acct.Location); err != nil {
		return acct, err
	}
	s.is.log.InfoContext(ctx, "ACME account registered", "ca", ca.Name, "account", acct.Location)
	return acct, nil
}

// accountDir is the key of the session's account in acme_accounts: the
// directory URL for the first account (as before several accounts
// existed), "<directory>#account=n" for the others.
func (s *session) accountDir() string {
	if s.accountNumber <= 1 {
		return s.ca.Directory
	}
	return s.ca.Directory + "#account=" + strconv.Itoa(s.accountNumber)
}

// assignAccount picks the domain's account at the session's CA: the one
// assigned before, else the next in turn, recorded so that later changes
// of the account count move no domain (ARI's replaces must come from the
// account that holds the certificate).
func (s *session) assignAccount(ctx context.Context, d *dcvaas.Domain) error {
	n := s.ca.Accounts
	if n <= 1 || s.is.cfg.Accounts == nil {
		s.accountNumber = 1
		return nil
	}
	got, err := s.is.cfg.Accounts.DomainACMEAccount(ctx, d.ID, s.ca.Name, n)
	if err != nil {
		return err
	}
	if got > n {
		// The account is no longer configured (deactivated): the domain
		// moves, and its next order carries no replaces from the old one.
		if got, err = s.is.cfg.Accounts.ReassignDomainACMEAccount(ctx, d.ID, s.ca.Name, n); err != nil {
			return err
		}
	}
	s.accountNumber = got
	return nil
}
