// Package cabudget keeps dcvaas within the rate limits a CA publishes:
// new orders per ACME account, certificates per registered domain,
// duplicate certificates per name set, failed authorizations per name.
//
// A budget is a token bucket kept as one number, its theoretical arrival
// time (GCRA, the generic cell rate algorithm): a budget of C per W lets a
// token go every W/C and holds at most C at once. One number per budget
// makes taking a token one conditional UPDATE in SQL, atomic across every
// node of a cluster, and the same arithmetic in Go (Bucket) serves the
// simulation and the API's view of remaining tokens.
package cabudget

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Kind names one of the limits a CA publishes.
type Kind string

const (
	// Orders: new orders per ACME account.
	Orders Kind = "orders"
	// PerDomain: certificates per registered domain (public suffix + 1).
	PerDomain Kind = "per-domain"
	// Duplicate: certificates for exactly the same set of names.
	Duplicate Kind = "duplicate"
	// FailedAuthz: failed authorizations per name (and account).
	FailedAuthz Kind = "failed-authz"
)

// Kinds lists every kind, in the order budgets are taken.
var Kinds = []Kind{Orders, PerDomain, Duplicate, FailedAuthz}

// Limit is Count per Window; a zero Count means unlimited.
type Limit struct {
	Count  int
	Window time.Duration
}

// Unlimited reports whether the limit limits nothing.
func (l Limit) Unlimited() bool { return l.Count <= 0 || l.Window <= 0 }

// Interval is how often one token comes back: Window/Count, rounded up to
// the microsecond (the database's unit) so that rounding never lets more
// through than the CA allows.
func (l Limit) Interval() time.Duration {
	if l.Unlimited() {
		return 0
	}
	us := l.Window.Microseconds()
	n := int64(l.Count)
	return time.Duration((us+n-1)/n) * time.Microsecond
}

func (l Limit) String() string {
	if l.Unlimited() {
		return "unlimited"
	}
	return strconv.Itoa(l.Count) + "/" + formatWindow(l.Window)
}

func formatWindow(d time.Duration) string {
	s := d.String() // 3h0m0s, 10s, 1m30s
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// Limits are one CA's limits; a zero Limit is unlimited.
type Limits map[Kind]Limit

// LetsEncrypt are Let's Encrypt's published limits (its rate-limits page,
// checked 2026-08): 300 new orders per account per 3 h, 50 certificates
// per registered domain per 7 days, 5 duplicates per 7 days, 5 failed
// authorizations per name per account per hour.
var LetsEncrypt = Limits{
	Orders:      {Count: 300, Window: 3 * time.Hour},
	PerDomain:   {Count: 50, Window: 168 * time.Hour},
	Duplicate:   {Count: 5, Window: 168 * time.Hour},
	FailedAuthz: {Count: 5, Window: time.Hour},
}

// Default returns the limits of a CA whose limits are not configured:
// Let's Encrypt's for "letsencrypt", none for the others.
func Default(caName string) Limits {
	if caName == "letsencrypt" {
		out := Limits{}
		for k, v := range LetsEncrypt {
			out[k] = v
		}
		return out
	}
	return Limits{}
}

// Parse reads a limits setting: comma-separated kind=count/window, e.g.
// "orders=300/3h,per-domain=50/168h,duplicate=5/168h,failed-authz=5/1h".
// Kinds left out are unlimited; "none" (or an empty string) limits nothing;
// "kind=unlimited" says so for one kind.
func Parse(s string) (Limits, error) {
	out := Limits{}
	s = strings.TrimSpace(s)
	if s == "" || s == "none" {
		return out, nil
	}
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimSpace(part)
		k, v, ok := strings.Cut(part, "=")
		if !ok {
			return nil, fmt.Errorf("%q is not kind=count/window", part)
		}
		kind := Kind(strings.TrimSpace(k))
		if !validKind(kind) {
			return nil, fmt.Errorf("unknown limit %q (want orders, per-domain, duplicate or failed-authz)", kind)
		}
		if _, dup := out[kind]; dup {
			return nil, fmt.Errorf("limit %q given twice", kind)
		}
		v = strings.TrimSpace(v)
		if v == "unlimited" {
			out[kind] = Limit{}
			continue
		}
		c, w, ok := strings.Cut(v, "/")
		if !ok {
			return nil, fmt.Errorf("%s: %q is not count/window (e.g. 300/3h)", kind, v)
		}
		n, err := strconv.Atoi(strings.TrimSpace(c))
		if err != nil || n <= 0 || n > 1_000_000_000 {
			return nil, fmt.Errorf("%s: count %q is not a positive whole number", kind, c)
		}
		d, err := time.ParseDuration(strings.TrimSpace(w))
		if err != nil || d < time.Second || d > 366*24*time.Hour {
			return nil, fmt.Errorf("%s: window %q is not a duration between 1s and 366 days (e.g. 3h, 168h)", kind, w)
		}
		out[kind] = Limit{Count: n, Window: d}
	}
	return out, nil
}

func validKind(k Kind) bool {
	for _, v := range Kinds {
		if v == k {
			return true
		}
	}
	return false
}

// String formats the limits as Parse reads them.
func (ls Limits) String() string {
	var parts []string
	for _, k := range Kinds {
		if l, ok := ls[k]; ok && !l.Unlimited() {
			parts = append(parts, string(k)+"="+l.String())
		}
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ",")
}

// WindowString is the window as Parse reads it: "3h", "168h", "10s".
func (l Limit) WindowString() string { return formatWindow(l.Window) }
