package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dcvaas/dcvaas/sqlstore/storetest"
)

// TestCronRunAgainstServe runs the real program: `dcvaas serve` issues
// three certificates from Pebble; one is then made old (its dates in the
// database moved back), one is put into an ARI window by the CA; `dcvaas
// cron run --json` beside the server queues exactly those two renewals, the
// server executes them, new certificates are served, and /metrics shows
// the counters move.
func TestCronRunAgainstServe(t *testing.T) {
	if testing.Short() {
		t.Skip("issues real certificates from an in-process Pebble")
	}
	old := fleetStatsTTL
	fleetStatsTTL = time.Millisecond
	t.Cleanup(func() { fleetStatsTTL = old })
	for _, dialect := range storetest.Dialects(t) {
		t.Run(string(dialect), func(t *testing.T) { cronRun(t, storetest.URL(t, dialect)) })
	}
}

func cronRun(t *testing.T, dbURL string) {
	w := newIssuanceWorld(t, dbURL)
	w.vars["DCVAAS_RENEWAL_SPREAD"] = "0s" // renew at once, not within the hour
	token, orgID := bootstrapOrg(t, w.vars)
	base := w.serve(t)

	ids := map[string]string{}
	for _, name := range []string{"aged", "ari", "fresh"} {
		domain := name + "-" + randLabel(5) + ".example.com"
		dom := addDomain(t, w.dns, base, token, domain)
		if dom["cnameStatus"] != "missing" {
			t.Fatalf("created domain %v", dom)
		}
		if status, _ := call(t, "POST", base+"/api/domains/"+dom["id"].(string)+"/verify", token, nil); status != http.StatusAccepted {
			t.Fatalf("verify: %d", status)
		}
		ids[name] = dom["id"].(string)
	}
	serials := map[string]string{}
	for name, id := range ids {
		d := waitDomain(t, base, token, id, 60*time.Second, isActive)
		if d["cnameStatus"] != "ok" {
			t.Fatalf("active domain %v", d)
		}
		_, c := call(t, "GET", base+"/api/domains/"+id+"/certificate", token, nil)
		serials[name] = c["serialNumber"].(string)
	}
	before := scrape(t, base+"/metrics")

	// "aged": 10 of 90 days left, as far as the database knows.
	db := storetest.Open(t, dbURL)
	now := time.Now()
	notBefore, notAfter := now.Add(-80*24*time.Hour).UnixMicro(), now.Add(10*24*time.Hour).UnixMicro()
	if _, err := db.SQL().Exec(`UPDATE certificates SET not_before = $1, not_after = $2 WHERE domain_id = $3`, notBefore, notAfter, ids["aged"]); err != nil {
		t.Fatal(err)
	}
	if _, err := db.SQL().Exec(`UPDATE domains SET expires_at = $1 WHERE id = $2`, notAfter, ids["aged"]); err != nil {
		t.Fatal(err)
	}
	// "ari": the CA suggests renewing now (RFC 9773), e.g. before revoking.
	_, _, chain := get(t, base+"/api/domains/"+ids["ari"]+"/certificate", token, "application/pem-certificate-chain")
	if err := w.ca.SetRenewalWindow(chain, now.Add(-time.Minute), now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}

	out := cronRunJSON(t, w.vars)
	if out["scanned"] != 3.0 || out["queued"] != 2.0 || out["due"] != 2.0 || out["status"] != "succeeded" || out["errors"] != 0.0 {
		t.Fatalf("cron run: %v", out)
	}
	// The server renews both; new certificates are served.
	deadline := time.Now().Add(90 * time.Second)
	for _, name := range []string{"aged", "ari"} {
		for {
			s, err := servedSerial(base, token, ids[name])
			if err == nil && s != serials[name] {
				break
			}
			if time.Now().After(deadline) {
				_, jobs := call(t, "GET", base+"/api/jobs?type=renewal", token, nil)
				t.Fatalf("%s not renewed: %v", name, jobs)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	if s, _ := servedSerial(base, token, ids["fresh"]); s != serials["fresh"] {
		t.Fatal("the fresh certificate was renewed")
	}
	_, audit := call(t, "GET", base+"/api/audit?action=cron.renewal_queued", token, nil)
	if audit["total"] != 2.0 {
		t.Fatalf("audit: %v", audit)
	}
	reasons := map[string]string{}
	for _, it := range audit["items"].([]any) {
		e := it.(map[string]any)
		details := e["details"].(map[string]any)
		reasons[e["entityId"].(string)] = details["reason"].(string)
		if details["jobId"] == "" || details["expiresAt"] == nil || details["runId"] != out["runId"] {
			t.Fatalf("audit entry %v", e)
		}
	}
	if reasons[ids["aged"]] != "lifetime" || reasons[ids["ari"]] != "ari" {
		t.Fatalf("reasons %v", reasons)
	}

	// Again: nothing is due any more.
	if again := cronRunJSON(t, w.vars); again["queued"] != 0.0 || again["scanned"] != 3.0 {
		t.Fatalf("second cron run: %v", again)
	}

	after := scrape(t, base+"/metrics")
	for _, c := range []struct {
		series string
		delta  float64
	}{
		{`dcvaas_certificates_issued_total{ca="pebble",kind="renewal"}`, 2},
		{`dcvaas_jobs_finished_total{status="succeeded",type="renewal"}`, 2},
		{`dcvaas_job_duration_seconds_count{kind="renewal"}`, 2},
	} {
		if d := after[c.series] - before[c.series]; d != c.delta {
			t.Errorf("%s moved by %v, want %v", c.series, d, c.delta)
		}
	}
	for series, min := range map[string]float64{
		`dcvaas_certificates_issued_total{ca="pebble",kind="issue"}`:                      3,
		`dcvaas_http_requests_total{method="GET",route="/api/domains/{id}",status="200"}`: 3,
		`dcvaas_dns_queries_total{qtype="TXT",rcode="NOERROR"}`:                           1,
		`dcvaas_renewal_checks_total{result="succeeded"}`:                                 1, // serve's own check at start-up
		`dcvaas_renewal_check_last_scanned`:                                               3,
		`dcvaas_domains{status="active"}`:                                                 3,
		`dcvaas_fleet_stats_up`:                                                           1,
		`dcvaas_build_info{version="dev"}`:                                                1,
	} {
		if after[series] < min {
			t.Errorf("%s = %v, want at least %v", series, after[series], min)
		}
	}
	if ts := after["dcvaas_renewal_check_last_success_timestamp_seconds"]; ts < float64(now.Unix()) {
		t.Errorf("last success %v, before the cron run", ts)
	}
	for series := range after {
		if strings.Contains(series, orgID) || strings.Contains(series, "org") || strings.Contains(series, "/api/domains/0") {
			t.Errorf("per-organization or raw-path label: %s", series)
		}
	}
}

// cronRunJSON runs `dcvaas cron run --json` and decodes its object.
func cronRunJSON(t *testing.T, vars map[string]string) map[string]any {
	t.Helper()
	var stdout, stderr bytes.Buffer
	if err := run(context.Background(), []string{"cron", "run", "--json"}, env(vars), &stdout, &stderr); err != nil {
		t.Fatalf("cron run: %v\n%s", err, stderr.String())
	}
	var out map[string]any
	if err := json.Unmarshal(stdout.Bytes(), &out); err != nil {
		t.Fatalf("cron run printed %q: %v", stdout.String(), err)
	}
	return out
}

// scrape reads a Prometheus text page into series → value.
func scrape(t *testing.T, url string) map[string]float64 {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
		body, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET %s: %d %s %s", url, resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("metrics line %q", line)
		}
		out[line[:i]] = v
	}
	return out
}

// With DCVAAS_METRICS_ADDR, /metrics moves there and leaves the API.
func TestMetricsAddr(t *testing.T) {
	addrc := make(chan string, 1)
	onMetricsListen = func(addr string) { addrc <- addr }
	t.Cleanup(func() { onMetricsListen = nil })
	base := startServe(t, map[string]string{"DCVAAS_DATABASE_URL": filepath.Join(t.TempDir(), "m.db"), "DCVAAS_METRICS_ADDR": "127.0.0.1:0"})
	m := scrape(t, "http://"+<-addrc+"/metrics")
	if m["dcvaas_fleet_stats_up"] != 1 || m[`dcvaas_jobs{status="failed",type="renewal"}`] != 0 {
		t.Fatalf("metrics %v", m)
	}
	if _, ok := m[`dcvaas_certificates_expiring{within="7d"}`]; !ok {
		t.Fatal("no expiry gauge")
	}
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("API still serves /metrics: %d", resp.StatusCode)
	}
}

