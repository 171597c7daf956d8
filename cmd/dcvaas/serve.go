package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/dcvaas/dcvaas"
	"github.com/dcvaas/dcvaas/cabudget"
	"github.com/dcvaas/dcvaas/httpapi"
	"github.com/dcvaas/dcvaas/ratelimit"
	"github.com/dcvaas/dcvaas/secaudit"
	"github.com/dcvaas/dcvaas/sqlstore"
)

// onListen and onDNSListen, when set (by tests), learn the HTTP and the
// DNS server's addresses once they accept.
var onListen, onDNSListen func(addr string)

// serve is `dcvaas serve`: everything in one process until ctx ends, then a
// graceful stop that lets requests in flight finish.
func serve(ctx context.Context, fs *flag.FlagSet, args []string, getenv func(string) string, stderr io.Writer) error {
	cfg, err := parseConfig(fs, args, getenv)
	if err != nil {
		return err
	}
	a, err := openApp(ctx, cfg, stderr, opening{keyring: true}) // app.go
	if err != nil {
		return err
	}
	defer a.Close()
	return runServer(ctx, a, func(httpAddr, _ string) {
		if onListen != nil {
			onListen(httpAddr)
		}
	})
}

// runServer runs the API, the job engine and the DNS server on an opened
// app until ctx ends. listening, when set, learns the HTTP and DNS
// servers' addresses ("" without the built-in DNS server) once both accept.
func runServer(ctx context.Context, a *app, listening func(httpAddr, dnsAddr string)) error {
	cfg, db, kr, log := a.cfg, a.db, a.kr, a.log
	cfg.Metrics = newMetrics(db, log) // metrics.go
	budgetCAs := budgetCAs(cfg)       // acme.go
	cfg.Metrics.WatchBudgets(func(ctx context.Context) ([]cabudget.State, error) {
		return cabudget.Overview(ctx, db, budgetCAs)
	}, time.Now, log)
	stopMetrics, err := serveMetrics(cfg, log)
	if err != nil {
		return err
	}
	defer stopMetrics()

	// A single SQLite node counts in memory; PostgreSQL nodes share the
	// count so the limit holds for the whole cluster.
	var limiter dcvaas.RateLimiter = ratelimit.NewMemory()
	if cfg.Dialect == sqlstore.Postgres {
		limiter = db
	}
	ready, err := readiness(db) // store.go
	if err != nil {
		return err
	}
	// From SIGTERM on, /readyz says 503 while requests are still served,
	// so that a load balancer stops sending new ones before the listener
	// closes (DCVAAS_SHUTDOWN_DRAIN).
	var draining atomic.Bool
	checkReady := ready
	ready = func(ctx context.Context) error {
		if draining.Load() {
			return errors.New("shutting down")
		}
		return checkReady(ctx)
	}
	// One connection service for the API and for the jobs that retry its
	// one-click setup when a provider is down.
	// Failed authentications and denied key reads, in aggregate: flushed
	// after each minute and at shutdown (after the last request).
	audit := secaudit.New(db, time.Now, log)
	audit.Start()
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := audit.Stop(sctx); err != nil {
			log.Warn("security audit not written at shutdown", "err", err)
		}
	}()
	conns := newConnections(cfg, db, kr, log)                                              // connections.go
	webhooks := newWebhooks(cfg, db, kr)                                                   // webhooks.go: one service for the API and the dashboard
	sessions, dashboard := newDashboard(cfg, db, kr, conns, limiter, audit, webhooks, log) // dashboard.go
	// The hub stops with the process's context; the SSE streams it feeds
	// end with their requests, before the server's shutdown completes.
	hubCtx, stopHub := context.WithCancel(context.WithoutCancel(ctx))
	hub, hubDone := startHub(hubCtx, db, log) // events.go
	defer hubDone()
	defer stopHub()
	handler := httpapi.NewServer(httpapi.Deps{
		Events:    db,
		Hub:       hub,
		Store:     db,
		Limiter:   limiter,
		RateLimit: cfg.RateLimit,
		// hardening.go
		UserRateLimit:  cfg.Hardening.UserRateLimit,
		IPRateLimit:    cfg.Hardening.IPRateLimit,
		TrustedProxies: cfg.Hardening.TrustedProxies,
		SecurityAudit:  audit,
		StoreTimeout:   cfg.Hardening.DBTimeout,
		Unavailable:    sqlstore.IsUnavailable,
		VerifyZone:     cfg.VerifyZone,
		AllowTLDs:      cfg.AllowTLDs,
		CORSOrigins:    cfg.CORSOrigins,
		HardDelete:     cfg.HardDelete,
		Clock:          time.Now,
		Logger:         log,
		Ready:          ready,
		Connections:    conns,
		Keyring:        kr,
		Metrics:        metricsOnAPI(cfg),
		Sessions:       sessions,
		UI:             dashboard,
		Budgets:        db,
		BudgetCAs:      budgetCAs,
		Webhooks:       webhooks,
	})
	srv := &http.Server{
		Handler:           instrument(cfg, handler),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	// Open SSE streams would hold Shutdown until its deadline: stopping
	// the hub ends them.
	srv.RegisterOnShutdown(stopHub)
	issuer, err := newIssuer(cfg, db, kr, log) // acme.go
	if err != nil {
		return err
	}
	dnsSrv, err := startDNS(cfg, db, kr, log) // acme.go; nil unless the built-in publisher
	if err != nil {
		return err
	}
	// Deferred, so it stops after the jobs, which may still be validating.
	defer stopDNS(dnsSrv, cfg.ShutdownTimeout, log)
	if dnsSrv != nil && cfg.Metrics != nil {
		cfg.Metrics.WatchDNSRateLimit(dnsSrv.Limited)
	}
	engine, err := newEngine(cfg, db, log, issuer, conns, kr) // jobs.go
	if err != nil {
		return err
	}
	// The HTTP address is bound before the engine starts: a second process
	// configured like this one fails here, before it could take back jobs
	// that belong to the live one (Config.nodeID).
	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return bindError("DCVAAS_HTTP_ADDR", err)
	}
	if err := engine.Start(ctx); err != nil {
		ln.Close()
		return err
	}
	log.Info("http listening", "addr", ln.Addr().String(), "database", string(cfg.Dialect), "version", dcvaas.Version)
	if listening != nil {
		dnsAddr := ""
		if dnsSrv != nil {
			dnsAddr = dnsSrv.Addr()
		}
		listening(ln.Addr().String(), dnsAddr)
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()

	select {
	case err := <-errc:
		engine.Stop(context.WithoutCancel(ctx))
		return err
	case <-ctx.Done():
	}
	draining.Store(true)
	if cfg.ShutdownDrain > 0 {
		log.Info("draining: /readyz answers 503 while requests are still served", "drain", cfg.ShutdownDrain.String())
		select {
		case <-time.After(cfg.ShutdownDrain):
		case err := <-errc:
			engine.Stop(context.WithoutCancel(ctx))
			return err
		}
	}
	log.Info("shutting down", "timeout", cfg.ShutdownTimeout.String())
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		engine.Stop(sctx)
		return err
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	// No request can queue a job any more: let running jobs finish within
	// what is left of the shutdown timeout; the rest wait for the next start.
	if err := engine.Stop(sctx); err != nil {
		return err
	}
	log.Info("stopped")
	return nil
}

// bindError names the setting whose address could not be bound, once,
// before the system's own words (which name the address).
func bindError(env string, err error) error {
	var op *net.OpError
	if errors.As(err, &op) {
		err = op
	}
	return fmt.Errorf("%s: %w", env, err)
}
