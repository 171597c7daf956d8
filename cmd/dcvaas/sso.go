package main

import (
	"net/url"
	"strings"

	"github.com/dcvaas/dcvaas"
	"github.com/dcvaas/dcvaas/web"
)

// ssoSettings configure single sign-on to the dashboard with OpenID Connect.
var ssoSettings = []setting{
	{"oidc-issuer", "DCVAAS_OIDC_ISSUER", "", "OpenID Connect issuer URL for single sign-on to the dashboard (its /.well-known/openid-configuration is read); unset: no SSO. Needs DCVAAS_PUBLIC_URL; the redirect URI to register is <public URL>/signin/sso/callback", groupHTTP},
	{"oidc-client-id", "DCVAAS_OIDC_CLIENT_ID", "", "client id registered at the OIDC provider (required with DCVAAS_OIDC_ISSUER)", groupHTTP},
	{"oidc-client-secret", "DCVAAS_OIDC_CLIENT_SECRET", "", "client secret registered at the OIDC provider; prefer the variable (flags show in ps)", groupHTTP},
	{"oidc-auto-join", "DCVAAS_OIDC_AUTO_JOIN", "", "<organization id>:<role> (owner, admin, member or viewer): a verified e-mail that is no member of any organization joins this one; unset: such e-mails are refused", groupHTTP},
}

// parseSSO reads the SSO settings; nil when single sign-on is off.
func parseSSO(get func(string) string, publicURL string, bad func(env, format string, args ...any)) *web.SSO {
	issuer := get("DCVAAS_OIDC_ISSUER")
	id, secret, join := get("DCVAAS_OIDC_CLIENT_ID"), get("DCVAAS_OIDC_CLIENT_SECRET"), get("DCVAAS_OIDC_AUTO_JOIN")
	if issuer == "" {
		for _, env := range []string{"DCVAAS_OIDC_CLIENT_ID", "DCVAAS_OIDC_CLIENT_SECRET", "DCVAAS_OIDC_AUTO_JOIN"} {
			if get(env) != "" {
				bad(env, "set without DCVAAS_OIDC_ISSUER")
			}
		}
		return nil
	}
	if u, err := url.Parse(issuer); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" {
		bad("DCVAAS_OIDC_ISSUER", "want the issuer's http(s) URL, got %q", issuer)
	}
	if id == "" {
		bad("DCVAAS_OIDC_CLIENT_ID", "required with DCVAAS_OIDC_ISSUER")
	}
	if publicURL == "" {
		bad("DCVAAS_OIDC_ISSUER", "needs DCVAAS_PUBLIC_URL: the provider sends browsers back to <public URL>/signin/sso/callback")
	}
	cfg := &web.SSO{Issuer: issuer, ClientID: id, ClientSecret: secret}
	if join != "" {
		org, role, ok := strings.Cut(join, ":")
		cfg.AutoJoinOrg, cfg.AutoJoinRole = strings.TrimSpace(org), dcvaas.MemberRole(strings.TrimSpace(role))
		if !ok || cfg.AutoJoinOrg == "" || !cfg.AutoJoinRole.Valid() {
			bad("DCVAAS_OIDC_AUTO_JOIN", "want <organization id>:<role> with role owner, admin, member or viewer, got %q", join)
		}
	}
	return cfg
}
