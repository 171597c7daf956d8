package main

import (
	"net"
	"slices"
	"strings"
	"testing"
)

func TestDNSNameserverConfig(t *testing.T) {
	cfg, err := parseACMEConfig(t, map[string]string{"DCVAAS_VERIFY_ZONE": "verify.example.net",
		"DCVAAS_DNS_NS":  "ns1.verify.example.net=192.0.2.1,2001:db8::1, ns2.example.org., ns3.verify.example.net=192.0.2.3",
		"DCVAAS_DNS_RRL": "0"})
	if err != nil {
		t.Fatal(err)
	}
	a := cfg.ACME
	if !slices.Equal(a.NS, []string{"ns1.verify.example.net", "ns2.example.org", "ns3.verify.example.net"}) || a.RRL != 0 {
		t.Fatalf("NS %v, RRL %d", a.NS, a.RRL)
	}
	want := map[string][]string{"ns1.verify.example.net": {"192.0.2.1", "2001:db8::1"}, "ns3.verify.example.net": {"192.0.2.3"}}
	if len(a.NSAddrs) != len(want) {
		t.Fatalf("addresses %v", a.NSAddrs)
	}
	for name, ips := range want {
		if got := ipStrings(a.NSAddrs[name]); !slices.Equal(got, ips) {
			t.Fatalf("%s: %v, want %v", name, got, ips)
		}
	}

	// Defaults: rate limiting at 200/s, ns1.<zone> at the DNS address.
	cfg, err = parseACMEConfig(t, map[string]string{"DCVAAS_VERIFY_ZONE": "verify.example.net", "DCVAAS_DNS_ADDR": "192.0.2.9:53"})
	if err != nil {
		t.Fatal(err)
	}
	if a := cfg.ACME; a.RRL != 200 || !slices.Equal(a.NS, []string{"ns1.verify.example.net"}) ||
		!slices.Equal(ipStrings(a.NSAddrs["ns1.verify.example.net"]), []string{"192.0.2.9"}) {
		t.Fatalf("defaults: NS %v %v, RRL %d", a.NS, a.NSAddrs, a.RRL)
	}
	// Listening on every address: no telling which; a warning says so.
	cfg, err = parseACMEConfig(t, map[string]string{"DCVAAS_VERIFY_ZONE": "verify.example.net", "DCVAAS_DNS_ADDR": "0.0.0.0:53"})
	if err != nil {
		t.Fatal(err)
	}
	if a := cfg.ACME; len(a.NSAddrs) != 0 || !slices.ContainsFunc(a.Warnings, func(w string) bool { return strings.Contains(w, "DCVAAS_DNS_NS") }) {
		t.Fatalf("wildcard address: %v, warnings %v", a.NSAddrs, a.Warnings)
	}

	for _, bad := range []map[string]string{
		// In the zone, no address: nobody could resolve it.
		{"DCVAAS_DNS_NS": "ns1.verify.example.net,ns2.example.org"},
		{"DCVAAS_DNS_NS": "ns1.verify.example.net=not-an-ip"},
		{"DCVAAS_DNS_NS": "192.0.2.1,ns2.example.org"},
		{"DCVAAS_DNS_RRL": "-1"},
		{"DCVAAS_DNS_RRL": "lots"},
	} {
		bad["DCVAAS_VERIFY_ZONE"] = "verify.example.net"
		_, err := parseACMEConfig(t, bad)
		name := "DCVAAS_DNS_NS"
		if _, ok := bad["DCVAAS_DNS_RRL"]; ok {
			name = "DCVAAS_DNS_RRL"
		}
		if err == nil || !strings.Contains(err.Error(), name+":") {
			t.Errorf("%v: error %v does not name %s", bad, err, name)
		}
	}
}

func ipStrings(ips []net.IP) []string {
	var out []string
	for _, ip := range ips {
		out = append(out, ip.String())
	}
	return out
}
