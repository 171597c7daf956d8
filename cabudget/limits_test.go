package cabudget

import (
	"context"
	"testing"
	"time"
)

func TestParse(t *testing.T) {
	got, err := Parse("orders=300/3h, per-domain=50/168h,duplicate=5/168h,failed-authz=5/1h")
	if err != nil {
		t.Fatal(err)
	}
	if got.String() != LetsEncrypt.String() {
		t.Errorf("Parse = %s, want %s", got, LetsEncrypt)
	}
	if got[Orders].Interval() != 36*time.Second {
		t.Errorf("orders interval = %s, want 36s", got[Orders].Interval())
	}
	for _, s := range []string{"", "none"} {
		if l, err := Parse(s); err != nil || len(l) != 0 {
			t.Errorf("Parse(%q) = %v, %v; want no limits", s, l, err)
		}
	}
	for _, bad := range []string{"orders", "orders=300", "orders=0/3h", "orders=-1/3h", "orders=x/3h", "orders=3/0s",
		"orders=3/3", "bogus=1/1h", "orders=1/1h,orders=2/1h", "orders=1/9999h"} {
		if _, err := Parse(bad); err == nil {
			t.Errorf("Parse(%q) accepted", bad)
		}
	}
	if d := Default("letsencrypt"); d[Orders].Count != 300 || d[PerDomain].Count != 50 {
		t.Errorf("Default(letsencrypt) = %s", d)
	}
	if d := Default("zerossl"); len(d) != 0 {
		t.Errorf("Default(zerossl) = %s, want none", d)
	}
}

func TestBucket(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	b := Bucket{Limit: Limit{Count: 3, Window: 3 * time.Minute}}
	for i := range 3 {
		if !b.Take(t0) {
			t.Fatalf("token %d refused", i+1)
		}
	}
	if b.Take(t0) {
		t.Fatal("fourth token taken at once")
	}
	if r := Remaining(b.Limit, b.TAT, t0); r != 0 {
		t.Errorf("remaining = %d, want 0", r)
	}
	if at := b.Available(t0); !at.Equal(t0.Add(time.Minute)) {
		t.Errorf("available at %s, want +1m", at)
	}
	if at := NextRefill(b.Limit, b.TAT, t0); !at.Equal(t0.Add(time.Minute)) {
		t.Errorf("next refill %s, want +1m", at)
	}
	if b.Take(t0.Add(59 * time.Second)) {
		t.Error("token taken before it came back")
	}
	if !b.Take(t0.Add(time.Minute)) {
		t.Error("token refused after it came back")
	}
	if r := Remaining(b.Limit, b.TAT, t0.Add(time.Hour)); r != 3 {
		t.Errorf("remaining after an hour = %d, want 3", r)
	}
	if at := NextRefill(b.Limit, b.TAT, t0.Add(time.Hour)); !at.IsZero() {
		t.Errorf("full bucket refills at %s", at)
	}
	// Let's Encrypt's own semantics: a burst of Count, then one token
	// every Interval ("refills at a rate of 1 order every 36 seconds").
	b = Bucket{Limit: Limit{Count: 300, Window: 3 * time.Hour}}
	var taken []time.Time
	for s := range 6 * 3600 {
		now := t0.Add(time.Duration(s) * time.Second)
		for b.Take(now) {
			taken = append(taken, now)
		}
	}
	if len(taken) != 300+599 {
		t.Fatalf("%d tokens in 6h, want 300 at once and one every 36s after (899)", len(taken))
	}
	for i := 301; i < len(taken); i++ {
		if d := taken[i].Sub(taken[i-1]); d < 36*time.Second {
			t.Fatalf("tokens %d and %d only %s apart (%s, %s)", i-1, i, d, taken[i-1].Sub(t0), taken[i].Sub(t0))
		}
	}
}

func TestRegisteredDomain(t *testing.T) {
	for in, want := range map[string]string{
		"shop.example.com":   "example.com",
		"*.shop.example.com": "example.com",
		"a.b.example.co.uk":  "example.co.uk",
		"example.org":        "example.org",
		"foo.bar.github.io":  "bar.github.io",
		"Shop.Example.NET.":  "example.net",
	} {
		if got := RegisteredDomain(in); got != want {
			t.Errorf("RegisteredDomain(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestMemoryAllOrNone(t *testing.T) {
	ctx := context.Background()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	lim := Limits{Orders: {Count: 10, Window: time.Hour}, PerDomain: {Count: 1, Window: time.Hour}}
	m := NewMemory()
	if w, _ := m.TakeBudgets(ctx, OrderSpends("le", lim, 1, []string{"a.example.com"}), t0, false); w != nil {
		t.Fatal(w)
	}
	w, _ := m.TakeBudgets(ctx, OrderSpends("le", lim, 1, []string{"b.example.com"}), t0, false)
	if w == nil || w.For != "le per-domain budget of example.com" || !w.Until.Equal(t0.Add(time.Hour)) {
		t.Fatalf("wait = %v", w)
	}
	if w, _ := m.TakeBudgets(ctx, OrderSpends("le", lim, 1, []string{"b.example.com"}), t0, true); w != nil {
		t.Fatalf("exempt order waits: %v", w)
	}
	st, _ := m.ListBudgets(ctx, Orders)
	if len(st) != 1 || st[0].Taken != 1 || st[0].Exempt != 1 || st[0].Remaining(t0) != 9 {
		t.Fatalf("orders budget = %+v (the refused order must take nothing)", st)
	}
}
