package dnsserver

import (
	"strconv"
	"sync"

	"github.com/miekg/dns"
)

// counters counts answered queries by response code: the numbers an
// operator watches (a rise in SERVFAIL means the database is unwell, in
// REFUSED that someone sends us queries for other zones).
type counters struct {
	mu sync.Mutex
	n  map[int]uint64
}

func (c *counters) add(rcode int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == nil {
		c.n = make(map[int]uint64)
	}
	c.n[rcode]++
}

// Counts returns how many queries were answered with each response code,
// keyed by its name ("NOERROR", "NXDOMAIN", "REFUSED", "SERVFAIL", …).
func (s *Server) Counts() map[string]uint64 {
	s.counts.mu.Lock()
	defer s.counts.mu.Unlock()
	out := make(map[string]uint64, len(s.counts.n))
	for rc, n := range s.counts.n {
		name, ok := dns.RcodeToString[rc]
		if !ok {
			name = "RCODE" + strconv.Itoa(rc)
		}
		out[name] += n
	}
	return out
}
