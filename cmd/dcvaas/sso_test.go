package main

import (
	"flag"
	"io"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dcvaas/dcvaas"
)

func TestSSOSettings(t *testing.T) {
	with := func(kv ...string) map[string]string {
		m := map[string]string{"DCVAAS_DATABASE_URL": filepath.Join(t.TempDir(), "x.db")}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	parse := func(m map[string]string) (*Config, error) {
		fs := flag.NewFlagSet("test", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		return parseConfig(fs, nil, env(m))
	}
	cfg, err := parse(with())
	if err != nil || cfg.SSO != nil {
		t.Fatalf("SSO without settings: %+v %v", cfg.SSO, err)
	}
	cfg, err = parse(with("DCVAAS_OIDC_ISSUER", "https://login.example.com", "DCVAAS_OIDC_CLIENT_ID", "dcvaas",
		"DCVAAS_OIDC_CLIENT_SECRET", "s3cret", "DCVAAS_OIDC_AUTO_JOIN", "org123:viewer", "DCVAAS_PUBLIC_URL", "https://dcvaas.example.com"))
	if err != nil || cfg.SSO == nil || cfg.SSO.Issuer != "https://login.example.com" || cfg.SSO.ClientID != "dcvaas" ||
		cfg.SSO.ClientSecret != "s3cret" || cfg.SSO.AutoJoinOrg != "org123" || cfg.SSO.AutoJoinRole != dcvaas.RoleViewer {
		t.Fatalf("SSO: %+v %v", cfg.SSO, err)
	}
	for _, tc := range []struct {
		vars []string
		want string
	}{
		{[]string{"DCVAAS_OIDC_CLIENT_ID", "x"}, "DCVAAS_OIDC_CLIENT_ID: set without DCVAAS_OIDC_ISSUER"},
		{[]string{"DCVAAS_OIDC_ISSUER", "https://login.example.com", "DCVAAS_PUBLIC_URL", "https://d.test"}, "DCVAAS_OIDC_CLIENT_ID"},
		{[]string{"DCVAAS_OIDC_ISSUER", "https://login.example.com", "DCVAAS_OIDC_CLIENT_ID", "x"}, "needs DCVAAS_PUBLIC_URL"},
		{[]string{"DCVAAS_OIDC_ISSUER", "login.example.com", "DCVAAS_OIDC_CLIENT_ID", "x", "DCVAAS_PUBLIC_URL", "https://d.test"}, "DCVAAS_OIDC_ISSUER"},
		{[]string{"DCVAAS_OIDC_ISSUER", "https://l.test", "DCVAAS_OIDC_CLIENT_ID", "x", "DCVAAS_PUBLIC_URL", "https://d.test", "DCVAAS_OIDC_AUTO_JOIN", "org123:king"}, "DCVAAS_OIDC_AUTO_JOIN"},
		{[]string{"DCVAAS_OIDC_ISSUER", "https://l.test", "DCVAAS_OIDC_CLIENT_ID", "x", "DCVAAS_PUBLIC_URL", "https://d.test", "DCVAAS_OIDC_AUTO_JOIN", "org123"}, "DCVAAS_OIDC_AUTO_JOIN"},
	} {
		if _, err := parse(with(tc.vars...)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: error %v, want it to name %s", tc.vars, err, tc.want)
		}
	}
}
