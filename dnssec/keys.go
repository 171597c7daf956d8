// Package dnssec signs the verify zone online (DCVAAS_DNSSEC): its keys,
// stored sealed in the database and shared by every node, their rollover
// schedule, and the signer that the DNS server asks for RRSIGs.
//
// Keys: a key-signing key (KSK, flags 257) signs only the DNSKEY RRset and
// is what the parent's DS record names; a zone-signing key (ZSK, flags 256)
// signs everything else. Both are ECDSA P-256 (algorithm 13, RFC 6605):
// small keys and signatures, so signed answers stay well inside a UDP
// packet. The split (rather than one combined key) is what lets a ZSK
// rollover happen entirely here, without touching the parent's DS.
//
// Rollover is the pre-publish method (RFC 6781 §4.1.1.1): the new ZSK joins
// the DNSKEY RRset first; only after resolvers can have fetched that RRset
// (its TTL, plus the time every node takes to load the schedule) does it
// start signing; the old ZSK stays published until the signatures it made
// have expired from caches, then leaves. The schedule is stored as times,
// so every node switches at the same instant without talking to the others.
package dnssec

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/dcvaas/dcvaas"
)

// Algorithm is the zone's signing algorithm: ECDSA P-256 with SHA-256.
const Algorithm = dns.ECDSAP256SHA256

// Key flags (RFC 4034 §2.1.1): zone key, and SEP for the key-signing key.
const (
	FlagsKSK = dns.ZONE | dns.SEP // 257
	FlagsZSK = dns.ZONE           // 256
)

// Key is one of the zone's keys, opened.
type Key struct {
	ID     string
	DNSKEY *dns.DNSKEY
	Signer crypto.Signer
	Tag    uint16
	// The schedule (see dcvaas.DNSSECKey); zero RetiredAt/RemovedAt: none.
	PublishedAt, ActiveAt, RetiredAt, RemovedAt time.Time
}

// KSK reports whether the key signs the DNSKEY RRset.
func (k *Key) KSK() bool { return k.DNSKEY.Flags&dns.SEP != 0 }

// Published reports whether the key is in the DNSKEY RRset at t.
func (k *Key) Published(t time.Time) bool {
	return !t.Before(k.PublishedAt) && (k.RemovedAt.IsZero() || t.Before(k.RemovedAt))
}

// Signs reports whether the key makes signatures at t.
func (k *Key) Signs(t time.Time) bool {
	return !t.Before(k.ActiveAt) && (k.RetiredAt.IsZero() || t.Before(k.RetiredAt))
}

// Sealer seals private keys at rest; *crypt.Keyring is one.
type Sealer interface {
	Encrypt(plaintext, associatedData []byte) (string, error)
	Decrypt(envelope string, associatedData []byte) ([]byte, error)
}

// Store holds the keys; *sqlstore.DB is one.
type Store interface {
	DNSSECKeys(ctx context.Context, zone string) ([]dcvaas.DNSSECKey, error)
	CreateDNSSECKeys(ctx context.Context, zone string, keys []dcvaas.DNSSECKey) ([]dcvaas.DNSSECKey, error)
	RollDNSSECKey(ctx context.Context, zone string, plan func([]dcvaas.DNSSECKey) (*dcvaas.DNSSECKey, []dcvaas.DNSSECKey, error)) error
	DeleteDNSSECKeysRemovedBefore(ctx context.Context, zone string, t time.Time) (int, error)
}

// KeyAD is the associated data a key's private half is sealed with, so
// that a sealed key copied into another row does not open
// (sqlstore/rotate.go repeats it).
func KeyAD(id string) []byte { return []byte("dnssec-key:" + id) }

// zoneName is the stored form of a zone: lowercase, no trailing dot.
func zoneName(zone string) string { return strings.ToLower(strings.TrimSuffix(zone, ".")) }

