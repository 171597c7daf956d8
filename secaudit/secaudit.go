// Package secaudit records failed authentications and denied private-key
// reads in aggregate: counts per (action, organization, client address,
// minute) kept in memory and written as one entry each when the minute is
// over (or at shutdown), so that a flood of bad requests costs one row per
// source and minute, not one per request.
package secaudit

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/dcvaas/dcvaas"
)

// maxEntries bounds the entries kept for one flush: past it, new sources
// are counted under the source "(other)", so that a flood from many
// addresses cannot grow memory or the table without bound.
const maxEntries = 10_000

// Overflow is the source that counts what maxEntries left out.
const Overflow = "(other)"

// Recorder aggregates security audit counts.
type Recorder struct {
	store dcvaas.SecurityAuditStore
	now   func() time.Time
	log   *slog.Logger

	mu      sync.Mutex
	pending map[key]int64
	stop    chan struct{}
	done    chan struct{}
}

type key struct {
	action, orgID, source string
	minute                time.Time
}

// New returns a recorder writing to store. now and log may be nil.
func New(store dcvaas.SecurityAuditStore, now func() time.Time, log *slog.Logger) *Recorder {
	if now == nil {
		now = time.Now
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Recorder{store: store, now: now, log: log, pending: map[key]int64{}}
}

// Add counts one event of action from source (concerning orgID, "" for
// none) at the current minute.
func (r *Recorder) Add(action, orgID, source string) {
	if r == nil {
		return
	}
	k := key{action, orgID, source, r.now().UTC().Truncate(time.Minute)}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.pending[k]; !ok && len(r.pending) >= maxEntries {
		k.source = Overflow
	}
	r.pending[k]++
}

// Flush writes the entries of minutes that are over; all of them when all
// is set (shutdown). Entries that fail to be written are kept for the
// next flush.
func (r *Recorder) Flush(ctx context.Context, all bool) error {
	current := r.now().UTC().Truncate(time.Minute)
	r.mu.Lock()
	var out []dcvaas.SecurityCount
	for k, n := range r.pending {
		if all || k.minute.Before(current) {
			out = append(out, dcvaas.SecurityCount{Action: k.action, OrgID: k.orgID, Source: k.source, Minute: k.minute, Count: n})
			delete(r.pending, k)
		}
	}
	r.mu.Unlock()
	if len(out) == 0 {
		return nil
	}
	err := r.store.AddSecurityCounts(ctx, out)
	if err != nil {
		r.mu.Lock()
		for _, c := range out {
			k := key{c.Action, c.OrgID, c.Source, c.Minute}
			if _, ok := r.pending[k]; !ok && len(r.pending) >= maxEntries {
				k.source = Overflow
			}
			r.pending[k] += c.Count
		}
		r.mu.Unlock()
		return err
	}
	for _, c := range out {
		r.log.Warn("security audit", "action", c.Action, "organizationId", c.OrgID, "source", c.Source,
			"minute", c.Minute, "count", c.Count)
	}
	return nil
}

// Start flushes shortly after every minute's end until Stop.
func (r *Recorder) Start() {
	r.stop, r.done = make(chan struct{}), make(chan struct{})
	go func() {
		defer close(r.done)
		for {
			now := r.now()
			wait := now.Truncate(time.Minute).Add(time.Minute + time.Second).Sub(now)
			select {
			case <-r.stop:
				return
			case <-time.After(wait):
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			if err := r.Flush(ctx, false); err != nil {
				r.log.Warn("security audit flush failed; kept for the next minute", "err", err)
			}
			cancel()
		}
	}()
}

// Stop ends Start's loop and writes everything still counted.
func (r *Recorder) Stop(ctx context.Context) error {
	if r.stop != nil {
		close(r.stop)
		<-r.done
		r.stop = nil
	}
	return r.Flush(ctx, true)
}
