package dnsserver

import (
	"net"
	"testing"
	"time"
)

func TestRRLDecide(t *testing.T) {
	r := newRRL(200)
	now := time.Unix(1_800_000_000, 0)
	a := net.ParseIP("192.0.2.10")
	counts := map[rrlAction]int{}
	var after []rrlAction
	for i := range 210 {
		d := r.decide(a, now)
		counts[d]++
		if i >= 200 {
			after = append(after, d)
		}
	}
	if counts[rrlAllow] != 200 {
		t.Fatalf("allowed %d of 210 in one second, want 200", counts[rrlAllow])
	}
	// Slip 2: every second limited answer goes out truncated.
	for i, d := range after {
		want := rrlDrop
		if i%2 == 1 {
			want = rrlTruncate
		}
		if d != want {
			t.Fatalf("limited answer %d: %v, want %v (all: %v)", i, d, want, after)
		}
	}
	// Another address of the same /24 shares the limit; another /24 does not.
	if d := r.decide(net.ParseIP("192.0.2.200"), now); d == rrlAllow {
		t.Fatal("same /24 not limited")
	}
	if d := r.decide(net.ParseIP("192.0.3.10"), now); d != rrlAllow {
		t.Fatal("other /24 limited")
	}
	// The next second starts afresh.
	if d := r.decide(a, now.Add(time.Second)); d != rrlAllow {
		t.Fatal("limit not reset in the next second")
	}

	// IPv6: a /56 is one client.
	v6 := newRRL(1)
	if v6.decide(net.ParseIP("2001:db8:0:100::1"), now) != rrlAllow {
		t.Fatal("first IPv6 answer limited")
	}
	if v6.decide(net.ParseIP("2001:db8:0:1ff::2"), now) == rrlAllow {
		t.Fatal("same /56 not limited")
	}
	if v6.decide(net.ParseIP("2001:db8:0:200::1"), now) != rrlAllow {
		t.Fatal("other /56 limited")
	}
	if newRRL(0) != nil {
		t.Fatal("rate 0 does not turn limiting off")
	}
}