// Ensure returns the zone's keys, creating a KSK and a ZSK when the zone
// has none. Nodes starting together all generate keys, and the store
// keeps only the first node's, which every node then loads.
func Ensure(ctx context.Context, store Store, sealer Sealer, zone string, now time.Time) ([]*Key, error) {
	zone = zoneName(zone)
	rows, err := store.DNSSECKeys(ctx, zone)
	if err != nil {
		return nil, err
	}
	if len(rows) == 0 {
		ksk, err := newKey(zone, FlagsKSK, sealer, now, nil)
		if err != nil {
			return nil, err
		}
		zsk, err := newKey(zone, FlagsZSK, sealer, now, []dcvaas.DNSSECKey{*ksk})
		if err != nil {
			return nil, err
		}
		if rows, err = store.CreateDNSSECKeys(ctx, zone, []dcvaas.DNSSECKey{*ksk, *zsk}); err != nil {
			return nil, fmt.Errorf("dnssec: store the zone's first keys: %w", err)
		}
	}
	return open(zone, rows, sealer)
}

// Load returns the zone's keys, opened; none when it has never been signed.
func Load(ctx context.Context, store Store, sealer Sealer, zone string) ([]*Key, error) {
	zone = zoneName(zone)
	rows, err := store.DNSSECKeys(ctx, zone)
	if err != nil {
		return nil, err
	}
	return open(zone, rows, sealer)
}

func open(zone string, rows []dcvaas.DNSSECKey, sealer Sealer) ([]*Key, error) {
	out := make([]*Key, 0, len(rows))
	for _, r := range rows {
		der, err := sealer.Decrypt(r.PrivateKeyEnc, KeyAD(r.ID))
		if err != nil {
			return nil, fmt.Errorf("dnssec: open key %s of %s: %w", r.ID, zone, err)
		}
		priv, err := x509.ParsePKCS8PrivateKey(der)
		clear(der)
		if err != nil {
			return nil, fmt.Errorf("dnssec: key %s of %s: %w", r.ID, zone, err)
		}
		ec, ok := priv.(*ecdsa.PrivateKey)
		if !ok || ec.Curve != elliptic.P256() {
			return nil, fmt.Errorf("dnssec: key %s of %s is not ECDSA P-256", r.ID, zone)
		}
		dk := publicKey(zone, uint16(r.Flags), ec)
		if dk.PublicKey != r.PublicKey || int(dk.KeyTag()) != r.KeyTag {
			return nil, fmt.Errorf("dnssec: key %s of %s: stored public key does not match the private key", r.ID, zone)
		}
		out = append(out, &Key{ID: r.ID, DNSKEY: dk, Signer: ec, Tag: dk.KeyTag(),
			PublishedAt: r.PublishedAt, ActiveAt: r.ActiveAt, RetiredAt: r.RetiredAt, RemovedAt: r.RemovedAt})
	}
	return out, nil
}

// publicKey is the DNSKEY record of priv (RFC 6605 §4: X and Y, 32 bytes
// each).
func publicKey(zone string, flags uint16, priv *ecdsa.PrivateKey) *dns.DNSKEY {
	k := &dns.DNSKEY{
		Hdr:       dns.RR_Header{Name: dns.Fqdn(zone), Rrtype: dns.TypeDNSKEY, Class: dns.ClassINET},
		Flags:     flags,
		Protocol:  3,
		Algorithm: Algorithm,
	}
	pub, err := priv.PublicKey.ECDH()
	if err != nil {
		panic(err) // a P-256 key always converts
	}
	k.PublicKey = base64.StdEncoding.EncodeToString(pub.Bytes()[1:]) // uncompressed point without its 0x04 prefix
	return k
}

// newKey generates a key whose tag differs from every key in others (a
// tag names the key in RRSIGs and the DS; RFC 6781 §3.4.3 advises against
// two keys sharing one).
func newKey(zone string, flags uint16, sealer Sealer, now time.Time, others []dcvaas.DNSSECKey) (*dcvaas.DNSSECKey, error) {
	for {
		priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, err
		}
		dk := publicKey(zone, flags, priv)
		tag := int(dk.KeyTag())
		taken := false
		for _, o := range others {
			taken = taken || o.KeyTag == tag
		}
		if taken {
			continue
		}
		der, err := x509.MarshalPKCS8PrivateKey(priv)
		if err != nil {
			return nil, err
		}
		id := randomID()
		sealed, err := sealer.Encrypt(der, KeyAD(id))
		clear(der)
		if err != nil {
			return nil, err
		}
		return &dcvaas.DNSSECKey{ID: id, Zone: zone, Flags: int(flags), KeyTag: tag, PublicKey: dk.PublicKey,
			PrivateKeyEnc: sealed, PublishedAt: now, ActiveAt: now, CreatedAt: now}, nil
	}
}

