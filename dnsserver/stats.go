package dnsserver

import (
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/miekg/dns"
)

// counters counts answered queries by response code: the numbers an
// operator watches (a rise in SERVFAIL means the database is unwell, in
// REFUSED that someone sends us queries for other zones). The common codes
// are atomics, so that counting is not where concurrent queries queue.
type counters struct {
	common [24]atomic.Uint64 // rcodes 0..23 (BADVERS is 16)
	mu     sync.Mutex
	rare   map[int]uint64
}

func (c *counters) add(rcode int) {
	if rcode >= 0 && rcode < len(c.common) {
		c.common[rcode].Add(1)
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.rare == nil {
		c.rare = make(map[int]uint64)
	}
	c.rare[rcode]++
}

// Counts returns how many queries were answered with each response code,
// keyed by its name ("NOERROR", "NXDOMAIN", "REFUSED", "SERVFAIL", …).
// Responses dropped or truncated by rate limiting are not among them (see
// Limited).
func (s *Server) Counts() map[string]uint64 {
	out := map[string]uint64{}
	name := func(rc int) string {
		if rc == dns.RcodeBadVers {
			// 16 is BADSIG only in TSIG records; in a response's OPT,
			// where this server puts it, it is BADVERS.
			return "BADVERS"
		}
		if n, ok := dns.RcodeToString[rc]; ok {
			return n
		}
		return "RCODE" + strconv.Itoa(rc)
	}
	for rc := range s.counts.common {
		if n := s.counts.common[rc].Load(); n > 0 {
			out[name(rc)] += n
		}
	}
	s.counts.mu.Lock()
	defer s.counts.mu.Unlock()
	for rc, n := range s.counts.rare {
		out[name(rc)] += n
	}
	return out
}

type limitedCounts struct{ dropped, truncated atomic.Uint64 }

// Limited returns how many UDP responses rate limiting dropped and how
// many it sent truncated (empty, TC set) instead.
func (s *Server) Limited() (dropped, truncated uint64) {
	return s.limited.dropped.Load(), s.limited.truncated.Load()
}

// TCPConns is the number of TCP connections open now.
func (s *Server) TCPConns() int {
	s.mu.Lock()
	l := s.tcp
	s.mu.Unlock()
	if l == nil {
		return 0
	}
	return l.open()
}
