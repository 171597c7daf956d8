package dnsserver_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/dcvaas/dcvaas/dnsserver"
	"github.com/dcvaas/dcvaas/sqlstore"
	"github.com/dcvaas/dcvaas/sqlstore/storetest"
	"github.com/miekg/dns"
)

// A value written through one node (store handle) is served by another
// node's DNS server within 100 ms, and so is its removal: PostgreSQL
// through LISTEN/NOTIFY, SQLite through the file's data_version.
func TestCrossNode(t *testing.T) {
	for _, dialect := range storetest.Dialects(t) {
		t.Run(string(dialect), func(t *testing.T) {
			url := storetest.URL(t, dialect)
			writer := storetest.Open(t, url)
			reader := storetest.Open(t, url)
			s := start(t, reader)
			ctx := context.Background()
			for i := range 5 {
				name := "cross" + string(rune('a'+i)) + "." + zone
				value := "value-" + string(rune('a'+i))
				if err := writer.PutChallengeTXT(ctx, name, "authz", value); err != nil {
					t.Fatal(err)
				}
				waitFor(t, s.Addr(), name, func(m *dns.Msg) bool { return slices.Equal(txtValues(m), []string{value}) })
				if err := writer.DeleteChallengeTXT(ctx, name, "authz"); err != nil {
					t.Fatal(err)
				}
				waitFor(t, s.Addr(), name, func(m *dns.Msg) bool { return m.Rcode == dns.RcodeNameError })
			}
		})
	}
}

// waitFor queries name until ok holds, failing after 100 ms.
func waitFor(t *testing.T, addr, name string, ok func(*dns.Msg) bool) {
	t.Helper()
	written := time.Now()
	c := &dns.Client{Timeout: time.Second}
	for {
		m := new(dns.Msg)
		m.SetQuestion(dns.Fqdn(name), dns.TypeTXT)
		in, _, err := c.Exchange(m, addr)
		if err == nil && ok(in) {
			return
		}
		if time.Since(written) > 100*time.Millisecond {
			t.Fatalf("%s: not served within 100 ms of the write; last answer %v (err %v)", name, in, err)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// A flood of random labels is answered from memory: the store runs no
// statement and reads no record while it lasts.
func TestFloodReadsNothing(t *testing.T) {
	for _, dialect := range storetest.Dialects(t) {
		t.Run(string(dialect), func(t *testing.T) {
			db := storetest.NewDB(t, dialect)
			ctx := context.Background()
			if err := db.PutChallengeTXT(ctx, "hit."+zone, "a", "v"); err != nil {
				t.Fatal(err)
			}
			s := start(t, db)
			queries, feed := db.QueryCount(), db.ChallengeFeedStats()
			const n = 20000
			var wg sync.WaitGroup
			var mu sync.Mutex
			rcodes := map[int]int{}
			for w := range 8 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					conn, err := dns.Dial("udp", s.Addr())
					if err != nil {
						t.Error(err)
						return
					}
					defer conn.Close()
					b := make([]byte, 8)
					for i := w; i < n; i += 8 {
						rand.Read(b)
						name := hex.EncodeToString(b) + "." + zone
						if i%10 == 0 {
							name = "hit." + zone
						}
						m := new(dns.Msg)
						m.SetQuestion(dns.Fqdn(name), dns.TypeTXT)
						conn.SetDeadline(time.Now().Add(2 * time.Second))
						if err := conn.WriteMsg(m); err != nil {
							t.Error(err)
							return
						}
						in, err := conn.ReadMsg()
						if err != nil {
							t.Error(err)
							return
						}
						mu.Lock()
						rcodes[in.Rcode]++
						mu.Unlock()
					}
				}()
			}
			wg.Wait()
			if rcodes[dns.RcodeNameError] != n*9/10 || rcodes[dns.RcodeSuccess] != n/10 {
				t.Fatalf("answers by rcode: %v", rcodes)
			}
			if d := db.QueryCount() - queries; d != 0 {
				t.Errorf("%d queries made %d statements", n, d)
			}
			if d := db.ChallengeFeedStats().Reloads - feed.Reloads; d != 0 {
				t.Errorf("%d queries made %d reloads of the records", n, d)
			}
		})
	}
}

// stallingStore loads once and then stops confirming, as a node does when
// its database becomes unreachable.
type stallingStore struct{}

func (stallingStore) FollowChallenges(ctx context.Context, set func(map[string][]string), confirm func(time.Time)) error {
	set(map[string][]string{"live." + zone: {"v"}})
	confirm(time.Now())
	<-ctx.Done()
	return nil
}

// A copy unconfirmed for longer than the SOA minimum is not trusted: names
// below the apex are SERVFAIL (not a stale NXDOMAIN or value); the apex,
// which needs no database, still answers.
func TestStaleZone(t *testing.T) {
	s, err := dnsserver.New(dnsserver.Config{Zone: zone, Store: stallingStore{}, NegativeTTL: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	defer s.Shutdown(context.Background())
	if m := query(t, s.Addr(), "udp", "live."+zone, dns.TypeTXT); m.Rcode != dns.RcodeSuccess || len(m.Answer) != 1 {
		t.Fatalf("fresh copy: %v", m)
	}
	if m := query(t, s.Addr(), "udp", "gone."+zone, dns.TypeTXT); m.Rcode != dns.RcodeNameError {
		t.Fatalf("fresh copy, unknown name: %v", m)
	}
	time.Sleep(1100 * time.Millisecond)
	for _, name := range []string{"live." + zone, "gone." + zone} {
		if m := query(t, s.Addr(), "udp", name, dns.TypeTXT); m.Rcode != dns.RcodeServerFailure {
			t.Fatalf("stale copy, %s: %v", name, m)
		}
	}
	if m := query(t, s.Addr(), "udp", zone, dns.TypeSOA); m.Rcode != dns.RcodeSuccess {
		t.Fatalf("apex: %v", m)
	}
}

// A node whose PostgreSQL connection is cut reconnects and catches up.
func TestFeedReconnects(t *testing.T) {
	if os.Getenv(storetest.PostgresEnv) == "" {
		t.Skipf("%s is unset", storetest.PostgresEnv)
	}
	url := storetest.URL(t, sqlstore.Postgres)
	writer := storetest.Open(t, url)
	s := start(t, storetest.Open(t, url))
	ctx := context.Background()
	admin, err := sql.Open("pgx", os.Getenv(storetest.PostgresEnv))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	// Every DNS feed of the database is cut (other tests' feeds reconnect too).
	res, err := admin.ExecContext(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'dcvaas-dns-feed'`)
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		t.Fatal("no feed connection found")
	}
	if err := writer.PutChallengeTXT(ctx, "after-cut."+zone, "a", "v"); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		m := query(t, s.Addr(), "udp", "after-cut."+zone, dns.TypeTXT)
		if slices.Equal(txtValues(m), []string{"v"}) {
			break
		}
		if m.Rcode != dns.RcodeNameError || time.Now().After(deadline) {
			t.Fatalf("after the connection was cut: %v", m)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
