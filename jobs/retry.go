package jobs

import (
	"math/rand/v2"
	"time"

	"github.com/riverqueue/river/rivertype"
)

// Backoff is exponential backoff with jitter: attempt n waits
// Base·2^(n-1), capped at Max, then moved by up to ±Jitter of itself so that
// jobs failing together (a CA outage) do not all come back together.
//
// The engine uses it for retries of failed jobs, which it schedules itself;
// River uses another one (riverRetry, as its ClientRetryPolicy) for the only
// retries River still makes: after a crash rescue or when recording an
// outcome failed.
type Backoff struct {
	Base   time.Duration
	Max    time.Duration
	Jitter float64 // 0.2 = ±20%
}

// Delay returns the wait after the attempt-th failure (1-based).
func (b Backoff) Delay(attempt int) time.Duration {
	d := b.Base
	for i := 1; i < attempt && d < b.Max; i++ {
		d *= 2
	}
	d = min(d, b.Max)
	if b.Jitter > 0 {
		d = time.Duration(float64(d) * (1 + b.Jitter*(2*rand.Float64()-1)))
	}
	return d
}

// NextRetry implements river.ClientRetryPolicy.
func (b Backoff) NextRetry(job *rivertype.JobRow) time.Time {
	return time.Now().Add(b.Delay(job.Attempt))
}

// maxCAWait bounds how far out a CA's "try again then" may push a retry (as
// maxARIRetry bounds its renewal-info Retry-After): a bogus date must not
// park a job for good.
const maxCAWait = 7 * 24 * time.Hour

// retryDelay is the wait after the attempt-th failure of a job whose error
// may say when trying again makes sense (retryAt: a CA's Retry-After, the
// end of a rate-limit window, every allowed CA backing off; zero when it
// does not say).
//
// The later of the two wins. Retrying before the CA's time only spends an
// attempt on a certain refusal (and, at Let's Encrypt, counts against the
// limit again); retrying before our own backoff when the CA's time is
// sooner would defeat the backoff that paces failures the CA did not time
// (a half-broken CA saying "retry in 1s" on every request). A CA's time
// gets a small jitter of its own, only ever later — up to a tenth of the
// wait, at most a minute — so that the many jobs one rate limit held back
// do not all return in the same second; the backoff already has its jitter.
func (e *Engine) retryDelay(attempt int, retryAt, now time.Time) time.Duration {
	d := e.backoff.Delay(attempt)
	if retryAt.IsZero() {
		return d
	}
	wait := min(retryAt.Sub(now), maxCAWait)
	if wait <= d {
		return d
	}
	if j := min(wait/10, time.Minute); j > 0 {
		wait += rand.N(j)
	}
	return wait
}

// defaultCheckIntervals is how long dns_check waits after the n-th "not
// there yet": soon at first, when the customer is probably adding the
// record right now, then backing off to hourly.
var defaultCheckIntervals = []time.Duration{
	time.Minute, 2 * time.Minute, 5 * time.Minute, 10 * time.Minute, 30 * time.Minute, time.Hour,
}

// defaultAfterChangeIntervals are the waits of a check dcvaas queued right
// after it created the record itself: a provider's API answers before its
// nameservers serve the record, so the first look often misses it. About
// 80 seconds of looks, then defaultCheckIntervals.
var defaultAfterChangeIntervals = []time.Duration{
	time.Second, time.Second, 2 * time.Second, 2 * time.Second, 3 * time.Second, 5 * time.Second,
	5 * time.Second, 10 * time.Second, 10 * time.Second, 15 * time.Second, 30 * time.Second,
}

// checkInterval returns the wait after the n-th (0-based) "not there yet";
// the last interval repeats.
func checkInterval(intervals []time.Duration, n int) time.Duration {
	return intervals[min(n, len(intervals)-1)]
}
