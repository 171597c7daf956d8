package dnssec

import (
	"errors"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
)

// Signature validity: the inception lies an hour in the past, so that a
// validator whose clock runs behind still accepts it; the expiration a
// week ahead, so that a node that cannot reach its database keeps serving
// valid signatures for days. A cached signature is replaced once it is
// refreshAfter old, long before it expires.
const (
	inceptionSkew = time.Hour
	validity      = 7 * 24 * time.Hour
	refreshAfter  = 3 * 24 * time.Hour
)

// KeyReload is how often a node reads the keys again: a rollover waits
// for it before a new key signs.
const KeyReload = 30 * time.Second

// ErrNoKey means no key signs at the time asked: the stored schedule
// leaves a gap (it never does when made by Ensure and Rollover).
var ErrNoKey = errors.New("dnssec: no key signs now")

// Signer makes the zone's RRSIGs with the keys the schedule says sign now.
// It is safe for concurrent use; SetKeys swaps the keys under it.
type Signer struct {
	zone      string // lowercase FQDN
	dnskeyTTL uint32
	keys      atomic.Pointer[[]*Key]
	state     atomic.Pointer[state]
}

// state is what the schedule says from `from` until `until`: which keys
// are published and which sign. It is rebuilt when time crosses a
// schedule instant or the keys change.
type state struct {
	from, until time.Time // until zero: no later change
	zsk         *Key      // nil: none signs
	ksks        []*Key
	dnskeys     []dns.RR
	dnskeySigs  []*dns.RRSIG // made when the state is built
}

// NewSigner returns a signer for zone whose DNSKEY RRset has the given TTL.
func NewSigner(zone string, dnskeyTTL time.Duration, keys []*Key) *Signer {
	s := &Signer{zone: dns.Fqdn(zoneName(zone)), dnskeyTTL: uint32(dnskeyTTL / time.Second)}
	s.SetKeys(keys)
	return s
}

// SetKeys replaces the keys (a reload from the store).
func (s *Signer) SetKeys(keys []*Key) {
	s.keys.Store(&keys)
	s.state.Store(nil)
}

// Keys returns the keys last set.
func (s *Signer) Keys() []*Key { return *s.keys.Load() }

// Zone is the zone's name, lowercase with the trailing dot.
func (s *Signer) Zone() string { return s.zone }

func (s *Signer) current(now time.Time) (*state, error) {
	if st := s.state.Load(); st != nil && !now.Before(st.from) && (st.until.IsZero() || now.Before(st.until)) {
		return st, nil
	}
	keys := *s.keys.Load()
	st := &state{}
	for _, k := range keys {
		for _, t := range []time.Time{k.PublishedAt, k.ActiveAt, k.RetiredAt, k.RemovedAt} {
			if t.IsZero() {
				continue
			}
			if t.After(now) && (st.until.IsZero() || t.Before(st.until)) {
				st.until = t
			}
			if !t.After(now) && t.After(st.from) {
				st.from = t
			}
		}
		if !k.Published(now) {
			continue
		}
		rr := *k.DNSKEY
		rr.Hdr.Ttl = s.dnskeyTTL
		st.dnskeys = append(st.dnskeys, &rr)
		if !k.Signs(now) {
			continue
		}
		if k.KSK() {
			st.ksks = append(st.ksks, k)
		} else if st.zsk == nil || k.ActiveAt.After(st.zsk.ActiveAt) {
			st.zsk = k
		}
	}
	if len(st.ksks) == 0 || st.zsk == nil {
		return nil, ErrNoKey
	}
	for _, k := range st.ksks {
		sig, err := s.sign(k, st.dnskeys, now)
		if err != nil {
			return nil, err
		}
		st.dnskeySigs = append(st.dnskeySigs, sig)
	}
	s.state.Store(st)
	return st, nil
}

