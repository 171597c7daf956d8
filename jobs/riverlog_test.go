package jobs

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
)

func TestRiverLogQuietAndCamelCase(t *testing.T) {
	var buf bytes.Buffer
	log := riverLog(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo})))
	log.Info("River client started", "client_id", "x")
	if buf.Len() != 0 {
		t.Errorf("River's info line shown at info: %s", buf.String())
	}
	log.With("queue_name", "default").Warn("River job failed", "job_id", 7)
	if out := buf.String(); !strings.Contains(out, "queueName=default") || !strings.Contains(out, "jobId=7") || !strings.Contains(out, "level=WARN") {
		t.Errorf("warning: %q", out)
	}
	buf.Reset()
	debug := riverLog(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})))
	debug.InfoContext(context.Background(), "River client started", "client_id", "x")
	if out := buf.String(); !strings.Contains(out, "level=DEBUG") || !strings.Contains(out, "clientId=x") {
		t.Errorf("at debug: %q", out)
	}
}
