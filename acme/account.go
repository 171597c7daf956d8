package acme

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"fmt"

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
	row, err := is.cfg.Store.FindACMEAccount(ctx, ca.Name, ca.Directory)
	if dcvaas.ErrorCode(err) == dcvaas.ENOTFOUND {
		key, kerr := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if kerr != nil {
			return acmez.Account{}, kerr
		}
		pemKey, kerr := encodeKey(key)
		if kerr != nil {
			return acmez.Account{}, kerr
		}
		sealed, kerr := is.cfg.Keyring.Encrypt(pemKey, accountKeyAD(ca.Name, ca.Directory))
		if kerr != nil {
			return acmez.Account{}, kerr
		}
		row, err = is.cfg.Store.CreateACMEAccount(ctx, ca.Name, ca.Directory, sealed)
	}
	if err != nil {
		return acmez.Account{}, fmt.Errorf("load ACME account for %s: %w", ca.Name, err)
	}
	pemKey, err := is.cfg.Keyring.Decrypt(row.KeyEnc, accountKeyAD(ca.Name, ca.Directory))
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
	if row, err = is.cfg.Store.FindACMEAccount(ctx, ca.Name, ca.Directory); err != nil {
		return acmez.Account{}, fmt.Errorf("load ACME account for %s: %w", ca.Name, err)
	}
	if acct.Location = row.AccountURL; acct.Location != "" {
		return acct, nil
	}
	return s.register(ctx, acct)
}

// register creates (or finds again) the account for key at the CA and
// records its URL.
func (s *session) register(ctx context.Context, acct acmez.Account) (acmez.Account, error) {
	ca := s.ca
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
	if err := s.is.cfg.Store.SetACMEAccountURL(ctx, ca.Name, ca.Directory, acct.Location); err != nil {
		return acct, err
	}
	s.is.log.InfoContext(ctx, "ACME account registered", "ca", ca.Name, "account", acct.Location)
	return acct, nil
}