func TestCronConfigErrors(t *testing.T) {
	dbURL := filepath.Join(t.TempDir(), "c.db")
	for name, vars := range map[string]map[string]string{
		"DCVAAS_RENEWAL_CRON":   {"DCVAAS_RENEWAL_CRON": "every night"},
		"DCVAAS_RENEWAL_SPREAD": {"DCVAAS_RENEWAL_SPREAD": "-1h"},
		"DCVAAS_METRICS_ADDR":   {"DCVAAS_METRICS_ADDR": "9100"},
	} {
		vars["DCVAAS_DATABASE_URL"] = dbURL
		err := run(context.Background(), []string{"cron", "run"}, env(vars), io.Discard, io.Discard)
		if err == nil || !strings.Contains(err.Error(), name+":") {
			t.Errorf("%s: error %v does not name the variable", name, err)
		}
	}
	if err := run(context.Background(), []string{"cron"}, env(map[string]string{}), io.Discard, io.Discard); err == nil {
		t.Error("cron without a subcommand accepted")
	}
	// Against an empty database: nothing to do, and saying so.
	var out bytes.Buffer
	if err := run(context.Background(), []string{"cron", "run", "--json"}, env(map[string]string{"DCVAAS_DATABASE_URL": dbURL}), &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	var res map[string]any
	if err := json.Unmarshal(out.Bytes(), &res); err != nil || res["scanned"] != 0.0 || res["queued"] != 0.0 {
		t.Fatalf("empty run: %s %v", out.String(), err)
	}
}
