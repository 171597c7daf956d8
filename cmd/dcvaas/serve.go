package main

import (
	"context"
	"errors"
	"flag"
	"github.com/dcvaas/dcvaas/cabudget"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/dcvaas/dcvaas"
	"github.com/dcvaas/dcvaas/httpapi"
	"github.com/dcvaas/dcvaas/ratelimit"
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
	log := newLogger(cfg, stderr)
	db, err := openStore(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer db.Close()
	kr, err := keyring(cfg, log)
	if err != nil {
		return err
	}
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
	// One connection service for the API and for the jobs that retry its
	// one-click setup when a provider is down.
	conns := newConnections(cfg, db, kr, log) // connections.go
	handler := httpapi.NewServer(httpapi.Deps{
		Store:       db,
		Limiter:     limiter,
		RateLimit:   cfg.RateLimit,
		VerifyZone:  cfg.VerifyZone,
		CORSOrigins: cfg.CORSOrigins,
		HardDelete:  cfg.HardDelete,
		Clock:       time.Now,
		Logger:      log,
		Ready:       ready,
		Connections: conns,
		Keyring:     kr,
		Metrics:     metricsOnAPI(cfg),
		Budgets:     db,
		BudgetCAs:   budgetCAs,
	})
	srv := &http.Server{
		Handler:           instrument(cfg, handler),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	issuer, err := newIssuer(cfg, db, kr, log) // acme.go
	if err != nil {
		return err
	}
	dnsSrv, err := startDNS(cfg, db, log) // acme.go; nil unless the built-in publisher
	if err != nil {
		return err
	}
	// Deferred, so it stops after the jobs, which may still be validating.
	defer stopDNS(dnsSrv, cfg.ShutdownTimeout, log)
	engine, err := newEngine(cfg, db, log, issuer, conns) // jobs.go
	if err != nil {
		return err
	}
	if err := engine.Start(ctx); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		engine.Stop(ctx)
		return err
	}
	log.Info("http listening", "addr", ln.Addr().String(), "database", string(cfg.Dialect), "version", dcvaas.Version)
	if onListen != nil {
		onListen(ln.Addr().String())
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()

	select {
	case err := <-errc:
		engine.Stop(context.WithoutCancel(ctx))
		return err
	case <-ctx.Done():
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
