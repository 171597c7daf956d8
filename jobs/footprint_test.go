package jobs

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dcvaas/dcvaas"
	"github.com/dcvaas/dcvaas/cabudget"
	"github.com/dcvaas/dcvaas/crypt"
	"github.com/dcvaas/dcvaas/sqlstore"
)

// footprintIssuer stores what the ACME issuer stores for an order, without
// a CA: it takes the order's budgets, deals the domain one of 27 accounts
// and saves a certificate of the real shape (a P-256 leaf for the apex and
// its wildcard, signed by an intermediate, with its sealed PKCS #8 key).
type footprintIssuer struct {
	db      *sqlstore.DB
	kr      *crypt.Keyring
	clock   func() time.Time
	inter   *x509.Certificate
	ikey    *ecdsa.PrivateKey
	interPM string
	serial  atomic.Int64
}

func newFootprintIssuer(t *testing.T, db *sqlstore.DB, clock func() time.Time) *footprintIssuer {
	ikey, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{Country: []string{"US"}, Organization: []string{"Let's Encrypt"}, CommonName: "E7"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(3 * 365 * 24 * time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &ikey.PublicKey, ikey)
	if err != nil {
		t.Fatal(err)
	}
	inter, _ := x509.ParseCertificate(der)
	key := make([]byte, crypt.KeySize)
	rand.Read(key)
	kr, err := crypt.NewKeyring(key)
	if err != nil {
		t.Fatal(err)
	}
	return &footprintIssuer{db: db, kr: kr, clock: clock, inter: inter, ikey: ikey,
		interPM: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))}
}

func (f *footprintIssuer) Issue(ctx context.Context, d *dcvaas.Domain, renewal bool) (any, error) {
	names := []string{d.Name, "*." + d.Name}
	account, err := f.db.DomainACMEAccount(ctx, d.ID, "letsencrypt", 27)
	if err != nil {
		return nil, err
	}
	if w, err := f.db.TakeBudgets(ctx, cabudget.OrderSpends("letsencrypt", cabudget.Default("letsencrypt"), account, names), f.clock(), renewal); err != nil || w != nil {
		return nil, fmt.Errorf("budget: %v %v", w, err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	now := f.clock()
	serial := new(big.Int).Lsh(big.NewInt(f.serial.Add(1)), 120) // 16 bytes, as CAs use
	leaf := &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: d.Name}, DNSNames: names,
		NotBefore: now, NotAfter: now.Add(90 * 24 * time.Hour), KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IssuingCertificateURL: []string{"http://e7.i.lencr.org/"}, CRLDistributionPoints: []string{"http://e7.c.lencr.org/12.crl"}}
	der, err := x509.CreateCertificate(rand.Reader, leaf, f.inter, &key.PublicKey, f.ikey)
	if err != nil {
		return nil, err
	}
	p8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	c := &dcvaas.Certificate{ID: "", DomainID: d.ID, SerialNumber: serial.Text(16), Issuer: "E7", CAName: "letsencrypt",
		OrderURL: "https://acme-v02.api.letsencrypt.org/acme/order/123456789/" + strconv.FormatInt(f.serial.Load(), 10) + "0123456789",
		DNSNames: names, NotBefore: now, NotAfter: leaf.NotAfter,
		ChainPEM: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})) + f.interPM}
	// The acme issuer seals with the certificate id as associated data.
	c.ID = fmt.Sprintf("%s-%d", d.ID, f.serial.Load())
	if c.PrivateKeyEnc, err = f.kr.Encrypt(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: p8}), []byte("certificate:"+c.ID)); err != nil {
		return nil, err
	}
	c.ID = ""
	if err := f.db.SaveCertificate(ctx, dcvaas.SystemActor(d.OrgID), c, nil); err != nil {
		return nil, err
	}
	return map[string]any{"outcome": "issued", "certificateId": c.ID, "serialNumber": c.SerialNumber, "caName": "letsencrypt"}, nil
}

// tableSize is one table's rows and bytes (with its indexes).
type tableSize struct {
	rows  int64
	bytes int64
}

// footprint reads every table's rows and bytes: PostgreSQL after VACUUM
// FULL (pg_total_relation_size: heap, indexes, TOAST), SQLite after VACUUM
// (dbstat: every page of the table and of its indexes).
func footprint(t *testing.T, b *bundle) map[string]tableSize {
	t.Helper()
	db := b.db.SQL()
	out := map[string]tableSize{}
	var tables []string
	q := `SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'`
	if b.db.Dialect() == sqlstore.Postgres {
		q = `SELECT tablename FROM pg_tables WHERE schemaname = current_schema()`
		if _, err := db.ExecContext(b.ctx, `VACUUM FULL`); err != nil {
			t.Fatal(err)
		}
	} else if _, err := db.ExecContext(b.ctx, `VACUUM`); err != nil {
		t.Fatal(err)
	}
	rows, err := db.QueryContext(b.ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var n string
		rows.Scan(&n)
		tables = append(tables, n)
	}
	rows.Close()
	for _, tb := range tables {
		var s tableSize
		if err := db.QueryRowContext(b.ctx, `SELECT COUNT(*) FROM `+tb).Scan(&s.rows); err != nil {
			t.Fatal(err)
		}
		if b.db.Dialect() == sqlstore.Postgres {
			err = db.QueryRowContext(b.ctx, `SELECT pg_total_relation_size($1::regclass)`, tb).Scan(&s.bytes)
		} else {
			err = db.QueryRowContext(b.ctx, `SELECT COALESCE(SUM(pgsize), 0) FROM dbstat WHERE name = $1
				OR name IN (SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = $1)`, tb).Scan(&s.bytes)
		}
		if err != nil {
			t.Fatal(err)
		}
		out[tb] = s
	}
	return out
}

