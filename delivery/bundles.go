// Package delivery gets certificates onto the servers that use them: the
// in-memory bundles behind the Caddy endpoint (bundles.go) and the
// `dcvaas sync` agent that writes them to files (agent.go and friends).
package delivery

import (
	"context"
	"strconv"
	"strings"
	"time"

	"golang.org/x/net/idna"
	"golang.org/x/sync/singleflight"

	"github.com/dcvaas/dcvaas"
	"github.com/dcvaas/dcvaas/gencache"
)

// Source is where bundles come from; *sqlstore.DB implements it.
type Source interface {
	// DeliveryGeneration returns gen, which moves whenever anything a
	// bundle is made of changes, on any node. stale is non-zero when
	// answers kept under gen may predate a write of this node: then a
	// bundle is read afresh (and filed under gen); callers given the same
	// stale may share one read.
	DeliveryGeneration(ctx context.Context) (gen, stale uint64, err error)
	// ServableCertificate returns the live active domain named exactly
	// name and its current certificate; ENOTFOUND when there is none.
	ServableCertificate(ctx context.Context, orgID, name string) (*dcvaas.Domain, *dcvaas.Certificate, error)
}

// Opener decrypts a certificate's private key (PEM).
type Opener func(*dcvaas.Certificate) ([]byte, error)

// Bundle is what a TLS server needs for one name: the chain and the key,
// PEM, in one body.
type Bundle struct {
	Domain      *dcvaas.Domain
	Certificate *dcvaas.Certificate
	PEM         []byte
}

type bundleKey struct{ orgID, name string }

// maxBundles bounds the answers kept between two changes; unknown names
// are kept too (as nil), so that a flood of them costs one read each.
const maxBundles = 50000

// Bundles answers "which certificate for this server name" from memory.
// Every answer, found or not, is kept until DeliveryGeneration moves: a
// new certificate, a deleted or failed domain, anywhere in the cluster,
// drops them all at the next request. Asking the generation is all a
// cached answer costs (a read of one row on SQLite, none on PostgreSQL).
type Bundles struct {
	src   Source
	open  Opener
	now   func() time.Time
	cache *gencache.Cache[bundleKey, *Bundle]
	// reads joins the concurrent misses of one name: after a start or a
	// change, handshakes for it arrive in bursts, and one read (and key
	// decryption) serves them all.
	reads singleflight.Group
}

// NewBundles returns an empty cache reading from src and opening keys with
// open; now is the clock (nil: time.Now).
func NewBundles(src Source, open Opener, now func() time.Time) *Bundles {
	if now == nil {
		now = time.Now
	}
	return &Bundles{src: src, open: open, now: now, cache: gencache.New[bundleKey, *Bundle](maxBundles)}
}

// Lookup returns the bundle serving serverName for the organization: the
// certificate of the domain of that name, or else of its parent whose
// wildcard covers it. nil when there is none (unknown, inactive, expired
// or not a host name).
func (b *Bundles) Lookup(ctx context.Context, orgID, serverName string) (*Bundle, error) {
	name, ok := HostName(serverName)
	if !ok {
		return nil, nil
	}
	gen, stale, err := b.src.DeliveryGeneration(ctx)
	if err != nil {
		return nil, err
	}
	key := bundleKey{orgID, name}
	if stale == 0 {
		if bd, ok := b.cache.Get(gen, key); ok {
			if bd != nil && !b.now().Before(bd.Certificate.NotAfter) {
				return nil, nil
			}
			return bd, nil
		}
	}
	flight := strconv.FormatUint(gen, 10) + "/" + strconv.FormatUint(stale, 10) + "\x00" + orgID + "\x00" + name
	read := b.reads.DoChan(flight, func() (any, error) {
		// Not ended by the first caller's cancellation, which would fail
		// the others; each caller waits only as long as its own context.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), sharedReadTimeout)
		defer cancel()
		bd, err := b.find(ctx, orgID, name)
		if err == nil {
			b.cache.Put(gen, key, bd)
		}
		return bd, err
	})
	select {
	case r := <-read:
		if r.Err != nil {
			return nil, r.Err
		}
		return r.Val.(*Bundle), nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// sharedReadTimeout bounds a read that several callers wait for.
const sharedReadTimeout = 10 * time.Second

func (b *Bundles) find(ctx context.Context, orgID, name string) (*Bundle, error) {
	candidates := []string{name}
	if _, parent, ok := strings.Cut(name, "."); ok && strings.Contains(parent, ".") {
		candidates = append(candidates, parent)
	}
	for i, n := range candidates {
		d, c, err := b.src.ServableCertificate(ctx, orgID, n)
		if dcvaas.ErrorCode(err) == dcvaas.ENOTFOUND {
			continue
		} else if err != nil {
			return nil, err
		}
		if i > 0 && !d.IncludeWildcard {
			continue
		}
		if !covers(c.DNSNames, name) || !b.now().Before(c.NotAfter) {
			continue
		}
		if c.PrivateKeyEnc == "" {
			// Customer-held key (keyMode csr): dcvaas has no key to
			// hand out, so the TLS server must look elsewhere.
			return nil, nil
		}
		key, err := b.open(c)
		if err != nil {
			return nil, err
		}
		pem := make([]byte, 0, len(c.ChainPEM)+len(key)+1)
		pem = append(pem, c.ChainPEM...)
		if len(pem) > 0 && pem[len(pem)-1] != '\n' {
			pem = append(pem, '\n')
		}
		pem = append(pem, key...)
		return &Bundle{Domain: d, Certificate: c, PEM: pem}, nil
	}
	return nil, nil
}

// covers reports whether a certificate for dnsNames is valid for name
// (RFC 6125 §6.4.3: a wildcard stands for exactly one leftmost label).
func covers(dnsNames []string, name string) bool {
	for _, n := range dnsNames {
		n = strings.ToLower(n)
		if n == name {
			return true
		}
		if suffix, ok := strings.CutPrefix(n, "*."); ok {
			if label, rest, ok := strings.Cut(name, "."); ok && label != "" && rest == suffix {
				return true
			}
		}
	}
	return false
}

var lookupProfile = idna.New(idna.MapForLookup(), idna.Transitional(false), idna.BidiRule())

// HostName is a TLS server name as dcvaas stores domain names: lowercase
// A-labels (punycode), no trailing dot. ok is false for what cannot be a
// host name (empty, an IP address, bad IDNA).
func HostName(s string) (string, bool) {
	s = strings.TrimSuffix(strings.TrimSpace(s), ".")
	if s == "" || len(s) > 253 || strings.ContainsAny(s, ":/ ") {
		return "", false
	}
	a, err := lookupProfile.ToASCII(s)
	if err != nil || a == "" {
		return "", false
	}
	return strings.ToLower(a), true
}
