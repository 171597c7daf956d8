package jobs

import (
	"context"
	"slices"
	"sync"
	"time"
)

// batcher combines the same database call from concurrent workers into one
// round — one statement and one commit for many jobs — the way River's
// completer batches its own completions. Batching is opportunistic: the
// caller that finds no round running runs one at once with whatever is
// queued, so an idle engine adds no delay, and calls arriving meanwhile
// form the next round, led by the first of them. Each caller leads at most
// one round, so nobody waits on a stream of others' work.
type batcher[Req, Res any] struct {
	max int
	run func(ctx context.Context, reqs []Req) ([]Res, error)

	mu      sync.Mutex
	queue   []*call[Req, Res]
	leading bool
}

type call[Req, Res any] struct {
	req  Req
	res  Res
	err  error
	done chan struct{} // closed when res/err are set
	lead chan struct{} // closed when this call is to run the next round
}

// do runs req in a round and returns its result.
func (b *batcher[Req, Res]) do(req Req) (Res, error) {
	c := &call[Req, Res]{req: req, done: make(chan struct{}), lead: make(chan struct{})}
	b.mu.Lock()
	b.queue = append(b.queue, c)
	if b.leading {
		b.mu.Unlock()
		select {
		case <-c.done:
			return c.res, c.err
		case <-c.lead:
		}
	} else {
		b.leading = true
		b.mu.Unlock()
	}
	// c leads: it is first in the queue (a round always takes the queue's
	// head, and leadership goes to the head), so this round includes it.
	b.mu.Lock()
	n := min(len(b.queue), b.max)
	round := slices.Clone(b.queue[:n])
	b.queue = b.queue[n:]
	b.mu.Unlock()
	b.exec(round)

	b.mu.Lock()
	if len(b.queue) > 0 {
		close(b.queue[0].lead)
	} else {
		b.leading = false
	}
	b.mu.Unlock()
	return c.res, c.err
}

// exec runs one round. If it fails, each call is run alone, so that one bad
// request cannot fail the others.
func (b *batcher[Req, Res]) exec(round []*call[Req, Res]) {
	reqs := make([]Req, len(round))
	for i, c := range round {
		reqs[i] = c.req
	}
	// The round serves many jobs, so none of their contexts may end it.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	res, err := b.run(ctx, reqs)
	cancel()
	if err != nil && len(round) > 1 {
		for _, c := range round {
			b.exec([]*call[Req, Res]{c})
		}
		return
	}
	for i, c := range round {
		if err != nil {
			c.err = err
		} else {
			c.res = res[i]
		}
		close(c.done)
	}
}
