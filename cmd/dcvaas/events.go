package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/dcvaas/dcvaas/event"
	"github.com/dcvaas/dcvaas/sqlstore"
)

// eventSettings configure the event outbox, its stream and webhooks (issue 11).
var eventSettings = []setting{
	{"event-retention", "DCVAAS_EVENT_RETENTION", "720h", "how long events are kept (GET /api/events, Last-Event-ID) before the daily job deletes them", groupJobs},
}

// eventConfig is the validated part of Config for events and webhooks.
type eventConfig struct {
	Retention time.Duration
}

func parseEvents(get func(string) string, bad func(env, format string, args ...any)) eventConfig {
	var c eventConfig
	d, err := time.ParseDuration(get("DCVAAS_EVENT_RETENTION"))
	if err != nil || d < time.Hour {
		bad("DCVAAS_EVENT_RETENTION", "want a duration of at least 1h, like 720h, got %q", get("DCVAAS_EVENT_RETENTION"))
	}
	c.Retention = d
	return c
}

// startHub runs this node's event fan-out until ctx ends; the returned
// function waits for it to stop.
func startHub(ctx context.Context, db *sqlstore.DB, log *slog.Logger) (*event.Hub, func()) {
	hub := event.NewHub(db, 0, log)
	done := make(chan struct{})
	go func() { defer close(done); hub.Run(ctx) }()
	return hub, func() { <-done }
}
