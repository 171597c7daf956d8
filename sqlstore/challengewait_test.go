package sqlstore_test

import (
	"context"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/dcvaas/dcvaas/sqlstore"
	"github.com/dcvaas/dcvaas/sqlstore/storetest"
)

// On PostgreSQL a new challenge value is written only once every live
// node's copy holds it: another node whose copy takes 300 ms to apply has
// the value when PutChallengeTXT returns (a CA may ask that node at once).
// A node that stopped is no longer waited for.
func TestPutChallengeWaitsForEveryNode(t *testing.T) {
	if os.Getenv(storetest.PostgresEnv) == "" {
		storetest.SkippedPostgres()
		t.Skipf("%s is unset: needs PostgreSQL", storetest.PostgresEnv)
	}
	url := storetest.URL(t, sqlstore.Postgres)
	writer := storetest.Open(t, url)
	other := storetest.Open(t, url)

	var mu sync.Mutex
	var served map[string][]string
	loaded := make(chan struct{}, 1)
	// The node records the copy it serves (dns_feed_nodes) after handing
	// it to set and confirm; a second confirm (a heartbeat) comes after
	// that record, so from then on publishers know the node.
	confirmed := make(chan struct{}, 8)
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		other.FollowChallenges(ctx, func(records map[string][]string) {
			time.Sleep(300 * time.Millisecond) // a slow node
			mu.Lock()
			served = records
			mu.Unlock()
			select {
			case loaded <- struct{}{}:
			default:
			}
		}, func(time.Time) {
			select {
			case confirmed <- struct{}{}:
			default:
			}
		})
	}()
	select {
	case <-loaded:
	case <-time.After(30 * time.Second):
		t.Fatal("the other node's copy never loaded")
	}
	for range 2 {
		select {
		case <-confirmed:
		case <-time.After(30 * time.Second):
			t.Fatal("the other node never confirmed its copy")
		}
	}

	bg := context.Background()
	start := time.Now()
	if err := writer.PutChallengeTXT(bg, "w1.verify.example", "authz", "v1"); err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	mu.Lock()
	got := served["w1.verify.example"]
	mu.Unlock()
	if !slices.Equal(got, []string{"v1"}) {
		t.Fatalf("PutChallengeTXT returned after %s, the other node serving %q", took, got)
	}
	t.Logf("PutChallengeTXT returned %s after the write, once the slow node served it", took.Round(time.Millisecond))

	// Stopped: its row is gone, nobody is waited for.
	stop()
	<-done
	start = time.Now()
	if err := writer.PutChallengeTXT(bg, "w2.verify.example", "authz", "v2"); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("PutChallengeTXT waited %s with no other node running", took)
	}
}
