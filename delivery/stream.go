package delivery

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// StreamTrigger follows the API's event stream (GET /api/events/stream,
// Server-Sent Events) and says a pass is due as soon as a certificate or
// domain event arrives, so that a renewal reaches disk within seconds. The
// poller stays underneath: while the stream is down (an older API, a proxy
// that buffers, an outage) passes run on its schedule, with ETags making an
// unchanged certificate cost a 304; while the stream is up the poll is a
// safety net.
type StreamTrigger struct {
	APIURL string
	Token  string
	// Client must have no overall timeout: the stream is endless.
	Client *http.Client
	Poll   PollTrigger
	Logger *slog.Logger
	// Debounce gathers a burst of events (a batch of renewals) into one
	// pass; 250ms when zero.
	Debounce time.Duration
	// Retry is the first delay before reconnecting (1s when zero); it
	// doubles up to MaxRetry (30s when zero) while the stream stays down.
	Retry, MaxRetry time.Duration
	// Idle is how long a silent stream is trusted: the server sends a
	// heartbeat at least every 15 s. 45s when zero.
	Idle time.Duration

	once sync.Once
	kick chan struct{}
	up   atomic.Bool
}

// streamTypes are the events that can change what the agent writes.
const streamTypes = "certificate.*,domain.*"

// Connected reports whether the stream is being followed now.
func (s *StreamTrigger) Connected() bool { return s.up.Load() }

// Start begins following the stream (once; Wait starts it too). Starting
// before the first pass means no event is missed between the two.
func (s *StreamTrigger) Start(ctx context.Context) {
	s.once.Do(func() {
		s.kick = make(chan struct{}, 1)
		if s.Logger == nil {
			s.Logger = slog.New(slog.DiscardHandler)
		}
		if s.Client == nil {
			s.Client = &http.Client{}
		}
		go s.follow(ctx)
	})
}

// Wait implements Trigger.
func (s *StreamTrigger) Wait(ctx context.Context, failed bool) error {
	s.Start(ctx)
	t := time.NewTimer(s.Poll.next(failed))
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	case <-s.kick:
	}
	// More events of the same burst join this pass.
	d := s.Debounce
	if d <= 0 {
		d = 250 * time.Millisecond
	}
	db := time.NewTimer(d)
	defer db.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-db.C:
	}
	select {
	case <-s.kick:
	default:
	}
	return nil
}

func (s *StreamTrigger) signal() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// follow keeps the stream open until ctx ends, resuming after the last
// event seen (Last-Event-ID) so that nothing sent while it was down is
// missed.
func (s *StreamTrigger) follow(ctx context.Context) {
	retry, maxRetry := s.Retry, s.MaxRetry
	if retry <= 0 {
		retry = time.Second
	}
	if maxRetry <= 0 {
		maxRetry = 30 * time.Second
	}
	delay, lastID := retry, ""
	for ctx.Err() == nil {
		err := s.stream(ctx, &lastID)
		if s.up.Swap(false) {
			delay = retry
			if ctx.Err() == nil {
				s.Logger.Warn("event stream lost: polling until it is back", "err", err, "poll", s.Poll.Interval)
			}
		} else if ctx.Err() == nil {
			s.Logger.Debug("event stream unavailable", "err", err, "retryIn", delay)
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		delay = min(2*delay, maxRetry)
	}
}

// stream reads one connection of the stream until it ends.
func (s *StreamTrigger) stream(ctx context.Context, lastID *string) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(s.APIURL, "/")+"/api/events/stream?type="+streamTypes, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+s.Token)
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("User-Agent", "dcvaas-sync")
	if *lastID != "" {
		req.Header.Set("Last-Event-ID", *lastID)
	}
	resp, err := s.Client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		return fmt.Errorf("GET /api/events/stream: %s", resp.Status)
	}
	s.up.Store(true)
	s.Logger.Info("following the event stream", "resumeAfter", *lastID)
	// Whatever happened before the stream was open and is not replayed
	// (the first connection has no Last-Event-ID; old events expire): a
	// pass now finds it, at the cost of a few 304s.
	s.signal()
	idle := s.Idle
	if idle <= 0 {
		idle = 45 * time.Second
	}
	watchdog := time.AfterFunc(idle, cancel)
	defer watchdog.Stop()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	id, data := "", false
	for sc.Scan() {
		watchdog.Reset(idle)
		line := sc.Text()
		switch {
		case line == "":
			// The end of a message (SSE: a blank line dispatches it).
			if data {
				if id != "" {
					*lastID = id
				}
				s.signal()
			}
			id, data = "", false
		case strings.HasPrefix(line, ":"):
			// A comment: the heartbeat.
		case strings.HasPrefix(line, "id:"):
			id = strings.TrimSpace(strings.TrimPrefix(line, "id:"))
		case strings.HasPrefix(line, "data:"):
			data = true
		}
	}
	if err := sc.Err(); err != nil {
		return err
	}
	if ctx.Err() != nil {
		return errors.New("the stream was silent for longer than " + idle.String())
	}
	return errors.New("the server closed the stream")
}
