package cabudget

import "time"

// Bucket is one budget's state: its theoretical arrival time (TAT). The
// bucket is full when TAT is not after now; each token taken moves TAT one
// Interval later; a token may be taken while the new TAT stays within one
// Window of now. This is the arithmetic the SQL store runs in its UPDATE.
type Bucket struct {
	Limit Limit
	TAT   time.Time
}

// Take takes one token at now and reports whether there was one.
func (b *Bucket) Take(now time.Time) bool {
	if b.Limit.Unlimited() {
		return true
	}
	next := later(b.TAT, now).Add(b.Limit.Interval())
	if next.After(now.Add(b.Limit.Window)) {
		return false
	}
	b.TAT = next
	return true
}

// Available is the earliest moment a token can be taken (now when one can
// be taken now).
func (b Bucket) Available(now time.Time) time.Time {
	return Available(b.Limit, b.TAT, now)
}

// Available is the earliest moment a budget of limit l whose TAT is tat
// has a token.
func Available(l Limit, tat, now time.Time) time.Time {
	if l.Unlimited() {
		return now
	}
	at := tat.Add(l.Interval() - l.Window)
	if at.Before(now) {
		return now
	}
	return at
}

// Remaining is how many tokens a budget of limit l with TAT tat holds at
// now.
func Remaining(l Limit, tat, now time.Time) int {
	if l.Unlimited() {
		return 0
	}
	used := later(tat, now).Sub(now)
	free := l.Window - used
	if free < 0 {
		return 0
	}
	return min(int(free/l.Interval()), l.Count)
}

// NextRefill is when the next token comes back, zero when the bucket is
// full.
func NextRefill(l Limit, tat, now time.Time) time.Time {
	if l.Unlimited() || !tat.After(now) {
		return time.Time{}
	}
	used := tat.Sub(now)
	part := used % l.Interval()
	if part == 0 {
		part = l.Interval()
	}
	return now.Add(part)
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
