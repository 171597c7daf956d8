package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/mail"
	"strings"

	"github.com/dcvaas/dcvaas"
	"github.com/dcvaas/dcvaas/apitoken"
	"github.com/dcvaas/dcvaas/orgname"
	"github.com/dcvaas/dcvaas/sqlstore"
)

// bootstrap is `dcvaas bootstrap`: the first organization, its owner and an
// admin token, so that everything else can go through the API.
func bootstrap(ctx context.Context, fs *flag.FlagSet, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	orgName := fs.String("org-name", "", "name of the organization to create (required)")
	email := fs.String("owner-email", "", "email of its owner (required)")
	asJSON := fs.Bool("json", false, "print one JSON object instead of text")
	cfg, err := parseConfig(fs, args, getenv)
	if err != nil {
		return err
	}
	if strings.TrimSpace(*orgName) == "" {
		return errors.New("--org-name is required (1 to 100 characters)")
	}
	name, err := orgname.Normalize(*orgName)
	if err != nil {
		return fmt.Errorf("--org-name %w", err)
	}
	addr, err := mail.ParseAddress(strings.TrimSpace(*email))
	if err != nil || addr.Name != "" {
		return fmt.Errorf("--owner-email %q is not an email address", *email)
	}
	a, err := openApp(ctx, cfg, stderr, opening{existing: true}) // app.go
	if err != nil {
		return err
	}
	defer a.Close()
	org, user, tok, plain, err := createOrganization(ctx, a.db, name, addr.Address)
	if err != nil {
		return err
	}
	if *asJSON {
		return json.NewEncoder(stdout).Encode(map[string]string{
			"organizationId":   org.ID,
			"organizationName": org.Name,
			"userId":           user.ID,
			"tokenId":          tok.ID,
			"token":            plain,
		})
	}
	fmt.Fprintf(stdout, "organization %s (%s) created, owner %s\n", org.Name, org.ID, user.Email)
	fmt.Fprintf(stdout, "API token (shown once, store it now):\n%s\n", plain)
	return nil
}

// createOrganization creates an organization, its owner and an admin
// token, returning the token's plain text (shown once, stored as a hash).
func createOrganization(ctx context.Context, db *sqlstore.DB, name, email string) (*dcvaas.Organization, *dcvaas.User, *dcvaas.Token, string, error) {
	plain, err := apitoken.Generate()
	if err != nil {
		return nil, nil, nil, "", err
	}
	tok := &dcvaas.Token{Name: "bootstrap", Prefix: apitoken.DisplayPrefix(plain), Hash: apitoken.Hash(plain), Role: dcvaas.TokenAdmin}
	org, user, err := db.Bootstrap(ctx, name, email, tok)
	if err != nil {
		return nil, nil, nil, "", err
	}
	return org, user, tok, plain, nil
}
