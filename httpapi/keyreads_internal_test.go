package httpapi

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dcvaas/dcvaas"
	"github.com/dcvaas/dcvaas/delivery"
)

// slowKeyReads records key readings slowly, failing the first fail calls.
type slowKeyReads struct {
	calls, reads atomic.Int64
	fail         atomic.Int64
}

func (s *slowKeyReads) RecordKeyReads(_ context.Context, _ dcvaas.Actor, _ *dcvaas.Certificate, _ string, n int64) error {
	s.calls.Add(1)
	time.Sleep(20 * time.Millisecond)
	if s.fail.Add(-1) >= 0 {
		return errors.New("database is busy")
	}
	s.reads.Add(n)
	return nil
}

// TestKeyReadBurst: a burst of first readings of one certificate by one
// token writes one entry, not one each; none hands out the key before the
// entry is written; and a failed write lets the next reading try again.
func TestKeyReadBurst(t *testing.T) {
	store := &slowKeyReads{}
	store.fail.Store(1)
	l := &keyReadLog{store: store}
	actor := dcvaas.Actor{OrgID: "o", TokenID: "t"}
	b := &delivery.Bundle{Domain: &dcvaas.Domain{Name: "shop.example.com"}, Certificate: &dcvaas.Certificate{ID: "c"}}
	now := time.Now()
	var wg sync.WaitGroup
	var failed, early atomic.Int64
	for range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := l.record(context.Background(), actor, b, now)
			if err != nil {
				failed.Add(1)
			} else if store.reads.Load() == 0 {
				early.Add(1) // answered before any entry was written
			}
		}()
	}
	wg.Wait()
	if failed.Load() != 1 || early.Load() != 0 {
		t.Fatalf("%d readings failed (want the one whose write failed), %d answered before the entry", failed.Load(), early.Load())
	}
	if c := store.calls.Load(); c != 2 {
		t.Fatalf("%d writes for a burst of 50 readings, want 2 (one failed, one entry)", c)
	}
}
