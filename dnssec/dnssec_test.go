package dnssec_test

import (
	"context"
	"crypto/rand"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/dcvaas/dcvaas/crypt"
	"github.com/dcvaas/dcvaas/dnssec"
	"github.com/dcvaas/dcvaas/sqlstore"
	"github.com/dcvaas/dcvaas/sqlstore/storetest"
)

const zone = "verify.dcvaas.test"

func keyring(t *testing.T, old ...[]byte) (*crypt.Keyring, []byte) {
	t.Helper()
	key := make([]byte, crypt.KeySize)
	rand.Read(key)
	kr, err := crypt.NewKeyring(key, old...)
	if err != nil {
		t.Fatal(err)
	}
	return kr, key
}

func ids(keys []*dnssec.Key) []string {
	var out []string
	for _, k := range keys {
		out = append(out, k.ID)
	}
	return out
}

// Nodes starting together each generate keys; one set wins and every node
// signs with it.
func TestEnsureConcurrent(t *testing.T) {
	for _, dialect := range storetest.Dialects(t) {
		t.Run(string(dialect), func(t *testing.T) {
			ctx := context.Background()
			db := storetest.NewDB(t, dialect)
			kr, _ := keyring(t)
			const nodes = 6
			got := make([][]*dnssec.Key, nodes)
			errs := make([]error, nodes)
			var wg sync.WaitGroup
			for i := range nodes {
				wg.Go(func() { got[i], errs[i] = dnssec.Ensure(ctx, db, kr, zone, time.Now()) })
			}
			wg.Wait()
			for i := range nodes {
				if errs[i] != nil {
					t.Fatalf("node %d: %v", i, errs[i])
				}
				if len(got[i]) != 2 || !slices.Equal(ids(got[i]), ids(got[0])) {
					t.Fatalf("node %d has keys %v, node 0 %v", i, ids(got[i]), ids(got[0]))
				}
			}
			ksk, zsk := got[0][0], got[0][1]
			if !ksk.KSK() || zsk.KSK() || ksk.DNSKEY.Flags != 257 || zsk.DNSKEY.Flags != 256 ||
				ksk.DNSKEY.Algorithm != dns.ECDSAP256SHA256 || ksk.Tag == zsk.Tag {
				t.Fatalf("keys: %v / %v", ksk.DNSKEY, zsk.DNSKEY)
			}
			rows, err := db.DNSSECKeys(ctx, zone)
			if err != nil || len(rows) != 2 {
				t.Fatalf("stored keys: %d, %v", len(rows), err)
			}
			for _, r := range rows {
				if r.PrivateKeyEnc == "" || kr.NeedsRotation(r.PrivateKeyEnc) {
					t.Fatalf("key %s is not sealed under the current key", r.ID)
				}
			}
			// A restart loads the same keys.
			again, err := dnssec.Ensure(ctx, db, kr, zone+".", time.Now())
			if err != nil || !slices.Equal(ids(again), ids(got[0])) {
				t.Fatalf("reload: %v, %v", ids(again), err)
			}
			// The DS is the KSK's, SHA-256.
			ds := dnssec.DS(again, time.Now(), time.Hour)
			if len(ds) != 1 || ds[0].KeyTag != ksk.Tag || ds[0].DigestType != dns.SHA256 || len(ds[0].Digest) != 64 ||
				ds[0].Hdr.Name != zone+"." {
				t.Fatalf("DS: %v", ds)
			}
		})
	}
}

