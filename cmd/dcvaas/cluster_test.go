package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/dcvaas/dcvaas/sqlstore"
	"github.com/dcvaas/dcvaas/sqlstore/storetest"
)

// TestTwoProcessesOneQueue runs two `dcvaas serve` processes on one
// PostgreSQL schema, as a two-node cluster, creates domains through both
// APIs, and lets their dns_check jobs race for the shared queue while a
// slow resolver keeps many in flight on both nodes at once. Then it checks
// from the database, River's queue and the nodes' logs that no job ran
// twice or on two nodes at once — exactly one job.started per River
// attempt, never two running periods of one job overlapping, attempts that
// agree with River's attempted_by — and that both nodes did the work,
// at the same time.
func TestTwoProcessesOneQueue(t *testing.T) {
	if os.Getenv(storetest.PostgresEnv) == "" {
		storetest.SkippedPostgres()
		t.Skipf("%s is unset: needs PostgreSQL", storetest.PostgresEnv)
	}
	if testing.Short() {
		t.Skip("starts two dcvaas processes (~10s)")
	}
	const (
		n        = 150
		dnsDelay = 150 * time.Millisecond
	)
	dbURL := storetest.URL(t, sqlstore.Postgres)
	resolver := newSlowResolver(t, dnsDelay)
	common := map[string]string{
		"DCVAAS_DATABASE_URL":   dbURL,
		"DCVAAS_ENCRYPTION_KEY": strings.Repeat("ab", 32),
		"DCVAAS_VERIFY_ZONE":    "verify.example",
		"DCVAAS_RESOLVERS":      resolver,
		// Fewer workers than jobs: the queue backs up and both nodes fetch
		// from it at once.
		"DCVAAS_WORKERS":          "8",
		"DCVAAS_RATE_LIMIT":       "1000000",
		"DCVAAS_SHUTDOWN_TIMEOUT": "5s",
		"DCVAAS_LOG_FORMAT":       "json",
		"DCVAAS_DNS_ADDR":         "127.0.0.1:0",
		"DCVAAS_ACME_CAS":         "nowhere",
		// Loopback only: a CA that is not there (no job gets that far).
		"DCVAAS_ACME_NOWHERE_DIRECTORY": "https://127.0.0.1:1/directory",
	}
	token, orgID := bootstrapOrg(t, common) // also migrates
	var nodes [2]*binary
	var bases [2]string
	for i := range nodes {
		var vars []string
		for k, v := range common {
			vars = append(vars, k+"="+v)
		}
		bin, vars := selfBinary(vars)        // process_test.go
		nodes[i] = startBinary(t, bin, vars) // crash_test.go
		bases[i] = nodes[i].base
	}

	// Domains through both APIs, several at a time. Every third name's
	// lookup fails (SERVFAIL: a failed attempt, retried after a minute);
	// the others find no CNAME yet (checked again after a minute, no
	// attempt used). Either way each job runs once within this test.
	var wg sync.WaitGroup
	errs := make(chan string, n)
	next := make(chan int)
	for range 8 {
		wg.Go(func() {
			for i := range next {
				name := fmt.Sprintf("d%03d.example.com", i)
				if i%3 == 0 {
					name = fmt.Sprintf("sf%03d.example.com", i)
				}
				if err := createDomain(bases[i%2], token, name); err != nil {
					errs <- err.Error()
				}
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Fatal(e)
	}

	db := storetest.Open(t, dbURL)
	count := func(query string) int {
		t.Helper()
		var c int
		if err := db.SQL().QueryRow(query).Scan(&c); err != nil {
			t.Fatal(err)
		}
		return c
	}
	// Done: every job ran once and is rescheduled, and River has marked
	// every attempt it handed out completed.
	deadline := time.Now().Add(30 * time.Second)
	for count(`SELECT COUNT(*) FROM jobs WHERE type = 'dns_check' AND status = 'queued' AND last_error <> ''`) != n ||
		count(`SELECT COUNT(*) FROM river_job WHERE kind = 'dns_check' AND attempt > 0 AND state <> 'completed'`) != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("jobs not all run once after 30s\nnode 0:\n%s\nnode 1:\n%s", nodes[0].logs.String(), nodes[1].logs.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, node := range nodes {
		node.stop(t)
	}

	c := readCluster(t, db)
	if len(c.jobs) != n {
		t.Fatalf("%d dns_check jobs, want %d", len(c.jobs), n)
	}
	// Which River client is which node: each logs its id at start.
	var clients [2]string
	for i, node := range nodes {
		clients[i] = logValue(t, node.logs.String(), "job engine started", "riverClientId")
	}
	if clients[0] == "" || clients[0] == clients[1] {
		t.Fatalf("River client ids %q", clients)
	}
	node := map[string]int{clients[0]: 0, clients[1]: 1}

	var perNode [2]int
	var periods [2][]period
	for id, j := range c.jobs {
		runs := c.river[id]
		var attempts int
		var pending []int64 // River jobs not run yet: the next check
		for _, r := range runs {
			if r.attempt == 0 {
				pending = append(pending, r.id)
				continue
			}
			attempts += r.attempt
			// River's own record: one worker per attempt, every attempt done.
			if len(r.attemptedBy) != r.attempt || r.state != "completed" || r.finished.Before(r.started) {
				t.Fatalf("job %s: River job %+v", id, r)
			}
			for _, by := range r.attemptedBy {
				if _, ok := node[by]; !ok {
					t.Fatalf("job %s: attempted by %q, not one of the nodes %q", id, by, clients)
				}
			}
			k := node[r.attemptedBy[len(r.attemptedBy)-1]]
			perNode[k]++
			periods[k] = append(periods[k], period{r.started, r.finished})
		}
		// One River attempt in all (nothing crashed or failed to record),
		// and the row names the next, not yet run.
		if attempts != 1 || len(pending) != 1 || j.queueJobID != pending[0] {
			t.Fatalf("job %s: River jobs %+v, row points at %d", id, runs, j.queueJobID)
		}
		started, free := auditedRuns(t, id, c.audit[id])
		if started != attempts {
			t.Fatalf("job %s: %d job.started for %d River attempts: %v", id, started, attempts, c.audit[id])
		}
		// The row's attempts: those started, less the "not yet" checks,
		// which use none.
		wantAttempts := 0
		if strings.HasPrefix(j.domain, "sf") {
			wantAttempts = 1
		}
		if j.attempts != started-free || j.attempts != wantAttempts {
			t.Fatalf("job %s (%s): attempts %d, %d started, %d free", id, j.domain, j.attempts, started, free)
		}
	}
	if perNode[0] == 0 || perNode[1] == 0 {
		t.Fatalf("jobs per node: %v", perNode)
	}
	// Both nodes worked at the same time, not one after the other.
	together := 0
	for _, a := range periods[0] {
		for _, b := range periods[1] {
			if overlaps(a, b) {
				together++
			}
		}
	}
	if together == 0 {
		t.Fatal("the nodes never ran jobs at the same time")
	}
	// Each node's log names exactly the jobs River says it ran.
	for i, nd := range nodes {
		logged := logValues(t, nd.logs.String(), "job rescheduled", "jobId")
		var want []string
		for id, runs := range c.river {
			for _, r := range runs {
				if r.attempt > 0 && node[r.attemptedBy[0]] == i {
					want = append(want, id)
				}
			}
		}
		slices.Sort(logged)
		slices.Sort(want)
		if !slices.Equal(logged, want) {
			t.Fatalf("node %d logged %d jobs, River says it ran %d", i, len(logged), len(want))
		}
	}
	t.Logf("jobs per node %v; %d pairs of jobs ran on both nodes at once; org %s", perNode, together, orgID)
}

// auditedRuns reads a job's running periods from its audit entries: each
// job.started must be closed by exactly one outcome before the next one —
// two open at once would be two workers running the job together. It
// returns how many runs started and how many used no attempt.
func auditedRuns(t *testing.T, id string, entries []auditEntry) (started, free int) {
	t.Helper()
	running := false
	for _, e := range entries {
		switch e.action {
		case "job.started":
			if running {
				t.Fatalf("job %s: started again while running: %v", id, entries)
			}
			if e.details["previousAttemptInterrupted"] == true {
				t.Fatalf("job %s: an attempt was interrupted: %v", id, entries)
			}
			running = true
			started++
		case "job.succeeded", "job.failed", "job.retry_scheduled":
			if !running {
				t.Fatalf("job %s: %s without a running attempt: %v", id, e.action, entries)
			}
			running = false
			if e.details["attemptUsed"] == false {
				free++
			}
		}
	}
	if running {
		t.Fatalf("job %s: still running: %v", id, entries)
	}
	return started, free
}

// createDomain is POST /api/domains, safe to call from any goroutine.
func createDomain(base, token, name string) error {
	body, _ := json.Marshal(map[string]any{"domainName": name})
	req, _ := http.NewRequest("POST", base+"/api/domains", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		msg, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("create %s: %d %s", name, resp.StatusCode, msg)
	}
	return nil
}

// cluster is what the two nodes left in the database.
type cluster struct {
	jobs  map[string]clusterJob     // dns_check jobs by id
	river map[string][]riverAttempt // their River jobs by product job id
	audit map[string][]auditEntry   // their audit entries, oldest first
}

type clusterJob struct {
	domain     string
	attempts   int
	queueJobID int64
}

type riverAttempt struct {
	id          int64
	attempt     int
	attemptedBy []string
	state       string
	started     time.Time
	finished    time.Time
}

type auditEntry struct {
	action  string
	details map[string]any
}

func readCluster(t *testing.T, db *sqlstore.DB) *cluster {
	t.Helper()
	c := &cluster{jobs: map[string]clusterJob{}, river: map[string][]riverAttempt{}, audit: map[string][]auditEntry{}}
	rows, err := db.SQL().Query(`SELECT j.id, d.domain_name, j.attempts, COALESCE(j.queue_job_id, 0)
		FROM jobs j JOIN domains d ON d.id = j.domain_id WHERE j.type = 'dns_check'`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id string
		var j clusterJob
		if err := rows.Scan(&id, &j.domain, &j.attempts, &j.queueJobID); err != nil {
			t.Fatal(err)
		}
		c.jobs[id] = j
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}

	rows, err = db.SQL().Query(`SELECT id, args->>'job_id', attempt, COALESCE(array_to_json(attempted_by)::text, '[]'),
		state, attempted_at, finalized_at FROM river_job WHERE kind = 'dns_check' ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var r riverAttempt
		var jobID, by string
		var started, finished *time.Time
		if err := rows.Scan(&r.id, &jobID, &r.attempt, &by, &r.state, &started, &finished); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal([]byte(by), &r.attemptedBy); err != nil {
			t.Fatal(err)
		}
		if started != nil && finished != nil {
			r.started, r.finished = *started, *finished
		}
		c.river[jobID] = append(c.river[jobID], r)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}

	rows, err = db.SQL().Query(`SELECT entity_id, action, details::text FROM audit_logs
		WHERE entity_type = 'job' ORDER BY created_at, id`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id, details string
		var e auditEntry
		if err := rows.Scan(&id, &e.action, &details); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal([]byte(details), &e.details); err != nil {
			t.Fatal(err)
		}
		c.audit[id] = append(c.audit[id], e)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return c
}

type period struct{ from, to time.Time }

func overlaps(a, b period) bool { return a.from.Before(b.to) && b.from.Before(a.to) }

// logValues returns key's value in every JSON log line whose msg is msg.
func logValues(t *testing.T, logs, msg, key string) []string {
	t.Helper()
	var out []string
	sc := bufio.NewScanner(strings.NewReader(logs))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var line map[string]any
		if json.Unmarshal(sc.Bytes(), &line) != nil || line["msg"] != msg {
			continue
		}
		if v, ok := line[key].(string); ok {
			out = append(out, v)
		}
	}
	return out
}

// logValue is logValues of a message logged once.
func logValue(t *testing.T, logs, msg, key string) string {
	t.Helper()
	vs := logValues(t, logs, msg, key)
	if len(vs) != 1 {
		t.Fatalf("%q logged %d times with %s", msg, len(vs), key)
	}
	return vs[0]
}

// newSlowResolver starts a recursive resolver on loopback that answers
// every query after delay, as a loaded one would: SERVFAIL for
// _acme-challenge.sf* names, NXDOMAIN for everything else. The delay keeps
// jobs running long enough for the nodes' work to overlap.
func newSlowResolver(t *testing.T, delay time.Duration) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	started := make(chan struct{})
	srv := &dns.Server{PacketConn: pc, NotifyStartedFunc: func() { close(started) },
		// miekg/dns serves each UDP query in its own goroutine, so the
		// delay holds back answers, not the server.
		Handler: dns.HandlerFunc(func(w dns.ResponseWriter, req *dns.Msg) {
			time.Sleep(delay)
			m := new(dns.Msg)
			m.SetReply(req)
			m.RecursionAvailable = true
			m.Rcode = dns.RcodeNameError
			if len(req.Question) == 1 && strings.HasPrefix(strings.ToLower(req.Question[0].Name), "_acme-challenge.sf") {
				m.Rcode = dns.RcodeServerFailure
			}
			w.WriteMsg(m)
		})}
	go srv.ActivateAndServe()
	<-started
	t.Cleanup(func() { srv.Shutdown() })
	return pc.LocalAddr().String()
}
