package dnsserver

import (
	"context"
	"strings"
	"sync/atomic"
	"time"
)

// zone is this node's copy of the verify zone's records: every published
// challenge value, kept current by the store (Store.FollowChallenges). The
// server answers every query from it, so a flood of queries, for real
// names or random ones, never reaches the database.
//
// The copy is trusted only while the store keeps confirming it: a copy
// not confirmed for longer than the SOA minimum may lack a value written
// since, and a resolver would cache the false NXDOMAIN. Such a node answers
// SERVFAIL instead, which resolvers retry elsewhere (RFC 2308 §7.1).
type zone struct {
	records   atomic.Pointer[map[string][][]string] // name (lowercase, no trailing dot) → TXT strings
	confirmed atomic.Int64                          // unix nanoseconds; 0: never
	loaded    chan struct{}                         // closed at the first confirmation
	loadedSet atomic.Bool
}

func newZone() *zone { return &zone{loaded: make(chan struct{})} }

// set replaces the copy; values are split into TXT strings once here
// rather than on every answer.
func (z *zone) set(records map[string][]string) {
	m := make(map[string][][]string, len(records))
	for name, values := range records {
		split := make([][]string, len(values))
		for i, v := range values {
			split[i] = splitTXT(v)
		}
		m[name] = split
	}
	z.records.Store(&m)
}

// confirm notes that the copy held every change committed before t.
func (z *zone) confirm(t time.Time) {
	n := t.UnixNano()
	for {
		old := z.confirmed.Load()
		if n <= old || z.confirmed.CompareAndSwap(old, n) {
			break
		}
	}
	if z.records.Load() != nil && z.loadedSet.CompareAndSwap(false, true) {
		close(z.loaded)
	}
}

// lookup returns the TXT values at name (a lowercase FQDN) and whether the
// copy can be trusted to say so at now.
func (z *zone) lookup(name string, now time.Time, maxAge time.Duration) (values [][]string, fresh bool) {
	c := z.confirmed.Load()
	m := z.records.Load()
	if c == 0 || m == nil || now.Sub(time.Unix(0, c)) > maxAge {
		return nil, false
	}
	return (*m)[strings.TrimSuffix(name, ".")], true
}

// follow keeps the copy current until ctx ends.
func (z *zone) follow(ctx context.Context, store Store, s *Server) {
	for ctx.Err() == nil {
		if err := store.FollowChallenges(ctx, z.set, z.confirm); err != nil && ctx.Err() == nil {
			s.log.Warn("dns zone feed failed", "err", err)
		}
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}
