package main

import (
	"context"
	"errors"
	"flag"
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

// onListen, when set (by tests), learns the HTTP address once it accepts.
var onListen func(addr string)

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
	if _, err := keyring(cfg, log); err != nil {
		return err
	}

	// A single SQLite node counts in memory; PostgreSQL nodes share the
	// count so the limit holds for the whole cluster.
	var limiter dcvaas.RateLimiter = ratelimit.NewMemory()
	if cfg.Dialect == sqlstore.Postgres {
		limiter = db
	}
	handler := httpapi.NewServer(httpapi.Deps{
		Store:       db,
		Limiter:     limiter,
		RateLimit:   cfg.RateLimit,
		VerifyZone:  cfg.VerifyZone,
		CORSOrigins: cfg.CORSOrigins,
		HardDelete:  cfg.HardDelete,
		Clock:       time.Now,
		Logger:      log,
		Ready:       db.Ping,
	})
	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
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
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down", "timeout", cfg.ShutdownTimeout.String())
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return err
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	log.Info("stopped")
	return nil
}
