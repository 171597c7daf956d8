package main

import (
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/dcvaas/dcvaas"
	"github.com/dcvaas/dcvaas/connection"
	"github.com/dcvaas/dcvaas/crypt"
	"github.com/dcvaas/dcvaas/provider/route53"
	"github.com/dcvaas/dcvaas/sqlstore"
)

// connectionSettings configure DNS provider connections (issue 6): where
// the providers' APIs are and the OAuth client registrations. Every
// default is the provider's real endpoint; the variables exist for
// sandboxes and tests.
var connectionSettings = append([]setting{
	{"public-url", "DCVAAS_PUBLIC_URL", "", "URL where browsers reach dcvaas: OAuth start page and callbacks, the dashboard (POSTs only from its origin; Secure cookies when https); required with OAuth", groupHTTP},
	{"encryption-old-keys", "DCVAAS_ENCRYPTION_OLD_KEYS", "", "comma-separated 64-hex keys that still decrypt, until `dcvaas keys rotate` re-seals under the current key", groupSecrets},
	{"cloudflare-api-url", "DCVAAS_CLOUDFLARE_API_URL", "", "Cloudflare API base (default https://api.cloudflare.com/client/v4)", groupProviders},
	{"godaddy-api-url", "DCVAAS_GODADDY_API_URL", "", "GoDaddy API base (default https://api.godaddy.com)", groupProviders},
	{"route53-api-url", "DCVAAS_ROUTE53_API_URL", "", "Route 53 endpoint (default: AWS)", groupProviders},
	{"route53-sts-url", "DCVAAS_ROUTE53_STS_URL", "", "STS endpoint for assuming customers' roles (default: AWS)", groupProviders},
}, oauthSettings()...)

// oauthProviders are the providers that can be connected with OAuth.
// Route 53 cannot: AWS access is granted with IAM, not OAuth.
var oauthProviders = []string{dcvaas.ProviderCloudflare, dcvaas.ProviderGoDaddy}

// oauthSettings are DCVAAS_OAUTH_<PROVIDER>_{CLIENT_ID,CLIENT_SECRET,AUTH_URL,TOKEN_URL,REVOKE_URL}.
func oauthSettings() []setting {
	var out []setting
	for _, p := range oauthProviders {
		P := strings.ToUpper(p)
		for _, s := range []struct{ name, usage string }{
			{"client-id", "OAuth client id; unset: credential connections only"},
			{"client-secret", "OAuth client secret"},
			{"auth-url", "OAuth authorization endpoint"},
			{"token-url", "OAuth token endpoint"},
			{"revoke-url", "OAuth revocation endpoint (RFC 7009), used when a connection is deleted"},
		} {
			env := "DCVAAS_OAUTH_" + P + "_" + strings.ToUpper(strings.ReplaceAll(s.name, "-", "_"))
			out = append(out, setting{"oauth-" + p + "-" + s.name, env, "", p + " " + s.usage, groupProviders})
		}
	}
	return out
}

// connectionConfig is the validated part of Config for connections.
type connectionConfig struct {
	PublicURL                 string
	OldKeys                   [][]byte
	CloudflareURL, GoDaddyURL string
	Route53URL, STSURL        string
	OAuth                     map[string]*connection.OAuthConfig // by provider; absent: no OAuth
}

// parseConnections reads connectionSettings; bad reports a setting's error.
func parseConnections(get func(string) string, bad func(env, format string, args ...any)) connectionConfig {
	c := connectionConfig{OAuth: map[string]*connection.OAuthConfig{}}
	for _, k := range strings.Split(get("DCVAAS_ENCRYPTION_OLD_KEYS"), ",") {
		if k = strings.TrimSpace(k); k == "" {
			continue
		}
		key, err := crypt.ParseHexKey(k)
		if err != nil {
			bad("DCVAAS_ENCRYPTION_OLD_KEYS", "each key must be 64 hex characters (32 bytes)")
			continue
		}
		c.OldKeys = append(c.OldKeys, key)
	}
	checkURL := func(env string) string {
		v := get(env)
		if v == "" {
			return ""
		}
		if u, err := url.Parse(v); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" {
			bad(env, "want an http(s) URL without query, got %q", v)
		}
		return strings.TrimSuffix(v, "/")
	}
	c.PublicURL = checkURL("DCVAAS_PUBLIC_URL")
	c.CloudflareURL, c.GoDaddyURL = checkURL("DCVAAS_CLOUDFLARE_API_URL"), checkURL("DCVAAS_GODADDY_API_URL")
	c.Route53URL, c.STSURL = checkURL("DCVAAS_ROUTE53_API_URL"), checkURL("DCVAAS_ROUTE53_STS_URL")

	for _, p := range oauthProviders {
		prefix := "DCVAAS_OAUTH_" + strings.ToUpper(p) + "_"
		id, secret := get(prefix+"CLIENT_ID"), get(prefix+"CLIENT_SECRET")
		authURL, tokenURL, revokeURL := checkURL(prefix+"AUTH_URL"), checkURL(prefix+"TOKEN_URL"), checkURL(prefix+"REVOKE_URL")
		if id == "" {
			continue
		}
		o := &connection.OAuthConfig{ClientID: id, ClientSecret: secret, AuthURL: authURL, TokenURL: tokenURL, RevokeURL: revokeURL}
		if p == dcvaas.ProviderCloudflare {
			def := connection.CloudflareOAuth
			o.Scopes = def.Scopes
			if o.AuthURL == "" && o.TokenURL == "" {
				o.AuthURL, o.TokenURL = def.AuthURL, def.TokenURL
				if o.RevokeURL == "" {
					o.RevokeURL = def.RevokeURL
				}
			}
		}
		if secret == "" {
			bad(prefix+"CLIENT_SECRET", "required with %sCLIENT_ID", prefix)
		}
		// GoDaddy publishes no OAuth endpoints of its own to default to.
		if o.AuthURL == "" || o.TokenURL == "" {
			bad(prefix+"AUTH_URL", "%sAUTH_URL and %sTOKEN_URL are required with %sCLIENT_ID", prefix, prefix, prefix)
		}
		if c.PublicURL == "" {
			bad("DCVAAS_PUBLIC_URL", "required with %sCLIENT_ID: it makes the OAuth callback URL", prefix)
		}
		c.OAuth[p] = o
	}
	return c
}

// newConnections builds the connection service for serve.
func newConnections(cfg *Config, db *sqlstore.DB, keys *crypt.Keyring, log *slog.Logger) *connection.Service {
	c := cfg.Connections
	hc := &http.Client{Timeout: 30 * time.Second}
	return connection.New(connection.Config{
		Store:     db,
		Keys:      keys,
		PublicURL: c.PublicURL,
		Logger:    log,
		Providers: []connection.Provider{
			connection.Cloudflare(c.CloudflareURL, c.OAuth[dcvaas.ProviderCloudflare], hc),
			connection.GoDaddy(c.GoDaddyURL, c.OAuth[dcvaas.ProviderGoDaddy], hc),
			// dcvaas's own AWS identity (for assuming customers' roles)
			// comes from the SDK's default chain when first needed.
			connection.Route53(route53.Options{Endpoint: c.Route53URL, STSEndpoint: c.STSURL, HTTPClient: hc}),
		},
		HTTPClient: hc,
	})
}
