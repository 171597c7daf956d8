package main

import (
	"net"
	"strconv"
	"strings"

	"github.com/miekg/dns"
)

// parseNameservers reads DCVAAS_DNS_NS: comma-separated entries, each a
// nameserver name or name=ip; an address after a name=ip entry adds to
// that name ("ns1.example.com=192.0.2.1,2001:db8::1,ns2.example.net").
// A name inside the verify zone is reachable only through the addresses
// this server hands out for it, so it must have one (issue 13). Unset,
// the zone's one nameserver is ns1.<zone> at the DNS address's IP; when
// that listens on every address, there is no telling which, and resolvers
// can only reach it with glue from the parent zone: a warning says so.
func parseNameservers(v, dnsAddr, zone string, bad func(env, format string, args ...any), warnings *[]string) ([]string, map[string][]net.IP) {
	const env = "DCVAAS_DNS_NS"
	var names []string
	addrs := map[string][]net.IP{}
	last := ""
	for _, item := range splitList(v) {
		if ip := net.ParseIP(item); ip != nil {
			if last == "" {
				bad(env, "address %s follows no name=ip entry", item)
				continue
			}
			addrs[last] = append(addrs[last], ip)
			continue
		}
		name, ipText, withIP := strings.Cut(item, "=")
		name = strings.ToLower(strings.TrimSuffix(strings.TrimSpace(name), "."))
		if _, ok := dns.IsDomainName(name); !ok || !strings.Contains(name, ".") {
			bad(env, "%q is not a nameserver host name like ns1.example.com", name)
			last = ""
			continue
		}
		names, last = append(names, name), ""
		if withIP {
			ip := net.ParseIP(strings.TrimSpace(ipText))
			if ip == nil {
				bad(env, "%q is not an IP address (in %q)", ipText, item)
				continue
			}
			addrs[name] = append(addrs[name], ip)
			last = name
		}
	}
	for _, name := range names {
		if len(addrs[name]) == 0 && dns.IsSubDomain(dns.Fqdn(zone), dns.Fqdn(name)) && name != zone {
			bad(env, "nameserver %s is inside the verify zone and needs its address: %s=IP[,IP]", name, name)
		}
	}
	if len(names) == 0 {
		name := "ns1." + zone
		names = []string{name}
		host, _, _ := net.SplitHostPort(dnsAddr)
		if ip := net.ParseIP(host); ip != nil && !ip.IsUnspecified() {
			addrs[name] = []net.IP{ip}
		} else {
			*warnings = append(*warnings, "DCVAAS_DNS_NS is unset and DCVAAS_DNS_ADDR names no single address: "+name+
				" is served without an address; set DCVAAS_DNS_NS="+name+"=<public IP>")
		}
	}
	return names, addrs
}

// parseRRL reads DCVAAS_DNS_RRL: responses per second, 0 off.
func parseRRL(v string, bad func(env, format string, args ...any)) int {
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || n < 0 {
		bad("DCVAAS_DNS_RRL", "want responses per second (0 turns limiting off), got %q", v)
		return 0
	}
	return n
}
