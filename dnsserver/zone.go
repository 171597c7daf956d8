package dnsserver

import (
	"context"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/dcvaas/dcvaas/dnssec"
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
	records   atomic.Pointer[map[string]*entry] // name (lowercase, no trailing dot) → its TXT RRset
	confirmed atomic.Int64                      // unix nanoseconds; 0: never
	loaded    chan struct{}                     // closed at the first confirmation
	loadedSet atomic.Bool
}

// entry is the TXT RRset at one name, with its DNSSEC signatures: an entry
// never changes, a changed RRset is a new entry, so a signature cached in
// one always covers its values.
type entry struct {
	values []string   // as stored, to tell whether a reload changed them
	txt    [][]string // values split into TXT strings
	sig    dnssec.Cache
	nsec   dnssec.Cache // the NODATA NSEC at the name
}

func newZone() *zone { return &zone{loaded: make(chan struct{})} }

// set replaces the copy; values are split into TXT strings once here
// rather than on every answer. An RRset that the reload did not change
// keeps its entry, and so its cached signatures.
func (z *zone) set(records map[string][]string) {
	var old map[string]*entry
	if p := z.records.Load(); p != nil {
		old = *p
	}
	m := make(map[string]*entry, len(records))
	for name, values := range records {
		if e := old[name]; e != nil && slices.Equal(e.values, values) {
			m[name] = e
			continue
		}
		split := make([][]string, len(values))
		for i, v := range values {
			split[i] = splitTXT(v)
		}
		m[name] = &entry{values: values, txt: split}
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

// lookup returns the TXT RRset at name (a lowercase FQDN; nil: none) and
// whether the copy can be trusted to say so at now.
func (z *zone) lookup(name string, now time.Time, maxAge time.Duration) (e *entry, fresh bool) {
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
