package dnsserver_test

import (
	"context"
	"fmt"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/dcvaas/dcvaas/dnsserver"
	"github.com/dcvaas/dcvaas/sqlstore"
	"github.com/dcvaas/dcvaas/sqlstore/storetest"
)

// cpuTime is the process's user and system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// packWriter is a dns.ResponseWriter that packs the answer, as a real
// write does, and keeps nothing.
type packWriter struct {
	buf   []byte
	bytes int
}

func (w *packWriter) LocalAddr() net.Addr { return &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 53} }
func (w *packWriter) RemoteAddr() net.Addr {
	return &net.UDPAddr{IP: net.IPv4(127, 0, 0, 2), Port: 5353}
}
func (w *packWriter) WriteMsg(m *dns.Msg) error {
	out, err := m.PackBuffer(w.buf)
	w.bytes += len(out)
	return err
}
func (w *packWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *packWriter) Close() error                { return nil }
func (w *packWriter) TsigStatus() error           { return nil }
func (w *packWriter) TsigTimersOnly(bool)         {}
func (w *packWriter) Hijack()                     {}

// BenchmarkAnswer measures the handler (ServeDNS, answer packed) for the
// same queries unsigned and signed (DO bit, DCVAAS_DNSSEC on): the
// unsigned rows are the baseline of the same run.
//
//	go test ./dnsserver -run '^$' -bench BenchmarkAnswer -benchtime 2s -count 3
func BenchmarkAnswer(b *testing.B) {
	ctx := context.Background()
	db := storetest.NewDB(b, sqlstore.SQLite)
	const names = 1000
	for i := range names {
		if err := db.PutChallengeTXT(ctx, fmt.Sprintf("n%d.%s", i, zone), "authz", "dns-01-digest-value-of-43-characters-xxxxxx"); err != nil {
			b.Fatal(err)
		}
	}
	plain, err := dnsserver.New(dnsserver.Config{Zone: zone, Store: db})
	if err != nil {
		b.Fatal(err)
	}
	if err := plain.Start("127.0.0.1:0"); err != nil {
		b.Fatal(err)
	}
	defer plain.Shutdown(ctx)
	signed, _, _ := signedServer(b, db)

	query := func(name string, qtype uint16, do bool) *dns.Msg {
		m := new(dns.Msg)
		m.SetQuestion(dns.Fqdn(name), qtype)
		m.SetEdns0(1232, do)
		return m
	}
	for _, sc := range []struct {
		name string
		srv  *dnsserver.Server
		do   bool
		miss bool
	}{
		{"hit/unsigned", plain, false, false},
		{"hit/signed", signed, true, false},
		{"miss/unsigned", plain, false, true},
		{"miss/signed", signed, true, true},
	} {
		b.Run(sc.name, func(b *testing.B) {
			w := &packWriter{buf: make([]byte, 4096)}
			// Queries built beforehand: hits cycle through the published
			// names; misses are distinct random-looking labels, each
			// asked once (a flood), so every signed denial is made anew.
			const pool = 1 << 16
			reqs := make([]*dns.Msg, pool)
			for i := range reqs {
				if sc.miss {
					reqs[i] = query(fmt.Sprintf("x%08x.%s", i*2654435761, zone), dns.TypeTXT, sc.do)
				} else {
					reqs[i] = query(fmt.Sprintf("n%d.%s", i%names, zone), dns.TypeTXT, sc.do)
				}
			}
			i := 0
			cpu0 := cpuTime()
			for b.Loop() {
				req := reqs[i%pool]
				if sc.miss && i >= pool {
					req = query(fmt.Sprintf("y%d-%08x.%s", i, i*2654435761, zone), dns.TypeTXT, sc.do)
				}
				sc.srv.ServeDNS(w, req)
				i++
			}
			// CPU time per answer: steadier than wall time on a machine
			// shared with other work.
			b.ReportMetric(float64((cpuTime()-cpu0).Nanoseconds())/float64(i), "cpu-ns/op")
			b.ReportMetric(float64(w.bytes)/float64(i), "bytes/answer")
		})
	}
}
