package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/dcvaas/dcvaas/crypt"
	"github.com/dcvaas/dcvaas/dnssec"
	"github.com/dcvaas/dcvaas/dnsserver"
	"github.com/dcvaas/dcvaas/sqlstore"
)

// DNSSEC for the verify zone (DCVAAS_DNSSEC, package dnssec): serve signs
// with the keys in the database, creating them if it is the first node;
// `dcvaas dns ds` prints what the parent zone needs; `dcvaas dns rollover`
// replaces the zone-signing key.

// dsTTL is the TTL printed with the DS record; the parent zone may use its own.
const dsTTL = time.Hour

// Rollover waits, from the server's TTLs: the new ZSK signs once every
// resolver that cached the DNSKEY RRset without it has fetched it again
// (the DNSKEY TTL) and every node has read the schedule (a key reload),
// with a margin; the old ZSK leaves the RRset once the longest-lived
// signature it made (an apex RRset's TTL) has expired from caches.
const (
	rolloverPublishWait = dnsserver.DefaultApexTTL + dnssec.KeyReload + 30*time.Second
	rolloverRemoveWait  = dnsserver.DefaultApexTTL + dnssec.KeyReload + 30*time.Second
)

const dnsUsage = `usage: dcvaas dns ds|rollover [flags]

  ds        print the verify zone's DS record (SHA-256) for its parent zone,
            creating the zone's DNSSEC keys if it has none yet
  rollover  replace the zone-signing key: the new key is published now,
            signs after the DNSKEY TTL, and the old one is removed once its
            signatures have expired from caches; the DS does not change`

// signerFor opens (creating if needed) the zone's keys for serve.
func signerFor(cfg *Config, db *sqlstore.DB, kr *crypt.Keyring) (*dnssec.Signer, func(context.Context) ([]*dnssec.Key, error), error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	keys, err := dnssec.Ensure(ctx, db, kr, cfg.VerifyZone, time.Now())
	if err != nil {
		return nil, nil, fmt.Errorf("DCVAAS_DNSSEC: %w", err)
	}
	reload := func(ctx context.Context) ([]*dnssec.Key, error) { return dnssec.Load(ctx, db, kr, cfg.VerifyZone) }
	return dnssec.NewSigner(cfg.VerifyZone, dnsserver.DefaultApexTTL, keys), reload, nil
}

// dnsCmd is `dcvaas dns ds` and `dcvaas dns rollover`.
func dnsCmd(ctx context.Context, fs *flag.FlagSet, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 || (args[0] != "ds" && args[0] != "rollover") {
		if helpRequested(args) {
			return noFlags(fs, args, nil)
		}
		fmt.Fprintln(stderr, dnsUsage)
		return errors.New("dns: the subcommands are ds and rollover")
	}
	sub := args[0]
	cfg, err := parseConfig(fs, args[1:], getenv)
	if err != nil {
		return err
	}
	a, err := openApp(ctx, cfg, stderr, opening{keyring: true}) // app.go
	if err != nil {
		return err
	}
	defer a.Close()
	now := time.Now()
	if sub == "rollover" {
		if _, err := dnssec.Load(ctx, a.db, a.kr, cfg.VerifyZone); err != nil {
			return err
		}
		s, err := dnssec.Rollover(ctx, a.db, a.kr, cfg.VerifyZone, now, rolloverPublishWait, rolloverRemoveWait)
		if err != nil {
			return fmt.Errorf("dns rollover: %w", err)
		}
		fmt.Fprintf(stdout, "ZSK %d published in the DNSKEY RRset of %s now\n", s.New, cfg.VerifyZone)
		fmt.Fprintf(stdout, "ZSK %d signs from %s; ZSK %d signs until then\n", s.New, s.SigningAt.UTC().Format(time.RFC3339), s.Old)
		fmt.Fprintf(stdout, "ZSK %d leaves the DNSKEY RRset at %s\n", s.Old, s.OldRemovedAt.UTC().Format(time.RFC3339))
		fmt.Fprintln(stdout, "the DS record at the parent zone does not change")
		return nil
	}
	keys, err := dnssec.Ensure(ctx, a.db, a.kr, cfg.VerifyZone, now)
	if err != nil {
		return err
	}
	for _, ds := range dnssec.DS(keys, now, dsTTL) {
		fmt.Fprintln(stdout, ds.String())
	}
	if !cfg.DNSSEC {
		fmt.Fprintln(stderr, "note: DCVAAS_DNSSEC is off; serve signs the zone with this key once it is set to true")
	}
	return nil
}
