package main

import (
	"context"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestShutdownDrain: after the stop signal, /readyz answers 503 while the
// API still answers, for DCVAAS_SHUTDOWN_DRAIN; then serve stops cleanly.
// A load balancer polling /readyz so takes the node out before its
// listener closes, and a rolling restart fails no request.
func TestShutdownDrain(t *testing.T) {
	vars := withTestDefaults(map[string]string{
		"DCVAAS_DATABASE_URL":   filepath.Join(t.TempDir(), "dcvaas.db"),
		"DCVAAS_ENCRYPTION_KEY": strings.Repeat("cd", 32),
		"DCVAAS_SHUTDOWN_DRAIN": "1500ms",
	})
	addrc := make(chan string, 1)
	onListen = func(addr string) { addrc <- addr }
	t.Cleanup(func() { onListen = nil })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	logs := &syncBuffer{}
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"serve", "--http-addr", "127.0.0.1:0"}, env(vars), io.Discard, logs) }()
	var base string
	select {
	case addr := <-addrc:
		base = "http://" + addr
	case err := <-done:
		t.Fatalf("serve exited: %v\n%s", err, logs.String())
	case <-time.After(30 * time.Second):
		t.Fatalf("serve did not start\n%s", logs.String())
	}
	status := func(path string) int {
		t.Helper()
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if s := status("/readyz"); s != http.StatusOK {
		t.Fatalf("readyz before the stop: %d", s)
	}
	stopped := time.Now()
	cancel()
	// Within the drain: unready, yet serving.
	deadline := time.Now().Add(time.Second)
	for status("/readyz") != http.StatusServiceUnavailable {
		if time.Now().After(deadline) {
			t.Fatal("readyz still 200 after the stop signal")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if s := status("/healthz"); s != http.StatusOK {
		t.Fatalf("healthz during the drain: %d", s)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("serve: %v\n%s", err, logs.String())
		}
		if d := time.Since(stopped); d < 1500*time.Millisecond {
			t.Fatalf("serve stopped %s after the signal, before the 1.5s drain", d)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("serve did not stop\n%s", logs.String())
	}
	if _, err := http.Get(base + "/healthz"); err == nil {
		t.Fatal("the listener is still open after serve returned")
	}
}
