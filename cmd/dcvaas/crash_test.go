package main

import (
	"context"
	"encoding/json"
	"net/http"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dcvaas/dcvaas"
	"github.com/dcvaas/dcvaas/resolve/resolvetest"
	"github.com/dcvaas/dcvaas/sqlstore/storetest"
)

// TestCrashMidJob kills `dcvaas serve` with SIGKILL while a dns_check is
// in the middle of its DNS lookup, starts it again, and checks that the
// job runs again, completes, and leaves a consistent record: the lost
// attempt counted, every attempt audited, River's queue drained.
func TestCrashMidJob(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and waits for River's rescuer (~30s)")
	}
	bin := filepath.Join(t.TempDir(), "dcvaas")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	for _, dialect := range storetest.Dialects(t) {
		t.Run(string(dialect), func(t *testing.T) {
			t.Parallel()
			// Rescue quickly: the process that ran the job is gone for good.
			crashMidJob(t, bin, storetest.URL(t, dialect), []string{"DCVAAS_JOB_RESCUE_AFTER=5s"}, 90*time.Second)
		})
		// The same node restarted (one DCVAAS_NODE_ID) takes its job back
		// at once: River's rescuer, at 10 minutes, cannot be what runs it
		// within the 15 s the test allows.
		t.Run(string(dialect)+"/same-node", func(t *testing.T) {
			t.Parallel()
			crashMidJob(t, bin, storetest.URL(t, dialect), []string{"DCVAAS_JOB_RESCUE_AFTER=10m", "DCVAAS_NODE_ID=node-a"}, 15*time.Second)
		})
	}
}