// TestDomainFootprint measures the database rows and bytes one domain
// costs, through the real engine and store: N domains verified, issued
// and renewed three times (day 0, 60, 120, 180: 200 days of 90-day
// certificates renewed with a third left), with the daily renewal check
// (which prunes full budgets) and event scan (720 h retention) on the
// product clock. Set DCVAAS_FOOTPRINT_DOMAINS=N to run it; the table goes
// to docs/benchmarks.md.
func TestDomainFootprint(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("DCVAAS_FOOTPRINT_DOMAINS"))
	if n <= 0 {
		t.Skip("set DCVAAS_FOOTPRINT_DOMAINS=N to measure the rows and bytes per domain")
	}
	forEachDialect(t, func(t *testing.T, dialect sqlstore.Dialect) {
		var fi *footprintIssuer
		b := setup(t, dialect, func(c *Config) { c.Workers = 16 })
		fi = newFootprintIssuer(t, b.db, b.clock.Now)
		b.e.cfg.Issuer = fi
		b.start()
		before := footprint(t, b)
		start := time.Now()
		ids := make([]string, n)
		for i := range n {
			d := &dcvaas.Domain{Name: fmt.Sprintf("shop-%06d.customer-%04d.com", i, i%1000), CNAMETarget: fmt.Sprintf("k%015d.dcvaas-verify.com", i),
				IncludeWildcard: true, KeyType: dcvaas.KeyEC256}
			b.dns.SetCNAME(challengeName(d), d.CNAMETarget)
			if _, err := b.db.CreateDomain(b.ctx, b.actor, d); err != nil {
				t.Fatal(err)
			}
			ids[i] = d.ID
		}
		waitCount := func(what, q string, want int) {
			t.Helper()
			deadline := time.Now().Add(time.Duration(n)*100*time.Millisecond + 30*time.Second)
			for {
				var got int
				if err := b.db.SQL().QueryRowContext(b.ctx, q).Scan(&got); err != nil {
					t.Fatal(err)
				}
				if got >= want {
					return
				}
				if time.Now().After(deadline) {
					t.Fatalf("%s: %d of %d", what, got, want)
				}
				time.Sleep(50 * time.Millisecond)
			}
		}
		waitCount("issued", `SELECT COUNT(*) FROM certificates`, n)
		for cycle := 1; cycle <= 3; cycle++ {
			for range 60 { // each day: the renewal check and the event scan
				b.clock.Advance(24 * time.Hour)
				if _, err := b.e.RenewalCheck(b.ctx, CauseSchedule); err != nil {
					t.Fatal(err)
				}
				if _, _, err := b.e.EventScan(b.ctx); err != nil {
					t.Fatal(err)
				}
			}
			waitCount(fmt.Sprintf("renewal %d", cycle), `SELECT COUNT(*) FROM certificates`, n*(cycle+1))
		}
		b.clock.Advance(20 * 24 * time.Hour) // day 200
		if _, err := b.e.RenewalCheck(b.ctx, CauseSchedule); err != nil {
			t.Fatal(err)
		}
		if _, _, err := b.e.EventScan(b.ctx); err != nil {
			t.Fatal(err)
		}
		waitCount("jobs done", `SELECT COUNT(*) FROM jobs WHERE status IN ('succeeded', 'failed')`, 5*n)
		took := time.Since(start)
		after := footprint(t, b)

		var names []string
		for tb := range after {
			names = append(names, tb)
		}
		sort.Strings(names)
		var sb strings.Builder
		var rows, bytes, riverRows, riverBytes float64
		fmt.Fprintf(&sb, "\n%s, %d domains, 200 days (1 issuance + 3 renewals each), %s:\n\n| table | rows per domain | bytes per domain |\n|---|---:|---:|\n", dialect, n, took.Round(time.Second))
		for _, tb := range names {
			r := float64(after[tb].rows-before[tb].rows) / float64(n)
			by := float64(after[tb].bytes-before[tb].bytes) / float64(n)
			if r == 0 && by == 0 {
				continue
			}
			if strings.HasPrefix(tb, "river_") {
				riverRows += r
				riverBytes += by
			} else {
				rows += r
				bytes += by
			}
			fmt.Fprintf(&sb, "| `%s` | %.2f | %.0f |\n", tb, r, by)
		}
		fmt.Fprintf(&sb, "| **dcvaas tables** | **%.2f** | **%.0f** |\n| River's tables (completed jobs kept 24 h by River) | %.2f | %.0f |\n", rows, bytes, riverRows, riverBytes)
		t.Log(sb.String())
		if rows <= 0 || bytes <= 0 {
			t.Fatalf("nothing measured: %s", sb.String())
		}
	})
}
