package event_test

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dcvaas/dcvaas"
	"github.com/dcvaas/dcvaas/event"
	"github.com/dcvaas/dcvaas/sqlstore"
	"github.com/dcvaas/dcvaas/sqlstore/storetest"
)

// TestCrossNode: events committed through one node reach a subscriber of
// another node's hub (two stores on one database) within a second, in
// order, each once. The latencies are logged: run with -v to read them
// (docs/benchmarks.md, "Event stream").
func TestCrossNode(t *testing.T) {
	for _, dialect := range storetest.Dialects(t) {
		t.Run(string(dialect), func(t *testing.T) {
			url := storetest.URL(t, dialect)
			writer := storetest.Open(t, url)
			reader := storetest.Open(t, url)
			ctx := context.Background()
			tok := &dcvaas.Token{Name: "t", Hash: "h", Role: dcvaas.TokenAdmin}
			org, _, err := writer.Bootstrap(ctx, "Acme", "owner@acme.example.com", tok)
			if err != nil {
				t.Fatal(err)
			}
			hub := event.NewHub(reader, 0, nil)
			hctx, stop := context.WithCancel(ctx)
			defer stop()
			go hub.Run(hctx)
			sub, _, err := hub.Subscribe(ctx, org.ID, dcvaas.EventFilter{})
			if err != nil {
				t.Fatal(err)
			}
			defer sub.Close()
			const n = 40
			var lat []time.Duration
			for i := range n {
				d := &dcvaas.Domain{Name: fmt.Sprintf("n%d.example.com", i), CNAMETarget: fmt.Sprintf("t%d.verify.example.net", i), KeyType: dcvaas.KeyEC256}
				if _, err := writer.CreateDomain(ctx, dcvaas.Actor{OrgID: org.ID}, d); err != nil {
					t.Fatal(err)
				}
				committed := time.Now()
				select {
				case e := <-sub.C:
					lat = append(lat, time.Since(committed))
					if e.DomainID != d.ID || e.Type != dcvaas.EventDomainCreated {
						t.Fatalf("event %d: %+v", i, e)
					}
				case <-time.After(5 * time.Second):
					t.Fatalf("event %d not received within 5s", i)
				}
			}
			slices.Sort(lat)
			p50, p95, worst := lat[n/2], lat[n*95/100], lat[n-1]
			t.Logf("%s cross-node latency over %d events: p50 %s, p95 %s, max %s (poll %s)", dialect, n, p50, p95, worst, event.DefaultPollInterval)
			// The goal is 1 s. On PostgreSQL an event also waits for every
			// older writing transaction on the server to end (see
			// sqlstore/events.go), and the shared 2-core test machine
			// stalls processes for hundreds of milliseconds under load:
			// the bound is on the 95th percentile, and every receipt
			// above is within 5 s.
			if p95 > time.Second {
				t.Fatalf("p95 latency %s to reach the other node, goal ≤ 1s", p95)
			}
		})
	}
}

// syncBuffer is a concurrency-safe writer for Stream's output.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// TestStreamSlowSubscriber: a stream the hub dropped for falling behind
// catches up from the store and still sends every event once, in order.
func TestStreamSlowSubscriber(t *testing.T) {
	db := storetest.NewDB(t, sqlstore.SQLite)
	ctx := context.Background()
	tok := &dcvaas.Token{Name: "t", Hash: "h", Role: dcvaas.TokenAdmin}
	org, _, err := db.Bootstrap(ctx, "Acme", "owner@acme.example.com", tok)
	if err != nil {
		t.Fatal(err)
	}
	hub := event.NewHub(db, 5*time.Millisecond, nil)
	hctx, stop := context.WithCancel(ctx)
	defer stop()
	go hub.Run(hctx)
	var out syncBuffer
	// flush blocks a while: the subscriber is slow.
	slow := func() error { time.Sleep(2 * time.Millisecond); return nil }
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	zero := dcvaas.Cursor{}
	go func() {
		done <- event.Stream(sctx, &out, slow, hub, db, event.StreamOptions{OrgID: org.ID, Resume: &zero, Heartbeat: time.Hour})
	}()
	const n = 600
	for i := range n {
		d := &dcvaas.Domain{Name: fmt.Sprintf("s%d.example.com", i), CNAMETarget: fmt.Sprintf("s%d.verify.example.net", i), KeyType: dcvaas.KeyEC256}
		if _, err := db.CreateDomain(ctx, dcvaas.Actor{OrgID: org.ID}, d); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for strings.Count(out.String(), "event: domain.created") < n && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	var ids []string
	for line := range strings.SplitSeq(out.String(), "\n") {
		if id, ok := strings.CutPrefix(line, "id: "); ok {
			ids = append(ids, id)
		}
	}
	if len(ids) != n {
		t.Fatalf("%d events sent, want %d", len(ids), n)
	}
	for i, id := range ids {
		if want := fmt.Sprintf("0-%d", i+1); id != want {
			t.Fatalf("event %d has id %s, want %s", i, id, want)
		}
	}
}
