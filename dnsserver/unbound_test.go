package dnsserver_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/dcvaas/dcvaas/crypt"
	"github.com/dcvaas/dcvaas/dnssec"
	"github.com/dcvaas/dcvaas/dnsserver"
	"github.com/dcvaas/dcvaas/sqlstore"
	"github.com/dcvaas/dcvaas/sqlstore/storetest"
)

// Debian's unbound, the validating resolver, checks the signed zone: given
// the zone's DS as trust anchor and a stub zone pointing at our server on
// loopback, answers validate as secure (AD), and a tampered answer or a
// wrong anchor fails (SERVFAIL).

// unboundPath finds unbound, or skips the test saying how to get it.
func unboundPath(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("unbound"); err == nil {
		return p
	}
	if _, err := os.Stat("/usr/sbin/unbound"); err == nil {
		return "/usr/sbin/unbound"
	}
	t.Skip("unbound is not installed: apt-get install unbound (CI installs it, .ci/run)")
	return ""
}

// freePort returns a port free for UDP and TCP on loopback.
func freePort(t *testing.T) int {
	t.Helper()
	pc, ln, err := dnsserver.ListenBoth("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := pc.LocalAddr().(*net.UDPAddr).Port
	pc.Close()
	ln.Close()
	return port
}

// startUnbound runs unbound on loopback with anchor as the zone's trust
// anchor and upstream (host:port) as the zone's only server; it returns
// unbound's address.
func startUnbound(t *testing.T, anchor, upstream string) string {
	t.Helper()
	bin := unboundPath(t)
	dir := t.TempDir()
	port := freePort(t)
	host, upPort, _ := net.SplitHostPort(upstream)
	conf := fmt.Sprintf(`server:
	interface: 127.0.0.1
	port: %d
	do-ip6: no
	do-daemonize: no
	username: ""
	chroot: ""
	directory: %q
	pidfile: %q
	use-syslog: no
	logfile: ""
	verbosity: 1
	val-log-level: 2
	num-threads: 1
	so-reuseport: no
	access-control: 127.0.0.0/8 allow
	do-not-query-localhost: no
	qname-minimisation: no
	module-config: "validator iterator"
	trust-anchor: "%s"
	local-zone: "test." nodefault
	infra-host-ttl: 1
	val-bogus-ttl: 1
remote-control:
	control-enable: no
stub-zone:
	name: %q
	stub-addr: %s@%s
`, port, dir, filepath.Join(dir, "unbound.pid"), strings.Join(strings.Fields(anchor), " "), zone, host, upPort)
	path := filepath.Join(dir, "unbound.conf")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(bin+"-checkconf", path).CombinedOutput(); err != nil {
		t.Fatalf("unbound-checkconf: %v\n%s\n%s", err, out, conf)
	}
	var logs syncBuffer
	cmd := exec.Command(bin, "-d", "-c", path)
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("unbound log:\n%s", logs.String())
		}
	})
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	deadline := time.Now().Add(15 * time.Second)
	for {
		m := new(dns.Msg)
		m.SetQuestion("ready.invalid.", dns.TypeA)
		c := &dns.Client{Timeout: 300 * time.Millisecond}
		if _, _, err := c.Exchange(m, addr); err == nil {
			return addr
		}
		if time.Now().After(deadline) {
			t.Fatalf("unbound did not answer at %s:\n%s", addr, logs.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// resolve asks unbound (recursion desired, DO so that it reports AD).
func resolve(t *testing.T, addr, name string, qtype uint16) *dns.Msg {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	m.RecursionDesired = true
	m.SetEdns0(1232, true)
	c := &dns.Client{Timeout: 5 * time.Second}
	in, _, err := c.Exchange(m, addr)
	if err != nil {
		t.Fatalf("unbound %s %s: %v", name, dns.TypeToString[qtype], err)
	}
	return in
}

// tamperProxy forwards UDP queries to upstream and, in answers about names
// starting with "tampered", changes one byte of the TXT data.
func tamperProxy(t *testing.T, upstream string) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 65535)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			req := append([]byte(nil), buf[:n]...)
			go func() {
				up, err := net.Dial("udp", upstream)
				if err != nil {
					return
				}
				defer up.Close()
				up.SetDeadline(time.Now().Add(2 * time.Second))
				if _, err := up.Write(req); err != nil {
					return
				}
				resp := make([]byte, 65535)
				n, err := up.Read(resp)
				if err != nil {
					return
				}
				resp = resp[:n]
				m := new(dns.Msg)
				if m.Unpack(resp) == nil && len(m.Question) == 1 && strings.HasPrefix(strings.ToLower(m.Question[0].Name), "tampered") {
					for _, rr := range m.Answer {
						if txt, ok := rr.(*dns.TXT); ok {
							b := []byte(txt.Txt[0])
							b[0] ^= 0x01
							txt.Txt[0] = string(b)
						}
					}
					if packed, err := m.Pack(); err == nil {
						resp = packed
					}
				}
				pc.WriteTo(resp, from)
			}()
		}
	}()
	return pc.LocalAddr().String()
}

