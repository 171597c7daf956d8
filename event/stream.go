package event

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/dcvaas/dcvaas"
)

// DefaultHeartbeat is how often an idle stream sends a comment line, well
// under the 15 s the API promises, so proxies and clients see it is alive.
const DefaultHeartbeat = 10 * time.Second

// StreamOptions say what one SSE stream sends.
type StreamOptions struct {
	OrgID string
	// Filter selects events by Types and DomainID.
	Filter dcvaas.EventFilter
	// Resume is the Last-Event-ID the client sent: events after it are
	// sent first, from the store. Nil: only events committed from now on.
	Resume *dcvaas.Cursor
	// Heartbeat is the idle interval (DefaultHeartbeat when 0).
	Heartbeat time.Duration
	// Allow, when set, keeps only the events it allows (a scoped delivery
	// token sees the events of its domains only); the others are skipped.
	Allow func(*dcvaas.Event) bool
}

// Stream writes the organization's events to w as Server-Sent Events until
// ctx ends or a write fails:
//
//	id: <cursor>
//	event: <type>
//	data: <the event's JSON envelope>
//
// and a ": heartbeat" comment when nothing was sent for a Heartbeat. flush
// pushes what was written to the client. Events are sent in cursor order,
// each once: after a catch-up from the store, live events from the hub
// that the catch-up already sent are skipped; a subscriber the hub dropped
// for being slow catches up from the store again.
func Stream(ctx context.Context, w io.Writer, flush func() error, hub *Hub, src Source, o StreamOptions) error {
	hb := o.Heartbeat
	if hb <= 0 {
		hb = DefaultHeartbeat
	}
	var cursor dcvaas.Cursor
	resume := o.Resume != nil
	if resume {
		cursor = *o.Resume
	}
	// Subscribed before the stream is announced open: a client that acts
	// on the announcement (creates a domain, expects its event) must not
	// find its event fall between the two.
	sub, from, err := hub.Subscribe(ctx, o.OrgID, o.Filter)
	if err != nil {
		return err
	}
	// A first comment tells the client the stream is open.
	if _, err := io.WriteString(w, ": stream open\n\n"); err != nil {
		sub.Close()
		return err
	}
	if err := flush(); err != nil {
		sub.Close()
		return err
	}
	if ctx.Err() != nil {
		sub.Close()
		return nil
	}
	for first := true; ctx.Err() == nil; first = false {
		if !first {
			if sub, from, err = hub.Subscribe(ctx, o.OrgID, o.Filter); err != nil {
				return err
			}
		}
		if !resume {
			cursor, resume = from, true
		}
		cursor, err = catchUp(ctx, w, src, o, cursor)
		if err == nil {
			err = flush()
		}
		if err == nil {
			cursor, err = live(ctx, w, flush, sub, cursor, hb, o.Allow)
		}
		sub.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

// catchUp sends the stored events after cursor and returns the last sent.
func catchUp(ctx context.Context, w io.Writer, src Source, o StreamOptions, cursor dcvaas.Cursor) (dcvaas.Cursor, error) {
	for {
		f := o.Filter
		f.After, f.Limit = cursor, pollBatch
		es, err := src.ListEvents(ctx, o.OrgID, f)
		if err != nil {
			return cursor, err
		}
		for _, e := range es {
			if o.Allow == nil || o.Allow(e) {
				if err := writeEvent(w, e); err != nil {
					return cursor, err
				}
			}
			cursor = e.Cursor
		}
		if len(es) < pollBatch {
			return cursor, nil
		}
	}
}

// live sends the hub's events until ctx ends (nil error), the hub drops
// the subscription (nil error: the caller catches up), or a write fails.
func live(ctx context.Context, w io.Writer, flush func() error, sub *Subscription, cursor dcvaas.Cursor, hb time.Duration, allow func(*dcvaas.Event) bool) (dcvaas.Cursor, error) {
	t := time.NewTimer(hb)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return cursor, nil
		case <-t.C:
			if _, err := io.WriteString(w, ": heartbeat\n\n"); err != nil {
				return cursor, err
			}
		case e, ok := <-sub.C:
			if !ok {
				return cursor, nil
			}
			if !e.Cursor.After(cursor) {
				continue // sent by the catch-up already
			}
			if allow != nil && !allow(e) {
				cursor = e.Cursor
				continue
			}
			if err := writeEvent(w, e); err != nil {
				return cursor, err
			}
			cursor = e.Cursor
		}
		if err := flush(); err != nil {
			return cursor, err
		}
		t.Reset(hb)
	}
}

// writeEvent writes one SSE message. The JSON envelope has no newline, so
// it fits one data line.
func writeEvent(w io.Writer, e *dcvaas.Event) error {
	body, err := json.Marshal(e.Envelope())
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "id: %s\nevent: %s\ndata: %s\n\n", e.Cursor, e.Type, body)
	return err
}
