package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// result summarizes one closed-loop load run.
type result struct {
	name     string
	requests int
	errors   int
	rate     float64 // successful requests per second
	p50, p99 time.Duration
}

// load runs `clients` goroutines that each send requests back to back for
// d, with newReq building each request (n counts requests across clients).
// A closed loop measures the rate the server sustains at that concurrency.
func load(ctx context.Context, client *http.Client, clients int, d time.Duration, wantStatus int, newReq func(n int64) *http.Request) result {
	var (
		n         atomic.Int64
		errs      atomic.Int64
		mu        sync.Mutex
		latencies []time.Duration
		wg        sync.WaitGroup
	)
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	start := time.Now()
	for range clients {
		wg.Go(func() {
			local := make([]time.Duration, 0, 4096)
			for ctx.Err() == nil {
				req := newReq(n.Add(1))
				t0 := time.Now()
				resp, err := client.Do(req)
				if err != nil {
					if ctx.Err() == nil {
						errs.Add(1)
					}
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != wantStatus {
					errs.Add(1)
					continue
				}
				local = append(local, time.Since(t0))
			}
			mu.Lock()
			latencies = append(latencies, local...)
			mu.Unlock()
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	slices.Sort(latencies)
	r := result{requests: len(latencies), errors: int(errs.Load()), rate: float64(len(latencies)) / elapsed.Seconds()}
	if len(latencies) > 0 {
		r.p50 = latencies[len(latencies)/2]
		r.p99 = latencies[len(latencies)*99/100]
	}
	return r
}

func (r result) row(baseline float64) string {
	ratio := ""
	if baseline > 0 {
		ratio = fmt.Sprintf("%.2f×", r.rate/baseline)
	}
	return fmt.Sprintf("| %s | %.0f | %s | %s | %s | %d |", r.name, r.rate, ms(r.p50), ms(r.p99), ratio, r.errors)
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d.Microseconds())/1000) }
