package connection

import (
	"context"
	"net/http"
	"regexp"

	"github.com/dcvaas/dcvaas"
	"github.com/dcvaas/dcvaas/provider"
	"github.com/dcvaas/dcvaas/provider/cloudflare"
	"github.com/dcvaas/dcvaas/provider/godaddy"
	"github.com/dcvaas/dcvaas/provider/route53"
)

// CloudflareOAuth is Cloudflare's OAuth endpoints and the scopes one-click
// setup needs; the client id and secret come from the registration.
var CloudflareOAuth = OAuthConfig{
	AuthURL:   "https://dash.cloudflare.com/oauth2/auth",
	TokenURL:  "https://dash.cloudflare.com/oauth2/token",
	RevokeURL: "https://dash.cloudflare.com/oauth2/revoke",
	Scopes:    []string{"zone:read", "dns_records:edit", "offline_access"},
}

func missing(fields map[string]string) error {
	return &dcvaas.Error{Code: dcvaas.EINVALID, Message: "the credential is incomplete", Fields: fields}
}

// Cloudflare is the Cloudflare provider. apiURL "" means the real API;
// oauth nil offers API-token connections only.
func Cloudflare(apiURL string, oauth *OAuthConfig, hc *http.Client) Provider {
	return Provider{
		Name: dcvaas.ProviderCloudflare, Title: "Cloudflare", OAuth: oauth,
		Prepare: func(_ string, c *Credential) (string, error) {
			if c.APIToken == "" {
				return "", missing(map[string]string{"credential.apiToken": "required: an API token with Zone:Read and DNS:Edit"})
			}
			*c = Credential{APIToken: c.APIToken}
			return "Cloudflare", nil
		},
		Open: func(_ context.Context, c Credential) (provider.DNS, error) {
			token := c.APIToken
			if c.AccessToken != "" {
				token = c.AccessToken
			}
			return cloudflare.New(apiURL, token, hc), nil
		},
	}
}

// GoDaddy is the GoDaddy provider. GoDaddy publishes no general OAuth
// endpoints, so oauth is nil unless GoDaddy gave the operator some.
func GoDaddy(apiURL string, oauth *OAuthConfig, hc *http.Client) Provider {
	return Provider{
		Name: dcvaas.ProviderGoDaddy, Title: "GoDaddy", OAuth: oauth,
		Prepare: func(_ string, c *Credential) (string, error) {
			f := map[string]string{}
			if c.APIKey == "" {
				f["credential.apiKey"] = "required"
			}
			if c.APISecret == "" {
				f["credential.apiSecret"] = "required"
			}
			if len(f) > 0 {
				return "", missing(f)
			}
			*c = Credential{APIKey: c.APIKey, APISecret: c.APISecret}
			return "GoDaddy", nil
		},
		Open: func(_ context.Context, c Credential) (provider.DNS, error) {
			auth := godaddy.SSOKey(c.APIKey, c.APISecret)
			if c.AccessToken != "" {
				auth = godaddy.Bearer(c.AccessToken)
			}
			return godaddy.New(apiURL, auth, hc), nil
		},
	}
}

// ExternalID is the external id an organization's IAM role must require of
// dcvaas. dcvaas chooses it, never the customer: otherwise one customer
// could name another's role and its id, and have dcvaas act on it (the
// "confused deputy", which external ids exist to prevent).
func ExternalID(orgID string) string { return "dcvaas-" + orgID }

var roleARN = regexp.MustCompile(`^arn:aws[a-zA-Z-]*:iam::\d{12}:role/[\w+=,.@/-]{1,512}$`)

// Route53 is the Route 53 provider; base carries the endpoints and dcvaas's
// own AWS identity (for assuming customers' roles), the credential fields
// are filled per connection. Route 53 has no OAuth.
func Route53(base route53.Options) Provider {
	return Provider{
		Name: dcvaas.ProviderRoute53, Title: "Route 53",
		Prepare: func(orgID string, c *Credential) (string, error) {
			switch {
			case c.RoleARN != "":
				if !roleARN.MatchString(c.RoleARN) {
					return "", missing(map[string]string{"credential.roleArn": "must be an IAM role ARN like arn:aws:iam::123456789012:role/dcvaas"})
				}
				want := ExternalID(orgID)
				if c.ExternalID != "" && c.ExternalID != want {
					return "", missing(map[string]string{"credential.externalId": "must be " + want + " (or be left out): dcvaas sets the external id, and the role's trust policy must require it"})
				}
				*c = Credential{RoleARN: c.RoleARN, ExternalID: want}
				return "Route 53 (" + c.RoleARN + ")", nil
			case c.AccessKeyID != "" || c.SecretAccessKey != "":
				f := map[string]string{}
				if c.AccessKeyID == "" {
					f["credential.accessKeyId"] = "required with secretAccessKey"
				}
				if c.SecretAccessKey == "" {
					f["credential.secretAccessKey"] = "required with accessKeyId"
				}
				if len(f) > 0 {
					return "", missing(f)
				}
				*c = Credential{AccessKeyID: c.AccessKeyID, SecretAccessKey: c.SecretAccessKey}
				return "Route 53", nil
			}
			return "", missing(map[string]string{"credential.roleArn": "required: a role to assume (recommended), or an access key pair"})
		},
		Open: func(ctx context.Context, c Credential) (provider.DNS, error) {
			o := base
			o.AccessKeyID, o.SecretAccessKey, o.RoleARN, o.ExternalID = c.AccessKeyID, c.SecretAccessKey, c.RoleARN, c.ExternalID
			return route53.New(ctx, o)
		},
	}
}