// DNSKEY returns the DNSKEY RRset published at now and its signatures by
// the key-signing keys.
func (s *Signer) DNSKEY(now time.Time) ([]dns.RR, []*dns.RRSIG, error) {
	st, err := s.current(now)
	if err != nil {
		return nil, nil, err
	}
	if now.Sub(inceptionTime(st.dnskeySigs[0])) > refreshAfter {
		s.state.CompareAndSwap(st, nil)
		if st, err = s.current(now); err != nil {
			return nil, nil, err
		}
	}
	return st.dnskeys, st.dnskeySigs, nil
}

func (s *Signer) sign(k *Key, rrset []dns.RR, now time.Time) (*dns.RRSIG, error) {
	sig := &dns.RRSIG{
		Algorithm:  k.DNSKEY.Algorithm,
		KeyTag:     k.Tag,
		SignerName: s.zone,
		Inception:  uint32(now.Add(-inceptionSkew).Unix()),
		Expiration: uint32(now.Add(validity).Unix()),
	}
	if err := sig.Sign(k.Signer, rrset); err != nil {
		return nil, err
	}
	return sig, nil
}

// Cache holds the signature of one RRset. Whoever owns the RRset owns its
// Cache and drops both together when the RRset changes, so a cached
// signature always covers the data it is served with. The zero value is
// empty and ready.
type Cache struct{ p atomic.Pointer[cached] }

type cached struct {
	sig       *dns.RRSIG
	refreshAt time.Time
}

// Sign returns the signature of rrset by the ZSK signing at now: the one
// in c when it was made by that key and is not yet due for refresh, else
// a new one, kept in c (c may be nil: not kept). The RRSIG is shared:
// copy it before changing it (e.g. its owner's spelling).
func (s *Signer) Sign(c *Cache, rrset []dns.RR, now time.Time) (*dns.RRSIG, error) {
	st, err := s.current(now)
	if err != nil {
		return nil, err
	}
	if c != nil {
		if e := c.p.Load(); e != nil && e.sig.KeyTag == st.zsk.Tag && now.Before(e.refreshAt) && !now.Before(inceptionTime(e.sig)) {
			return e.sig, nil
		}
	}
	sig, err := s.sign(st.zsk, rrset, now)
	if err != nil {
		return nil, err
	}
	if c != nil {
		c.p.Store(&cached{sig: sig, refreshAt: now.Add(refreshAfter)})
	}
	return sig, nil
}

// inceptionTime is the RRSIG's inception as a time (within the 32-bit
// serial window that the signer's own signatures live in).
func inceptionTime(sig *dns.RRSIG) time.Time { return time.Unix(int64(sig.Inception), 0) }

// NSEC returns the compact-denial NSEC record at owner (RFC 9824 §3): its
// next name is owner's immediate successor "\000.owner", so it covers no
// other name, and types lists what exists at owner (for a name that does
// not exist: NXNAME); RRSIG and NSEC are added. The next name is lowercase:
// RFC 6840 §5.1 keeps it out of canonical lowercasing, so a signature over
// it must not depend on the query's spelling.
func NSEC(owner string, ttl uint32, types ...uint16) *dns.NSEC {
	bitmap := append([]uint16{dns.TypeRRSIG, dns.TypeNSEC}, types...)
	slices.Sort(bitmap)
	bitmap = slices.Compact(bitmap)
	return &dns.NSEC{
		Hdr:        dns.RR_Header{Name: owner, Rrtype: dns.TypeNSEC, Class: dns.ClassINET, Ttl: ttl},
		NextDomain: `\000.` + strings.ToLower(owner),
		TypeBitMap: bitmap,
	}
}

// Caches keeps the signatures of RRsets made up per name, such as the
// NSEC records denying names that do not exist, which a flood of random
// names would otherwise grow without bound: past max names it starts
// again empty.
type Caches struct {
	mu  sync.Mutex
	m   map[string]*Cache
	max int
}

// NewCaches returns a cache set of at most max names.
func NewCaches(max int) *Caches { return &Caches{m: map[string]*Cache{}, max: max} }

// Get returns name's Cache, creating it.
func (c *Caches) Get(name string) *Cache {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.m[name]
	if e == nil {
		if len(c.m) >= c.max {
			clear(c.m)
		}
		e = &Cache{}
		c.m[name] = e
	}
	return e
}