// unboundServer runs a signed server with short TTLs (so that a rollover
// fits in a test) and returns it with its signer, keyring and the zone's
// DS record.
func unboundServer(t *testing.T, db *sqlstore.DB) (*dnsserver.Server, *dnssec.Signer, *crypt.Keyring, string) {
	t.Helper()
	key := make([]byte, crypt.KeySize)
	rand.Read(key)
	kr, _ := crypt.NewKeyring(key)
	keys, err := dnssec.Ensure(context.Background(), db, kr, zone, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	const apexTTL = 2 * time.Second
	signer := dnssec.NewSigner(zone, apexTTL, keys)
	s, err := dnsserver.New(dnsserver.Config{Zone: zone, Store: db, NS: []string{"ns1.dcvaas.test"},
		TTL: time.Second, ApexTTL: apexTTL, NegativeTTL: time.Second, DNSSEC: signer})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Shutdown(context.Background()) })
	ds := dnssec.DS(keys, time.Now(), time.Hour)
	if len(ds) != 1 {
		t.Fatalf("DS: %v", ds)
	}
	return s, signer, kr, ds[0].String()
}

func TestUnboundValidates(t *testing.T) {
	unboundPath(t)
	ctx := context.Background()
	db := storetest.NewDB(t, sqlstore.SQLite)
	s, _, _, ds := unboundServer(t, db)
	for _, name := range []string{"good." + zone, "tampered." + zone} {
		if err := db.PutChallengeTXT(ctx, name, "authz", "dns-01-digest-value"); err != nil {
			t.Fatal(err)
		}
	}
	resolver := startUnbound(t, ds, tamperProxy(t, s.Addr()))

	secure := func(name string, qtype uint16) *dns.Msg {
		t.Helper()
		m := resolve(t, resolver, name, qtype)
		if m.Rcode != dns.RcodeSuccess || !m.AuthenticatedData {
			t.Fatalf("%s %s: not secure (rcode %s, AD %v):\n%v", name, dns.TypeToString[qtype], dns.RcodeToString[m.Rcode], m.AuthenticatedData, m)
		}
		return m
	}
	if m := secure("good."+zone, dns.TypeTXT); len(txtValues(m)) != 1 || txtValues(m)[0] != "dns-01-digest-value" {
		t.Fatalf("TXT: %v", m)
	}
	secure(zone, dns.TypeDNSKEY)
	secure(zone, dns.TypeSOA)
	// Compact denial: a name that does not exist and a type that does not
	// exist at a name both validate as secure denials.
	if m := secure("missing."+zone, dns.TypeTXT); len(m.Answer) != 0 {
		t.Fatalf("missing name: %v", m)
	}
	if m := secure("good."+zone, dns.TypeA); len(m.Answer) != 0 {
		t.Fatalf("NODATA: %v", m)
	}
	// One byte of the TXT data changed on the way: bogus, SERVFAIL.
	if m := resolve(t, resolver, "tampered."+zone, dns.TypeTXT); m.Rcode != dns.RcodeServerFailure || len(m.Answer) != 0 {
		t.Fatalf("tampered answer was accepted: %v", m)
	}

	// A resolver whose anchor names another key trusts nothing of the zone.
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	wrong := strings.Fields(ds)
	wrongKey := &dns.DNSKEY{Hdr: dns.RR_Header{Name: zone + ".", Rrtype: dns.TypeDNSKEY, Class: dns.ClassINET},
		Flags: 257, Protocol: 3, Algorithm: dns.ECDSAP256SHA256}
	wrongKey.PublicKey = publicKeyBase64(other)
	wrongDS := wrongKey.ToDS(dns.SHA256).String()
	if wrongDS == ds || len(wrong) == 0 {
		t.Fatal("the wrong anchor is the right one")
	}
	bad := startUnbound(t, wrongDS, s.Addr())
	if m := resolve(t, bad, "good."+zone, dns.TypeTXT); m.Rcode != dns.RcodeServerFailure {
		t.Fatalf("with a wrong trust anchor: %v", m)
	}
}

func publicKeyBase64(k *ecdsa.PrivateKey) string {
	pub, _ := k.PublicKey.ECDH()
	return toBase64(pub.Bytes()[1:])
}

// A ZSK rollover seen through unbound: every answer during the change
// validates, before the new key signs, after, and once the old key left.
func TestUnboundRollover(t *testing.T) {
	unboundPath(t)
	ctx := context.Background()
	db := storetest.NewDB(t, sqlstore.SQLite)
	s, signer, kr, ds := unboundServer(t, db)
	name := "rolling." + zone
	if err := db.PutChallengeTXT(ctx, name, "authz", "v1"); err != nil {
		t.Fatal(err)
	}
	resolver := startUnbound(t, ds, s.Addr())
	check := func(when string) {
		t.Helper()
		m := resolve(t, resolver, name, dns.TypeTXT)
		if m.Rcode != dns.RcodeSuccess || !m.AuthenticatedData || len(m.Answer) == 0 {
			t.Fatalf("%s: not secure: %v", when, m)
		}
	}
	check("before the rollover")
	// Waits of the DNSKEY TTL (2s) plus a margin, as `dcvaas dns
	// rollover` uses the production TTL plus the key reload.
	const wait = 3 * time.Second
	sched, err := dnssec.Rollover(ctx, db, kr, zone, time.Now(), wait, wait)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := dnssec.Load(ctx, db, kr, zone)
	if err != nil {
		t.Fatal(err)
	}
	signer.SetKeys(keys)
	end := sched.OldRemovedAt.Add(2 * time.Second)
	phases := map[string]bool{}
	for i := 0; time.Now().Before(end); i++ {
		now := time.Now()
		phase := "published"
		if !now.Before(sched.OldRemovedAt) {
			phase = "old key removed"
		} else if !now.Before(sched.SigningAt) {
			phase = "new key signing"
		}
		phases[phase] = true
		check(phase)
		time.Sleep(250 * time.Millisecond)
	}
	if len(phases) != 3 {
		t.Fatalf("phases seen: %v", phases)
	}
}

func toBase64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }
