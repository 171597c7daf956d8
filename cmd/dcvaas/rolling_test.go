package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/dcvaas/dcvaas/sqlstore"
	"github.com/dcvaas/dcvaas/sqlstore/storetest"
)

// TestRollingRestart restarts the three nodes of a cluster one at a time
// with SIGTERM (each back on its address and DCVAAS_NODE_ID before the
// next goes) under a steady API load of about 200 requests a second, and
// no request fails.
//
// The load balancer modelled here (healthLB) is what HAProxy, nginx
// upstreams or a cloud load balancer do with a health check:
//   - it polls every node's GET /readyz every 100 ms (2 s timeout) and
//     sends requests round-robin to the nodes in service: a node answering
//     anything but 200 leaves at once, one not answering twice in a row
//     leaves too, and one answering 200 comes back; when none is in
//     service it tries them all in turn ("fail open", as cloud load
//     balancers do);
//   - a node whose connection is refused (the request never reached it:
//     its listener is closed, or not open yet) is marked down and the
//     request goes to the next ready node — the only retry there is;
//   - anything else is the request's result: a reset or a timeout after
//     the request was sent, or any 5xx, counts as a failed request;
//   - like nginx's default upstream, it opens a connection per request
//     (no keep-alive to the nodes).
//
// DCVAAS_SHUTDOWN_DRAIN (10 s) is longer than the time the health check
// takes to notice a node that no longer answers (2 × (100 ms + 2 s)), so the balancer has taken a stopping node out
// before its listener closes; the test checks that /readyz did turn 503 while the node still
// answered. Jobs running at SIGTERM (DNS checks held 300 ms by a slow
// resolver) finish: no attempt was interrupted, every start has its
// outcome.
func TestRollingRestart(t *testing.T) {
	const loadRate = 200 // requests a second
	if os.Getenv(storetest.PostgresEnv) == "" {
		storetest.SkippedPostgres()
		t.Skipf("%s is unset: needs PostgreSQL", storetest.PostgresEnv)
	}
	if testing.Short() {
		t.Skip("restarts three dcvaas processes under load (~40s)")
	}
	dbURL := storetest.URL(t, sqlstore.Postgres)
	common := map[string]string{
		"DCVAAS_DATABASE_URL":     dbURL,
		"DCVAAS_ENCRYPTION_KEY":   strings.Repeat("ab", 32),
		"DCVAAS_VERIFY_ZONE":      "verify.example",
		"DCVAAS_RESOLVERS":        newSlowResolver(t, 300*time.Millisecond), // cluster_test.go
		"DCVAAS_RATE_LIMIT":       "1000000",
		"DCVAAS_SHUTDOWN_DRAIN":   "10s", // > healthFall × (healthInterval + healthTimeout), with room for a loaded machine
		"DCVAAS_SHUTDOWN_TIMEOUT": "20s",
		"DCVAAS_LOG_FORMAT":       "json",
		"DCVAAS_DNS_ADDR":         "127.0.0.1:0",
		"DCVAAS_ACME_CAS":         "nowhere",
		// Loopback only: a CA that is not there (no job gets that far).
		"DCVAAS_ACME_NOWHERE_DIRECTORY": "https://127.0.0.1:1/directory",
	}
	token, _ := bootstrapOrg(t, common) // also migrates
	bin, _ := selfBinary(nil)
	var addrs [3]string
	nodeVars := func(i int) []string {
		var vars []string
		for k, v := range common {
			vars = append(vars, k+"="+v)
		}
		vars = append(vars, fmt.Sprintf("DCVAAS_NODE_ID=node-%d", i), "DCVAAS_HTTP_ADDR="+addrs[i])
		_, vars = selfBinary(vars)
		return vars
	}
	var nodes [3]*binary
	for i := range nodes {
		addrs[i] = freeTCPAddr(t)
		nodes[i] = startBinary(t, bin, nodeVars(i))
	}
	lb := newHealthLB(t, addrs[:])

	// ~200 requests a second: lists and reads, and every tenth a new
	// domain, whose DNS check is a job that runs on some node.
	stopLoad := make(chan struct{})
	var sent, failed atomic.Int64
	var failures sync.Map
	var loadDone sync.WaitGroup
	loadDone.Go(func() {
		// Paced by the clock, not by ticks (a loaded machine skips
		// some): each tick sends what is due at 200 a second.
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		var inflight sync.WaitGroup
		defer inflight.Wait()
		begin := time.Now()
		for k := 0; ; k++ {
			if float64(k) >= time.Since(begin).Seconds()*loadRate {
				select {
				case <-stopLoad:
					return
				case <-tick.C:
				}
				k--
				continue
			}
			sent.Add(1)
			inflight.Go(func() {
				var err error
				switch k % 10 {
				case 0:
					err = lb.do("POST", "/api/domains", token, fmt.Sprintf(`{"domainName":"r%06d.example.com"}`, k), http.StatusCreated)
				case 5:
					err = lb.do("GET", "/healthz", "", "", http.StatusOK)
				default:
					err = lb.do("GET", "/api/domains?limit=5", token, "", http.StatusOK)
				}
				if err != nil {
					failed.Add(1)
					failures.Store(err.Error(), true)
				}
			})
		}
	})
	time.Sleep(3 * time.Second)

	started := time.Now()
	for i := range nodes {
		sawUnready := lb.watch(i)
		if err := nodes[i].cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		termAt := time.Now()
		select {
		case err := <-nodes[i].done:
			if err != nil {
				t.Fatalf("node %d after SIGTERM: %v\n%s", i, err, nodes[i].logs.String())
			}
		case <-time.After(60 * time.Second):
			t.Fatalf("node %d did not stop\n%s", i, nodes[i].logs.String())
		}
		stopped := time.Since(termAt)
		// /readyz said 503 while the node still answered: before the
		// listener closed.
		if at := sawUnready(); at.IsZero() {
			lb.mu.Lock()
			t.Errorf("node %d: the balancer never saw /readyz unready before the node went (SIGTERM at %s; last checks %q)\n%s",
				i, termAt.Format("15:04:05.000"), lb.last, drainLog(nodes[i].logs.String()))
			lb.mu.Unlock()
		} else {
			t.Logf("node %d: unready %s after SIGTERM, exited after %s", i, at.Sub(termAt).Round(time.Millisecond), stopped.Round(time.Millisecond))
		}
		logs := nodes[i].logs.String()
		if d, s := strings.Index(logs, `"draining`), strings.Index(logs, `"shutting down"`); d < 0 || s < d {
			t.Errorf("node %d: no drain before the shutdown in its log", i)
		}
		nodes[i] = startBinary(t, bin, nodeVars(i))
		lb.waitReady(t, i)
		time.Sleep(time.Second)
	}
	took := time.Since(started)
	close(stopLoad)
	loadDone.Wait()
	// All at once now: each drains for DCVAAS_SHUTDOWN_DRAIN.
	for _, nd := range nodes {
		nd.cmd.Process.Signal(syscall.SIGTERM)
	}
	for i, nd := range nodes {
		select {
		case err := <-nd.done:
			if err != nil {
				t.Fatalf("node %d after SIGTERM: %v\n%s", i, err, nd.logs.String())
			}
		case <-time.After(60 * time.Second):
			t.Fatalf("node %d did not stop\n%s", i, nd.logs.String())
		}
	}

	n, f := sent.Load(), failed.Load()
	t.Logf("%d requests in %s of load (%.0f/s); %d failed; %d sent again after a refused connection; restarts took %s",
		n, (took + 4*time.Second).Round(time.Second), float64(n)/(took.Seconds()+4), f, lb.retried.Load(), took.Round(time.Millisecond))
	if f != 0 {
		failures.Range(func(k, _ any) bool { t.Error(k); return true })
		t.Fatalf("%d of %d requests failed", f, n)
	}
	if float64(n)/(took.Seconds()+4) < 0.9*loadRate {
		t.Errorf("only %d requests sent in %s", n, took)
	}

	// Every job that started finished its attempt: none interrupted, none
	// left running.
	db := storetest.Open(t, dbURL)
	rows, err := db.SQL().Query(`SELECT entity_id, action, details::text FROM audit_logs WHERE entity_type = 'job' ORDER BY created_at, id`)
	if err != nil {
		t.Fatal(err)
	}
	audit := map[string][]auditEntry{}
	for rows.Next() {
		var id, details string
		var e auditEntry
		if err := rows.Scan(&id, &e.action, &details); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal([]byte(details), &e.details); err != nil {
			t.Fatal(err)
		}
		audit[id] = append(audit[id], e)
	}
	rows.Close()
	ran := 0
	for id, entries := range audit {
		started, _ := auditedRuns(t, id, entries) // cluster_test.go
		ran += started
	}
	if ran == 0 {
		t.Fatal("no job ran")
	}
	var running int
	if err := db.SQL().QueryRow(`SELECT COUNT(*) FROM jobs WHERE status = 'running'`).Scan(&running); err != nil || running != 0 {
		t.Fatalf("%d jobs left running (%v)", running, err)
	}
	t.Logf("%d jobs ran, every attempt finished", ran)
}

// freeTCPAddr is a loopback address free now, for a node that must come
// back on the same address after a restart (a load balancer's backends
// are fixed).
func freeTCPAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// The health check: every healthInterval, each taking up to
// healthTimeout; a node that does not answer healthFall times in a row is
// taken out (a 503 takes it out at once). A draining node is out within
// healthFall × (healthInterval + healthTimeout), which
// DCVAAS_SHUTDOWN_DRAIN must exceed.
const (
	healthInterval = 100 * time.Millisecond
	healthTimeout  = 2 * time.Second
	healthFall     = 2
)

// healthLB is the load balancer of TestRollingRestart (see there).
type healthLB struct {
	addrs   []string
	client  *http.Client
	mu      sync.Mutex
	ready   []bool
	unready []time.Time // per node: when /readyz first answered 503 since watch
	last    []string    // per node: the last check's status and time
	next    int
	retried atomic.Int64
}

func newHealthLB(t *testing.T, addrs []string) *healthLB {
	// Like nginx's default upstream, one connection per request: a
	// connection kept open could be closed by the node's shutdown just as
	// a request is written to it.
	lb := &healthLB{addrs: addrs, ready: make([]bool, len(addrs)), unready: make([]time.Time, len(addrs)), last: make([]string, len(addrs)),
		client: &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i, a := range addrs {
		wg.Go(func() {
			hc := &http.Client{Timeout: healthTimeout, Transport: &http.Transport{}} // its own connections
			fails := 0
			for {
				status := 0
				if resp, err := hc.Get("http://" + a + "/readyz"); err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					status = resp.StatusCode
				}
				lb.mu.Lock()
				lb.last[i] = fmt.Sprintf("%d at %s", status, time.Now().Format("15:04:05.000"))
				switch {
				case status == http.StatusOK:
					lb.ready[i], fails = true, 0
				case status != 0: // the node says it is not ready: out at once
					lb.ready[i] = false
					if lb.unready[i].IsZero() {
						lb.unready[i] = time.Now()
					}
				default: // no answer: out after healthFall in a row
					if fails++; fails >= healthFall {
						lb.ready[i] = false
					}
				}
				lb.mu.Unlock()
				select {
				case <-stop:
					return
				case <-time.After(healthInterval):
				}
			}
		})
	}
	t.Cleanup(func() { close(stop); wg.Wait() })
	for i := range addrs {
		lb.waitReady(t, i)
	}
	return lb
}