// `dcvaas keys rotate` re-seals the DNSSEC keys: afterwards they open
// without the old key.
func TestKeysRotate(t *testing.T) {
	ctx := context.Background()
	db := storetest.NewDB(t, sqlstore.SQLite)
	oldRing, oldKey := keyring(t)
	keys, err := dnssec.Ensure(ctx, db, oldRing, zone, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	newKey := make([]byte, crypt.KeySize)
	rand.Read(newKey)
	both, err := crypt.NewKeyring(newKey, oldKey)
	if err != nil {
		t.Fatal(err)
	}
	res, err := db.RotateSecrets(ctx, both, 10)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, r := range res {
		if r.Table == "dnssec_keys" {
			n = r.Resealed
		}
	}
	if n != 2 {
		t.Fatalf("re-sealed %d DNSSEC keys, want 2: %+v", n, res)
	}
	onlyNew, err := crypt.NewKeyring(newKey)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dnssec.Load(ctx, db, oldRing, zone); err == nil {
		t.Fatal("the old key alone still opens the re-sealed keys")
	}
	again, err := dnssec.Load(ctx, db, onlyNew, zone)
	if err != nil || !slices.Equal(ids(again), ids(keys)) {
		t.Fatalf("after rotation: %v, %v", ids(again), err)
	}
}

// The rollover's schedule: published first, signing after publishWait,
// the old key gone after removeWait more; the signer follows it by time
// alone.
func TestRolloverSchedule(t *testing.T) {
	ctx := context.Background()
	db := storetest.NewDB(t, sqlstore.SQLite)
	kr, _ := keyring(t)
	t0 := time.Now()
	keys, err := dnssec.Ensure(ctx, db, kr, zone, t0)
	if err != nil {
		t.Fatal(err)
	}
	oldZSK := keys[1].Tag
	const publish, remove = 10 * time.Minute, 20 * time.Minute
	s, err := dnssec.Rollover(ctx, db, kr, zone, t0, publish, remove)
	if err != nil {
		t.Fatal(err)
	}
	if s.Old != oldZSK || s.New == oldZSK || !s.SigningAt.Equal(t0.Add(publish)) || !s.OldRemovedAt.Equal(t0.Add(publish+remove)) {
		t.Fatalf("schedule: %+v", s)
	}
	if _, err := dnssec.Rollover(ctx, db, kr, zone, t0.Add(time.Minute), publish, remove); !errors.Is(err, dnssec.ErrRolloverInProgress) {
		t.Fatalf("second rollover during the first: %v", err)
	}
	keys, err = dnssec.Load(ctx, db, kr, zone)
	if err != nil || len(keys) != 3 {
		t.Fatalf("keys after rollover: %d, %v", len(keys), err)
	}
	signer := dnssec.NewSigner(zone, 300*time.Second, keys)
	txt := []dns.RR{&dns.TXT{Hdr: dns.RR_Header{Name: "a." + zone + ".", Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: 5}, Txt: []string{"v"}}}
	var cache dnssec.Cache
	for _, step := range []struct {
		at        time.Time
		published []uint16
		signer    uint16
	}{
		{t0.Add(time.Second), []uint16{keys[0].Tag, oldZSK, s.New}, oldZSK},
		{t0.Add(publish - time.Second), []uint16{keys[0].Tag, oldZSK, s.New}, oldZSK},
		{t0.Add(publish), []uint16{keys[0].Tag, oldZSK, s.New}, s.New},
		{t0.Add(publish + remove - time.Second), []uint16{keys[0].Tag, oldZSK, s.New}, s.New},
		{t0.Add(publish + remove), []uint16{keys[0].Tag, s.New}, s.New},
	} {
		rrs, sigs, err := signer.DNSKEY(step.at)
		if err != nil {
			t.Fatal(err)
		}
		var tags []uint16
		for _, rr := range rrs {
			tags = append(tags, rr.(*dns.DNSKEY).KeyTag())
		}
		slices.Sort(tags)
		slices.Sort(step.published)
		if !slices.Equal(tags, step.published) || len(sigs) != 1 || sigs[0].KeyTag != keys[0].Tag {
			t.Fatalf("at +%s: DNSKEY %v signed by %d, want %v", step.at.Sub(t0), tags, sigs[0].KeyTag, step.published)
		}
		if err := sigs[0].Verify(keys[0].DNSKEY, rrs); err != nil || !sigs[0].ValidityPeriod(step.at) {
			t.Fatalf("at +%s: DNSKEY signature: %v", step.at.Sub(t0), err)
		}
		sig, err := signer.Sign(&cache, txt, step.at)
		if err != nil || sig.KeyTag != step.signer {
			t.Fatalf("at +%s: TXT signed by %d (%v), want %d", step.at.Sub(t0), sig.KeyTag, err, step.signer)
		}
	}
	// Once the old key is gone, a new rollover may start, and the key
	// removed long ago is deleted.
	if _, err := dnssec.Rollover(ctx, db, kr, zone, t0.Add(publish+2*remove+time.Second), publish, remove); err != nil {
		t.Fatal(err)
	}
	if rows, _ := db.DNSSECKeys(ctx, zone); len(rows) != 3 {
		t.Fatalf("after the second rollover: %d keys stored, want 3 (KSK, current ZSK, next ZSK)", len(rows))
	}
}

// Signatures: inception in the past, expiration days ahead, cached until
// due for refresh, made again before they expire.
func TestSignatureValidity(t *testing.T) {
	ctx := context.Background()
	db := storetest.NewDB(t, sqlstore.SQLite)
	kr, _ := keyring(t)
	t0 := time.Now()
	keys, err := dnssec.Ensure(ctx, db, kr, zone, t0)
	if err != nil {
		t.Fatal(err)
	}
	signer := dnssec.NewSigner(zone, 300*time.Second, keys)
	txt := []dns.RR{&dns.TXT{Hdr: dns.RR_Header{Name: "A." + zone + ".", Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: 5}, Txt: []string{"v"}}}
	var cache dnssec.Cache
	first, err := signer.Sign(&cache, txt, t0)
	if err != nil {
		t.Fatal(err)
	}
	inc, exp := time.Unix(int64(first.Inception), 0), time.Unix(int64(first.Expiration), 0)
	if d := t0.Sub(inc); d < 30*time.Minute || d > 2*time.Hour {
		t.Fatalf("inception %s before signing", d)
	}
	if d := exp.Sub(t0); d < 3*24*time.Hour || d > 14*24*time.Hour {
		t.Fatalf("expiration %s after signing", d)
	}
	if first.SignerName != zone+"." || first.Labels != 4 || first.OrigTtl != 5 || first.Algorithm != dns.ECDSAP256SHA256 {
		t.Fatalf("RRSIG: %v", first)
	}
	if err := first.Verify(keys[1].DNSKEY, txt); err != nil {
		t.Fatal(err)
	}
	if again, _ := signer.Sign(&cache, txt, t0.Add(24*time.Hour)); again != first {
		t.Fatal("a day later the cached signature was not used")
	}
	// Before the first expires, a new one replaces it.
	later := exp.Add(-2 * 24 * time.Hour)
	fresh, err := signer.Sign(&cache, txt, later)
	if err != nil || fresh == first || !fresh.ValidityPeriod(later.Add(2*24*time.Hour)) {
		t.Fatalf("refresh: %v, %v", fresh, err)
	}
}
