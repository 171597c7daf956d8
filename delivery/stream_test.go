package delivery

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeStream serves /api/events/stream as the API does: an opening
// comment, then the events pushed into send; closing ends the connection.
type fakeStream struct {
	send     chan string // an event id; "close" ends the connection
	down     atomic.Bool // answer 503 instead of a stream
	mu       sync.Mutex
	lastIDs  []string // Last-Event-ID of each connection
	tokens   []string
	connects atomic.Int32
}

func (f *fakeStream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/api/events/stream" {
		http.NotFound(w, r)
		return
	}
	if f.down.Load() {
		http.Error(w, "down", http.StatusServiceUnavailable)
		return
	}
	f.mu.Lock()
	f.lastIDs = append(f.lastIDs, r.Header.Get("Last-Event-ID"))
	f.tokens = append(f.tokens, r.Header.Get("Authorization")+" "+r.URL.Query().Get("type"))
	f.mu.Unlock()
	f.connects.Add(1)
	w.Header().Set("Content-Type", "text/event-stream")
	w.WriteHeader(http.StatusOK)
	fmt.Fprint(w, ": stream open\n\n")
	w.(http.Flusher).Flush()
	for {
		select {
		case <-r.Context().Done():
			return
		case id := <-f.send:
			if id == "close" {
				return
			}
			fmt.Fprintf(w, "id: %s\nevent: certificate.renewed\ndata: {\"id\":\"e\"}\n\n", id)
			w.(http.Flusher).Flush()
		}
	}
}

// waitFor runs Wait and reports how long it took.
func waitFor(t *testing.T, tr *StreamTrigger, limit time.Duration) time.Duration {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	start := time.Now()
	if err := tr.Wait(ctx, false); err != nil {
		t.Fatalf("Wait: %v after %s", err, time.Since(start))
	}
	return time.Since(start)
}

func TestStreamTriggerEventsAndFallback(t *testing.T) {
	f := &fakeStream{send: make(chan string)}
	srv := httptest.NewServer(f)
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	tr := &StreamTrigger{APIURL: srv.URL, Token: "tok", Poll: PollTrigger{Interval: time.Hour},
		Debounce: 20 * time.Millisecond, Retry: 20 * time.Millisecond, MaxRetry: 50 * time.Millisecond}
	tr.Start(ctx)

	// Connecting says "a pass now" (what happened before is not replayed).
	waitFor(t, tr, 5*time.Second)
	if !tr.Connected() {
		t.Fatal("not connected after the first signal")
	}
	// An event ends the wait at once, though the poll is an hour away.
	go func() { time.Sleep(50 * time.Millisecond); f.send <- "0-7" }()
	if d := waitFor(t, tr, 5*time.Second); d > 2*time.Second {
		t.Fatalf("event took %s to end the wait", d)
	}
	// A burst makes one pass.
	go func() {
		f.send <- "0-8"
		f.send <- "0-9"
	}()
	waitFor(t, tr, 5*time.Second)
	ctx2, cancel2 := context.WithTimeout(context.Background(), 200*time.Millisecond)
	if err := tr.Wait(ctx2, false); err == nil {
		t.Fatal("a burst of two events made two passes")
	}
	cancel2()

	// The connection drops: the agent reconnects resuming after the last
	// event it saw, and the reconnection is a signal of its own.
	f.send <- "close"
	waitFor(t, tr, 5*time.Second)
	f.mu.Lock()
	ids := append([]string{}, f.lastIDs...)
	tok := f.tokens[0]
	f.mu.Unlock()
	if len(ids) != 2 || ids[0] != "" || ids[1] != "0-9" {
		t.Fatalf("Last-Event-ID per connection = %q", ids)
	}
	if tok != "Bearer tok certificate.*,domain.*" {
		t.Fatalf("stream request = %q", tok)
	}

	// The stream is down: passes fall back to the poll interval.
	f.down.Store(true)
	f.send <- "close"
	for tr.Connected() {
		time.Sleep(5 * time.Millisecond)
	}
	// Drain the signal of the reconnection, if any got through.
	waitCtx, c := context.WithTimeout(context.Background(), 100*time.Millisecond)
	tr.Wait(waitCtx, false)
	c()
	tr.Poll = PollTrigger{Interval: 150 * time.Millisecond}
	if d := waitFor(t, tr, 5*time.Second); d < 100*time.Millisecond || d > 2*time.Second {
		t.Fatalf("fallback poll after %s, want about 150ms", d)
	}
	// And when it is back, it is followed again.
	f.down.Store(false)
	deadline := time.Now().Add(5 * time.Second)
	for !tr.Connected() {
		if time.Now().After(deadline) {
			t.Fatal("did not reconnect")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
