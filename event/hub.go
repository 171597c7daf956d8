// Package event carries the event outbox to live consumers: a Hub that
// reads newly committed events once per node and fans them out to every
// subscriber (the SSE streams of /api/events/stream), and Stream, which
// writes one organization's events as Server-Sent Events, catching up from
// the store first so a consumer that resumes with Last-Event-ID misses
// nothing.
//
// The outbox table is the only source: events committed by any node of a
// cluster reach every node's hub at its next poll. Polling was chosen over
// PostgreSQL LISTEN/NOTIFY because it works the same on SQLite, needs no
// extra connection per node, and meets the 1 s goal with one indexed query
// per PollInterval while anyone is subscribed (measured in hub_test.go).
package event

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/dcvaas/dcvaas"
)

// Source is what the hub reads: the store's outbox.
type Source interface {
	EventsSince(ctx context.Context, c dcvaas.Cursor, limit int) ([]*dcvaas.Event, error)
	LastEventCursor(ctx context.Context) (dcvaas.Cursor, error)
	ListEvents(ctx context.Context, orgID string, f dcvaas.EventFilter) ([]*dcvaas.Event, error)
}

// DefaultPollInterval is how often the hub reads new events while anyone
// is subscribed.
const DefaultPollInterval = 100 * time.Millisecond

// subBuffer is how many events a subscriber may fall behind before the hub
// drops it; its stream then catches up from the store instead.
const subBuffer = 256

// pollBatch bounds one read of the outbox.
const pollBatch = 500

// Hub fans newly committed events out to subscribers. The zero value is
// not usable; call NewHub and run Run.
type Hub struct {
	src      Source
	interval time.Duration
	log      *slog.Logger

	mu   sync.Mutex
	subs map[*Subscription]struct{}
	// cursor is the last event handed out; valid only while subs is not
	// empty (it is read afresh when the first subscriber arrives).
	cursor dcvaas.Cursor
	wake   chan struct{}
	// stopped: Run has returned; new subscriptions are refused.
	stopped bool
}

// ErrStopped is Subscribe's answer once the hub has stopped (the node is
// shutting down): streams end instead of waiting for events.
var ErrStopped = errors.New("event hub stopped")

// NewHub returns a hub reading src every interval (DefaultPollInterval when 0).
func NewHub(src Source, interval time.Duration, log *slog.Logger) *Hub {
	if interval <= 0 {
		interval = DefaultPollInterval
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Hub{src: src, interval: interval, log: log, subs: map[*Subscription]struct{}{}, wake: make(chan struct{}, 1)}
}

// Subscription receives the events of one organization that match its
// filter, in order. C is closed when the subscriber fell too far behind
// (or the hub stopped): the consumer then reads on from the store.
type Subscription struct {
	C      <-chan *dcvaas.Event
	c      chan *dcvaas.Event
	orgID  string
	filter dcvaas.EventFilter
	hub    *Hub
	closed bool
}

// Subscribe starts delivering orgID's events matching f (Types and
// DomainID; After and Limit are ignored) that commit from now on. Every
// event after the returned cursor reaches the subscription, so a consumer
// that has read the store up to at least that cursor misses nothing.
func (h *Hub) Subscribe(ctx context.Context, orgID string, f dcvaas.EventFilter) (*Subscription, dcvaas.Cursor, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.stopped {
		return nil, dcvaas.Cursor{}, ErrStopped
	}
	if len(h.subs) == 0 {
		c, err := h.src.LastEventCursor(ctx)
		if err != nil {
			return nil, dcvaas.Cursor{}, err
		}
		h.cursor = c
	}
	ch := make(chan *dcvaas.Event, subBuffer)
	s := &Subscription{C: ch, c: ch, orgID: orgID, filter: f, hub: h}
	h.subs[s] = struct{}{}
	select {
	case h.wake <- struct{}{}:
	default:
	}
	return s, h.cursor, nil
}

// Close ends the subscription.
func (s *Subscription) Close() {
	s.hub.mu.Lock()
	defer s.hub.mu.Unlock()
	s.hub.drop(s)
}

// drop removes s; h.mu is held.
func (h *Hub) drop(s *Subscription) {
	if !s.closed {
		s.closed = true
		close(s.c)
		delete(h.subs, s)
	}
}

func (s *Subscription) matches(e *dcvaas.Event) bool {
	return e.OrgID == s.orgID && (s.filter.DomainID == "" || e.DomainID == s.filter.DomainID) &&
		dcvaas.EventTypeMatch(s.filter.Types, e.Type)
}

// Run polls the outbox until ctx ends, then closes every subscription.
func (h *Hub) Run(ctx context.Context) {
	t := time.NewTicker(h.interval)
	defer t.Stop()
	defer func() {
		h.mu.Lock()
		h.stopped = true
		for s := range h.subs {
			h.drop(s)
		}
		h.mu.Unlock()
	}()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-h.wake: // a first subscriber: read at once
		}
		if err := h.poll(ctx); err != nil && ctx.Err() == nil {
			h.log.WarnContext(ctx, "event hub: reading new events failed", "err", err)
		}
	}
}

// poll hands out every event committed since the last poll.
func (h *Hub) poll(ctx context.Context) error {
	for {
		h.mu.Lock()
		idle, from := len(h.subs) == 0, h.cursor
		h.mu.Unlock()
		if idle {
			return nil
		}
		es, err := h.src.EventsSince(ctx, from, pollBatch)
		if err != nil || len(es) == 0 {
			return err
		}
		h.mu.Lock()
		if h.cursor != from {
			// The last subscriber left and a new one re-read the cursor
			// meanwhile: this batch may be stale; read again.
			h.mu.Unlock()
			continue
		}
		for _, e := range es {
			for s := range h.subs {
				if !s.matches(e) {
					continue
				}
				select {
				case s.c <- e:
				default:
					h.drop(s) // too slow: it catches up from the store
				}
			}
		}
		h.cursor = es[len(es)-1].Cursor
		h.mu.Unlock()
		if len(es) < pollBatch {
			return nil
		}
	}
}
