package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/dcvaas/dcvaas/acme/acmetest"
	"github.com/dcvaas/dcvaas/dnsserver"
	"github.com/dcvaas/dcvaas/sqlstore/storetest"
)

// dnsDS runs `dcvaas dns ds` and parses the DS record it prints.
func dnsDS(t *testing.T, vars map[string]string) *dns.DS {
	t.Helper()
	var out, errOut bytes.Buffer
	if err := run(context.Background(), []string{"dns", "ds"}, env(vars), &out, &errOut); err != nil {
		t.Fatalf("dns ds: %v\n%s", err, errOut.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 1 {
		t.Fatalf("dns ds printed %q", out.String())
	}
	rr, err := dns.NewRR(lines[0])
	if err != nil {
		t.Fatalf("dns ds printed %q: %v", lines[0], err)
	}
	ds, ok := rr.(*dns.DS)
	if !ok || ds.Hdr.Name != issuanceZone+"." || ds.Algorithm != dns.ECDSAP256SHA256 || ds.DigestType != dns.SHA256 || len(ds.Digest) != 64 {
		t.Fatalf("dns ds printed %q", lines[0])
	}
	return ds
}

// TestDNSCommands: `dcvaas dns ds` creates the zone's keys once and prints
// the same DS every time; `dcvaas dns rollover` publishes a new ZSK without
// changing it, and refuses a second rollover while the first runs; serve
// with DCVAAS_DNSSEC=true signs with those keys.
func TestDNSCommands(t *testing.T) {
	dir := t.TempDir()
	vars := map[string]string{
		"DCVAAS_DATABASE_URL": filepath.Join(dir, "dcvaas.db"),
		"DCVAAS_VERIFY_ZONE":  issuanceZone,
		"DCVAAS_LOG_LEVEL":    "warn",
	}
	first := dnsDS(t, vars)
	if again := dnsDS(t, vars); again.String() != first.String() {
		t.Fatalf("second dns ds: %v, first %v", again, first)
	}
	var out, errOut bytes.Buffer
	if err := run(context.Background(), []string{"dns", "rollover"}, env(vars), &out, &errOut); err != nil {
		t.Fatalf("dns rollover: %v\n%s", err, errOut.String())
	}
	if !strings.Contains(out.String(), "published") || !strings.Contains(out.String(), "signs from") || !strings.Contains(out.String(), "does not change") {
		t.Fatalf("dns rollover printed %q", out.String())
	}
	out.Reset()
	err := run(context.Background(), []string{"dns", "rollover"}, env(vars), &out, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "in progress") {
		t.Fatalf("second rollover: %v", err)
	}
	if after := dnsDS(t, vars); after.String() != first.String() {
		t.Fatalf("the DS changed with a ZSK rollover: %v", after)
	}
	if err := run(context.Background(), []string{"dns"}, env(vars), io.Discard, io.Discard); err == nil {
		t.Fatal("dns without a subcommand succeeded")
	}

	// serve signs with the stored keys: the KSK in its DNSKEY RRset is the
	// one the DS names, and the ZSK being rolled in is published.
	vars["DCVAAS_DNSSEC"] = "true"
	_, dnsAddr := startServeDNS(t, vars)
	m := new(dns.Msg)
	m.SetQuestion(issuanceZone+".", dns.TypeDNSKEY)
	m.SetEdns0(1232, true)
	in, err := dns.Exchange(m, dnsAddr)
	if err != nil {
		t.Fatal(err)
	}
	var keys []*dns.DNSKEY
	var sig *dns.RRSIG
	var rrset []dns.RR
	for _, rr := range in.Answer {
		switch r := rr.(type) {
		case *dns.DNSKEY:
			keys = append(keys, r)
			rrset = append(rrset, r)
		case *dns.RRSIG:
			sig = r
		}
	}
	if len(keys) != 3 || sig == nil {
		t.Fatalf("DNSKEY during a rollover: %v", in)
	}
	matched := false
	for _, k := range keys {
		if k.Flags == 257 && strings.EqualFold(k.ToDS(dns.SHA256).Digest, first.Digest) {
			matched = true
			if err := sig.Verify(k, rrset); err != nil {
				t.Fatalf("DNSKEY RRSIG: %v", err)
			}
		}
	}
	if !matched {
		t.Fatalf("no served KSK matches the DS %v: %v", first, in)
	}
}

// TestIssuanceDNSSEC issues a certificate through a signed verify zone: the
// CA (Pebble) validates through Debian's unbound, which holds the zone's
// DS as trust anchor, so a challenge answer that did not validate would
// fail the order.
func TestIssuanceDNSSEC(t *testing.T) {
	if testing.Short() {
		t.Skip("issues a real certificate from an in-process Pebble")
	}
	unbound, err := exec.LookPath("unbound")
	if err != nil {
		if _, err := os.Stat("/usr/sbin/unbound"); err != nil {
			t.Skip("unbound is not installed: apt-get install unbound (CI installs it, .ci/run)")
		}
		unbound = "/usr/sbin/unbound"
	}
	dbURL := storetest.URL(t, "sqlite")
	pc, ln, err := dnsserver.ListenBoth("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	resolverAddr := pc.LocalAddr().String()
	pc.Close()
	ln.Close()
	w := newIssuanceWorldResolver(t, dbURL, resolverAddr)
	w.vars["DCVAAS_DNSSEC"] = "true"
	token, _ := bootstrapOrg(t, w.vars)
	ds := dnsDS(t, w.vars)
	base, dnsAddr := startServeDNS(t, w.vars)
	if dnsAddr == "" {
		t.Fatal("serve started no DNS server")
	}
	w.dns.SetVerifyAddr(dnsAddr) // dcvaas's own CNAME checks
	_, customerAddr := acmetest.CustomerDNS(t)
	startValidatingResolver(t, unbound, resolverAddr, ds.String(), map[string]string{issuanceZone: dnsAddr, "example.com": customerAddr})

	// The resolver the CA uses finds the zone secure.
	q := new(dns.Msg)
	q.SetQuestion(issuanceZone+".", dns.TypeDNSKEY)
	q.SetEdns0(1232, true)
	if in, err := dns.Exchange(q, resolverAddr); err != nil || in.Rcode != dns.RcodeSuccess || !in.AuthenticatedData {
		t.Fatalf("the CA's resolver does not validate the zone: %v, %v", in, err)
	}

	name := "signed-" + randLabel(5) + ".example.com"
	id := addDomain(t, w.dns, base, token, name)["id"].(string)
	if status, job := call(t, "POST", base+"/api/domains/"+id+"/verify", token, nil); status != http.StatusAccepted {
		t.Fatalf("verify: %d %v", status, job)
	}
	waitDomain(t, base, token, id, 90*time.Second, isActive)
}

// startValidatingResolver runs unbound at addr, validating with anchor
// (a DS record) and asking stubs (zone → host:port) for their zones.
func startValidatingResolver(t *testing.T, bin, addr, anchor string, stubs map[string]string) {
	t.Helper()
	dir := t.TempDir()
	host, port, _ := net.SplitHostPort(addr)
	var b strings.Builder
	fmt.Fprintf(&b, `server:
	interface: %s
	port: %s
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
remote-control:
	control-enable: no
`, host, port, dir, filepath.Join(dir, "unbound.pid"), strings.Join(strings.Fields(anchor), " "))
	for zone, server := range stubs {
		h, p, _ := net.SplitHostPort(server)
		fmt.Fprintf(&b, "stub-zone:\n\tname: %q\n\tstub-addr: %s@%s\n", zone, h, p)
	}
	path := filepath.Join(dir, "unbound.conf")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	cmd := exec.Command(bin, "-d", "-c", path)
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("unbound:\n%s", logs.String())
		}
	})
	deadline := time.Now().Add(15 * time.Second)
	for {
		m := new(dns.Msg)
		m.SetQuestion("ready.invalid.", dns.TypeA)
		c := &dns.Client{Timeout: 300 * time.Millisecond}
		if _, _, err := c.Exchange(m, addr); err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("unbound did not start:\n%s", logs.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}
