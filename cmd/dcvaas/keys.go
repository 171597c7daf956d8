package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/dcvaas/dcvaas/sqlstore"
)

// keys is `dcvaas keys rotate`: re-seal every secret at rest (provider
// credentials, OAuth verifiers, certificate and ACME keys) under the
// current DCVAAS_ENCRYPTION_KEY, opening them with it or any key in
// DCVAAS_ENCRYPTION_OLD_KEYS. It commits in batches and skips values already
// under the current key, so it can be interrupted and run again; once it
// succeeds, the old keys can be removed from the configuration.
func keys(ctx context.Context, fs *flag.FlagSet, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "rotate" {
		if helpRequested(args) { // help.go
			return noFlags(fs, args, nil)
		}
		fmt.Fprintln(stderr, "usage: dcvaas keys rotate [flags]")
		return errors.New("keys: the only subcommand is rotate")
	}
	batch := fs.Int("batch", sqlstore.DefaultRotateBatch, "rows re-sealed per transaction")
	cfg, err := parseConfig(fs, args[1:], getenv)
	if err != nil {
		return err
	}
	a, err := openApp(ctx, cfg, stderr, opening{keyring: true}) // app.go
	if err != nil {
		return err
	}
	defer a.Close()
	kr := a.kr
	res, err := a.db.RotateSecrets(ctx, kr, *batch)
	total := 0
	for _, r := range res {
		fmt.Fprintf(stdout, "%-20s %-16s %d re-sealed\n", r.Table, r.Column, r.Resealed)
		total += r.Resealed
	}
	if err != nil {
		return fmt.Errorf("keys rotate stopped (%d re-sealed so far; run it again once fixed): %w", total, err)
	}
	fmt.Fprintf(stdout, "every secret is sealed under key %s; keys in DCVAAS_ENCRYPTION_OLD_KEYS can now be retired\n", kr.CurrentKeyID())
	return nil
}
