package ratelimit

import (
	"net/http"
	"testing"
)

func TestClientIP(t *testing.T) {
	trusted, err := ParseProxies("10.0.0.0/8, 192.168.1.1")
	if err != nil || len(trusted) != 2 {
		t.Fatalf("ParseProxies: %v %v", trusted, err)
	}
	if _, err := ParseProxies("10.0.0.0/33"); err == nil {
		t.Fatal("bad CIDR accepted")
	}
	for _, c := range []struct {
		peer, xff string
		trusted   bool
		want      string
	}{
		{"203.0.113.9:4000", "", true, "203.0.113.9"},
		// An untrusted peer's header is ignored.
		{"203.0.113.9:4000", "1.2.3.4", true, "203.0.113.9"},
		{"10.1.2.3:4000", "1.2.3.4", false, "10.1.2.3"},
		// A trusted proxy: the rightmost address that is not a proxy.
		{"10.1.2.3:4000", "1.2.3.4", true, "1.2.3.4"},
		{"10.1.2.3:4000", "6.6.6.6, 1.2.3.4, 10.9.9.9", true, "1.2.3.4"},
		{"192.168.1.1:4000", "garbage, 1.2.3.4", true, "1.2.3.4"},
		{"10.1.2.3:4000", "1.2.3.4, garbage", true, "10.1.2.3"},
		{"[::ffff:10.1.2.3]:4000", "2001:db8::1", true, "2001:db8::1"},
	} {
		r, _ := http.NewRequest("GET", "/", nil)
		r.RemoteAddr = c.peer
		if c.xff != "" {
			r.Header.Set("X-Forwarded-For", c.xff)
		}
		var tr = trusted
		if !c.trusted {
			tr = nil
		}
		if got := ClientIP(r, tr); got != c.want {
			t.Errorf("%s via %q: %s, want %s", c.peer, c.xff, got, c.want)
		}
	}
	if Key("2001:db8:1:2:3:4:5:6") != "2001:db8:1:2::/64" || Key("1.2.3.4") != "1.2.3.4" {
		t.Fatal("keys")
	}
}
