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

// defaultCheckIntervals is how long dns_check waits after the n-th "not
// there yet": soon at first, when the customer is probably adding the
// record right now, then backing off to hourly.
var defaultCheckIntervals = []time.Duration{
	time.Minute, 2 * time.Minute, 5 * time.Minute, 10 * time.Minute, 30 * time.Minute, time.Hour,
}

// checkInterval returns the wait after the n-th (0-based) "not there yet";
// the last interval repeats.
func checkInterval(intervals []time.Duration, n int) time.Duration {
	return intervals[min(n, len(intervals)-1)]
}
