package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"
)

// healthcheck is `dcvaas healthcheck`: it asks the local serve's /readyz and
// exits non-zero unless it answers 200 within the timeout. Container images
// without a shell or curl (ours is distroless) run it as their HEALTHCHECK.
func healthcheck(ctx context.Context, fs *flag.FlagSet, args []string, getenv func(string) string, stdout io.Writer) error {
	timeout := fs.Duration("timeout", 3*time.Second, "how long to wait for the answer")
	cfg, err := parseConfig(fs, args, getenv)
	if err != nil {
		return err
	}
	host, port, _ := net.SplitHostPort(cfg.HTTPAddr)
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1" // serve listens on every address; ask loopback
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	url := "http://" + net.JoinHostPort(host, port) + "/readyz"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("healthcheck: %s answered %s", url, resp.Status)
	}
	fmt.Fprintln(stdout, "ready")
	return nil
}
