package main

import (
	"log/slog"
	"net/http"
	"time"

	"github.com/dcvaas/dcvaas"
	"github.com/dcvaas/dcvaas/connection"
	"github.com/dcvaas/dcvaas/crypt"
	"github.com/dcvaas/dcvaas/secaudit"
	"github.com/dcvaas/dcvaas/session"
	"github.com/dcvaas/dcvaas/sqlstore"
	"github.com/dcvaas/dcvaas/web"
	"github.com/dcvaas/dcvaas/webhook"
)

// newDashboard returns the browser sessions and the dashboard served at /
// on the API's listener; the API's OAuth callback reads the same sessions.
func newDashboard(cfg *Config, db *sqlstore.DB, kr *crypt.Keyring, conns *connection.Service, limiter dcvaas.RateLimiter, audit *secaudit.Recorder, webhooks *webhook.Service, log *slog.Logger) (*session.Manager, http.Handler) {
	sessions := session.NewManager(db, cfg.Connections.PublicURL, time.Now)
	deps := web.Deps{
		Store:         db,
		Sessions:      sessions,
		Connections:   conns,
		VerifyZone:    cfg.VerifyZone,
		AllowTLDs:     cfg.AllowTLDs,
		HardDelete:    cfg.HardDelete,
		PublicURL:     cfg.Connections.PublicURL,
		Limiter:       limiter,
		RateLimit:     cfg.RateLimit,
		UserRateLimit: cfg.Hardening.UserRateLimit,
		SecurityAudit: audit,
		Clock:         time.Now,
		Logger:        log,
		SSO:           cfg.SSO,
		Webhooks:      webhooks, // the API's instance (serve.go)
	}
	if kr != nil {
		deps.Keys = kr
	}
	return sessions, web.New(deps)
}
