package main

import (
	"strconv"

	"github.com/dcvaas/dcvaas/crypt"
	"github.com/dcvaas/dcvaas/jobs"
	"github.com/dcvaas/dcvaas/sqlstore"
	"github.com/dcvaas/dcvaas/webhook"
)

// webhookSettings configure webhook delivery's SSRF guard (issue 11).
var webhookSettings = []setting{
	{"webhook-allow-http", "DCVAAS_WEBHOOK_ALLOW_HTTP", "false", "accept http:// webhook URLs (else https only)", groupJobs},
	{"webhook-allow-private", "DCVAAS_WEBHOOK_ALLOW_PRIVATE", "false", "let webhooks reach loopback, private (RFC 1918/4193), link-local, CGNAT and multicast addresses: on-premises receivers, tests", groupJobs},
}

// webhookConfig is the validated part of Config for webhooks.
type webhookConfig struct {
	Policy webhook.Policy
}

func parseWebhooks(get func(string) string, bad func(env, format string, args ...any)) webhookConfig {
	flag := func(env string) bool {
		v, err := strconv.ParseBool(get(env))
		if err != nil {
			bad(env, "want true or false, got %q", get(env))
		}
		return v
	}
	return webhookConfig{Policy: webhook.Policy{AllowHTTP: flag("DCVAAS_WEBHOOK_ALLOW_HTTP"), AllowPrivate: flag("DCVAAS_WEBHOOK_ALLOW_PRIVATE")}}
}

// newWebhooks is the service behind /api/webhooks.
func newWebhooks(cfg *Config, db *sqlstore.DB, kr *crypt.Keyring) *webhook.Service {
	if kr == nil {
		return nil
	}
	return &webhook.Service{Store: db, Sealer: kr, Policy: cfg.Webhooks.Policy}
}

// engineWebhooks is the job engine's delivery configuration.
func (c *Config) engineWebhooks(kr *crypt.Keyring) jobs.WebhookConfig {
	if kr == nil {
		return jobs.WebhookConfig{}
	}
	return jobs.WebhookConfig{Sealer: kr, Policy: c.Webhooks.Policy}
}