// watch returns a function that says when, since the call, the health
// check first saw node i answer /readyz with 503 (zero: never).
func (lb *healthLB) watch(i int) func() time.Time {
	lb.mu.Lock()
	lb.unready[i] = time.Time{}
	lb.mu.Unlock()
	return func() time.Time {
		lb.mu.Lock()
		defer lb.mu.Unlock()
		return lb.unready[i]
	}
}

func (lb *healthLB) waitReady(t *testing.T, i int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		lb.mu.Lock()
		ok := lb.ready[i]
		lb.mu.Unlock()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			lb.mu.Lock()
			defer lb.mu.Unlock()
			t.Fatalf("node %d never became ready; last health checks %q", i, lb.last)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// do sends one request through the balancer; the answer must have
// status want.
func (lb *healthLB) do(method, path, token, body string, want int) error {
	lb.mu.Lock()
	start := lb.next
	lb.next++
	lb.mu.Unlock()
	lb.mu.Lock()
	failOpen := !slices.Contains(lb.ready, true)
	lb.mu.Unlock()
	for k := range len(lb.addrs) {
		i := (start + k) % len(lb.addrs)
		lb.mu.Lock()
		ok := lb.ready[i]
		lb.mu.Unlock()
		if !ok && !failOpen {
			continue
		}
		req, _ := http.NewRequest(method, "http://"+lb.addrs[i]+path, bytes.NewReader([]byte(body)))
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := lb.client.Do(req)
		if err != nil {
			if refused(err) { // cluster3_test.go: it never reached the node
				lb.mu.Lock()
				lb.ready[i] = false
				lb.mu.Unlock()
				lb.retried.Add(1)
				continue
			}
			return fmt.Errorf("%s %s on node %d: %w", method, path, i, err)
		}
		msg, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != want {
			return fmt.Errorf("%s %s on node %d: %d %s", method, path, i, resp.StatusCode, msg)
		}
		return nil
	}
	return errors.New(method + " " + path + ": no node accepted the connection")
}

// drainLog is the lines of a node's log about its stop.
func drainLog(logs string) string {
	var out []string
	for _, l := range strings.Split(logs, "\n") {
		if strings.Contains(l, `"draining`) || strings.Contains(l, `"shutting down"`) || strings.Contains(l, `"stopped"`) || strings.Contains(l, `"level":"WARN"`) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