// crashMidJob kills serve mid-job and restarts it with the same settings
// (vars and extra); the interrupted job must have run again and succeeded
// within the given time of the restart.
func crashMidJob(t *testing.T, bin, dbURL string, extra []string, within time.Duration) {
	dnsSrv := resolvetest.New(t)
	vars := []string{
		"DCVAAS_DATABASE_URL=" + dbURL,
		"DCVAAS_ENCRYPTION_KEY=" + strings.Repeat("ab", 32),
		"DCVAAS_VERIFY_ZONE=verify.example",
		"DCVAAS_RESOLVERS=" + dnsSrv.Addr,
		"DCVAAS_SHUTDOWN_TIMEOUT=5s",
		// Loopback only: a free port for the DNS server, a CA that is not there.
		"DCVAAS_DNS_ADDR=127.0.0.1:0",
		"DCVAAS_ACME_CAS=nowhere",
		"DCVAAS_ACME_NOWHERE_DIRECTORY=https://127.0.0.1:1/directory",
	}
	vars = append(vars, extra...)
	creds := migrateAndBootstrap(t, bin, vars)
	// The lookup of the delegation record hangs: the job is mid-run when
	// the query reaches the DNS server.
	const name = "_acme-challenge.crash.example.com"
	dnsSrv.Hold(name)
	first := startBinary(t, bin, vars)
	status, dom := call(t, "POST", first.base+"/api/domains", creds.Token, map[string]any{"domainName": "crash.example.com"})
	if status != http.StatusCreated {
		t.Fatalf("create domain: %d %v", status, dom)
	}
	waitQuery(t, dnsSrv, name)
	first.kill(t)

	db := storetest.Open(t, dbURL)
	jobs, _, err := db.ListJobs(context.Background(), creds.OrganizationID, dcvaas.JobFilter{DomainID: dom["id"].(string), Page: dcvaas.Page{Limit: 10}})
	if err != nil || len(jobs) != 1 || jobs[0].Status != dcvaas.JobRunning || jobs[0].Attempts != 1 {
		t.Fatalf("after the crash: jobs = %+v, %v", jobs, err)
	}
	job := jobs[0]

	// Now the record is there and DNS answers; the next process finds the
	// stuck job (River's rescuer), runs it again, and it completes.
	dnsSrv.SetCNAME(name, dom["cnameTarget"].(string))
	dnsSrv.Release(name)
	restarted := time.Now()
	second := startBinary(t, bin, vars)
	base := second.base
	deadline := restarted.Add(within)
	var got map[string]any
	for {
		_, got = call(t, "GET", base+"/api/jobs/"+job.ID, creds.Token, nil)
		if got["status"] == "succeeded" {
			t.Logf("the interrupted job succeeded %s after the restart", time.Since(restarted).Round(10*time.Millisecond))
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("job not done %s after restart: %v\n%s", within, got, second.logs.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
	if got["attempts"] != 2.0 || (got["lastError"] != nil && got["lastError"] != "") {
		t.Fatalf("job = %v", got)
	}
	_, d := call(t, "GET", base+"/api/domains/"+job.DomainID, creds.Token, nil)
	if d["status"] != "issuing" {
		t.Fatalf("domain = %v", d)
	}
	var acts []string
	var interrupted bool
	entries, _, err := db.ListAudit(context.Background(), creds.OrganizationID, dcvaas.AuditFilter{Page: dcvaas.Page{Limit: 100}})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range slices.Backward(entries) {
		if e.EntityID == job.ID {
			acts = append(acts, e.Action)
			interrupted = interrupted || e.Details["previousAttemptInterrupted"] == true
		}
	}
	if !slices.Equal(acts, []string{"job.queued", "job.started", "job.started", "job.succeeded"}) || !interrupted {
		t.Fatalf("job audit = %v (restart noted: %v)", acts, interrupted)
	}
	// River's queue holds no live entry for the check any more.
	for range 50 {
		var live int
		if err := db.SQL().QueryRow(`SELECT COUNT(*) FROM river_job WHERE kind = 'dns_check' AND state NOT IN ('completed', 'cancelled', 'discarded')`).Scan(&live); err != nil {
			t.Fatal(err)
		}
		if live == 0 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	second.stop(t)
}

type binary struct {
	cmd  *exec.Cmd
	logs *syncBuffer
	done chan error
	// base is the URL of its HTTP API.
	base string
}

// listening finds the address in serve's "http listening" log line, text
// or JSON.
var listening = regexp.MustCompile(`http listening"?.*?"?addr"?[=:]"?(127\.0\.0\.1:\d+)`)

// startBinary runs `dcvaas serve` as a child process on a port of its own
// choosing (DCVAAS_HTTP_ADDR 127.0.0.1:0, read back from its log: a port
// picked here and handed over could be taken by another test's process in
// between) unless vars set DCVAAS_HTTP_ADDR (a node restarted on its
// address), and waits until it answers /healthz.
func startBinary(t *testing.T, bin string, vars []string) *binary {
	t.Helper()
	b := &binary{cmd: exec.Command(bin, "serve"), logs: &syncBuffer{}, done: make(chan error, 1)}
	b.cmd.Env = slices.Clone(vars)
	if !slices.ContainsFunc(vars, func(v string) bool { return strings.HasPrefix(v, "DCVAAS_HTTP_ADDR=") }) {
		b.cmd.Env = append(b.cmd.Env, "DCVAAS_HTTP_ADDR=127.0.0.1:0")
	}
	b.cmd.Stderr = b.logs
	if err := b.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { b.done <- b.cmd.Wait() }()
	t.Cleanup(func() {
		if b.cmd.ProcessState == nil {
			b.cmd.Process.Kill()
			<-b.done
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		if b.base == "" {
			if m := listening.FindStringSubmatch(b.logs.String()); m != nil {
				b.base = "http://" + m[1]
			}
		}
		if b.base != "" {
			if resp, err := http.Get(b.base + "/healthz"); err == nil {
				resp.Body.Close()
				return b
			}
		}
		select {
		case err := <-b.done:
			t.Fatalf("serve exited: %v\n%s", err, b.logs.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve did not start\n%s", b.logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// kill is kill -9: no shutdown code runs.
func (b *binary) kill(t *testing.T) {
	t.Helper()
	if err := b.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-b.done
}

// stop is SIGTERM: a graceful stop that must exit cleanly.
func (b *binary) stop(t *testing.T) {
	t.Helper()
	b.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-b.done:
		if err != nil {
			t.Fatalf("serve after SIGTERM: %v\n%s", err, b.logs.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("serve did not stop\n%s", b.logs.String())
	}
}

// waitQuery waits until the DNS server receives a query for name.
func waitQuery(t *testing.T, srv *resolvetest.Server, name string) {
	t.Helper()
	timeout := time.After(20 * time.Second)
	for {
		select {
		case got := <-srv.Seen():
			if strings.TrimSuffix(got, ".") == name {
				return
			}
		case <-timeout:
			t.Fatalf("no DNS query for %s", name)
		}
	}
}

// migrateAndBootstrap runs the binary's migrate and bootstrap with vars, as
// an operator would before the first serve, and returns bootstrap's answer.
func migrateAndBootstrap(t *testing.T, bin string, vars []string) (creds struct{ Token, OrganizationID string }) {
	t.Helper()
	mig := exec.Command(bin, "migrate")
	mig.Env = vars
	if out, err := mig.CombinedOutput(); err != nil {
		t.Fatalf("migrate: %v\n%s", err, out)
	}
	boot := exec.Command(bin, "bootstrap", "--org-name", "Acme", "--owner-email", "ops@acme.test", "--json")
	boot.Env = vars
	out, err := boot.Output()
	if err != nil {
		t.Fatalf("bootstrap: %v", err)
	}
	if err := json.Unmarshal(out, &creds); err != nil {
		t.Fatal(err)
	}
	return creds
}