func randomID() string {
	b := make([]byte, 12)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// DS returns the DS records (SHA-256 digest, RFC 4509) of the zone's
// key-signing keys published at t: what the parent zone must hold.
func DS(keys []*Key, t time.Time, ttl time.Duration) []*dns.DS {
	var out []*dns.DS
	for _, k := range keys {
		if k.KSK() && k.Published(t) {
			ds := k.DNSKEY.ToDS(dns.SHA256)
			ds.Hdr.Ttl = uint32(ttl / time.Second)
			out = append(out, ds)
		}
	}
	return out
}

// Schedule is what a rollover decided.
type Schedule struct {
	New, Old uint16 // key tags
	// PublishedAt: the new key is in the DNSKEY RRset. SigningAt: it signs
	// instead of the old one. OldRemovedAt: the old key leaves the RRset.
	PublishedAt, SigningAt, OldRemovedAt time.Time
}

// ErrRolloverInProgress is returned while an earlier rollover's old key is
// still published: a second one would remove it too soon.
var ErrRolloverInProgress = errors.New("dnssec: a ZSK rollover is still in progress")

// Rollover starts a ZSK rollover at now: a new ZSK is published at once,
// signs from now+publishWait, and the ZSK signing until then is removed
// from the DNSKEY RRset at now+publishWait+removeWait. publishWait must
// cover the DNSKEY TTL and the time nodes take to load the schedule;
// removeWait the largest TTL of any signed RRset. Keys removed long ago
// are deleted.
func Rollover(ctx context.Context, store Store, sealer Sealer, zone string, now time.Time, publishWait, removeWait time.Duration) (*Schedule, error) {
	zone = zoneName(zone)
	if _, err := store.DeleteDNSSECKeysRemovedBefore(ctx, zone, now.Add(-removeWait)); err != nil {
		return nil, err
	}
	var sched *Schedule
	for range 5 { // a tag collision with a key added meanwhile: try another key
		existing, err := store.DNSSECKeys(ctx, zone)
		if err != nil {
			return nil, err
		}
		fresh, err := newKey(zone, FlagsZSK, sealer, now, existing)
		if err != nil {
			return nil, err
		}
		signAt, removeAt := now.Add(publishWait), now.Add(publishWait+removeWait)
		fresh.ActiveAt = signAt
		errCollision := errors.New("tag collision")
		err = store.RollDNSSECKey(ctx, zone, func(keys []dcvaas.DNSSECKey) (*dcvaas.DNSSECKey, []dcvaas.DNSSECKey, error) {
			var old *dcvaas.DNSSECKey
			for i := range keys {
				k := &keys[i]
				if k.KeyTag == fresh.KeyTag {
					return nil, nil, errCollision
				}
				if k.Flags != FlagsZSK {
					continue
				}
				if k.ActiveAt.After(now) || (!k.RemovedAt.IsZero() && k.RemovedAt.After(now)) {
					return nil, nil, fmt.Errorf("%w until %s", ErrRolloverInProgress, latest(keys).UTC().Format(time.RFC3339))
				}
				if (k.RetiredAt.IsZero() || k.RetiredAt.After(now)) && !k.ActiveAt.After(now) {
					old = k
				}
			}
			if old == nil {
				return nil, nil, errors.New("dnssec: the zone has no signing ZSK to roll")
			}
			old.RetiredAt, old.RemovedAt = signAt, removeAt
			sched = &Schedule{New: uint16(fresh.KeyTag), Old: uint16(old.KeyTag), PublishedAt: now, SigningAt: signAt, OldRemovedAt: removeAt}
			return fresh, []dcvaas.DNSSECKey{*old}, nil
		})
		if errors.Is(err, errCollision) {
			continue
		}
		if err != nil {
			return nil, err
		}
		return sched, nil
	}
	return nil, errors.New("dnssec: no free key tag after several tries")
}

// latest is the last time in the keys' schedules.
func latest(keys []dcvaas.DNSSECKey) time.Time {
	var t time.Time
	for _, k := range keys {
		for _, u := range []time.Time{k.ActiveAt, k.RemovedAt, k.RetiredAt} {
			if u.After(t) {
				t = u
			}
		}
	}
	return t
}
