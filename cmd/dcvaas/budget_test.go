package main

import (
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dcvaas/dcvaas/acme/acmetest"
	"github.com/dcvaas/dcvaas/sqlstore"
	"github.com/dcvaas/dcvaas/sqlstore/storetest"
)

// With a budget of 2 orders per 10 s (one back every 5 s), 5 domains
// queued at once are issued in budget order: two at once, then one every
// 5 s; the CA refuses none, and the waiting jobs and domains say what they
// wait for and until when.
func TestIssuanceWithinBudget(t *testing.T) {
	if testing.Short() {
		t.Skip("issues real certificates from an in-process Pebble")
	}
	for _, dialect := range []sqlstore.Dialect{sqlstore.SQLite} {
		t.Run(string(dialect), func(t *testing.T) {
			w := newIssuanceWorld(t, storetest.URL(t, dialect))
			w.vars["DCVAAS_ACME_PEBBLE_LIMITS"] = "orders=2/10s"
			token, _ := bootstrapOrg(t, w.vars)
			base := w.serve(t)

			var ids []string
			for i := range 5 {
				name := "shop" + string(rune('a'+i)) + "-" + randLabel(4) + ".example.com"
				ids = append(ids, addDomain(t, w.dns, base, token, name)["id"].(string))
			}
			for _, id := range ids {
				if status, job := call(t, "POST", base+"/api/domains/"+id+"/verify", token, nil); status != http.StatusAccepted {
					t.Fatalf("verify: %d %v", status, job)
				}
			}
			// Watch until all are active, noting what waited.
			waited := map[string]bool{}
			deadline := time.Now().Add(90 * time.Second)
			var issued []time.Time
			for len(issued) < len(ids) {
				if time.Now().After(deadline) {
					t.Fatalf("not all active after 90s; waited: %v", waited)
				}
				issued = issued[:0]
				for _, id := range ids {
					_, d := call(t, "GET", base+"/api/domains/"+id, token, nil)
					if d["status"] == "failed" {
						t.Fatalf("domain failed: %v", d)
					}
					if wf, _ := d["waitingFor"].(string); wf != "" {
						if wf != "pebble orders budget" || d["until"] == nil {
							t.Fatalf("domain waits for %q until %v", wf, d["until"])
						}
						job, _ := d["latestJob"].(map[string]any)
						// Read a moment later, the job may be running again
						// (its wait over) before the domain hears of it.
						if (job["status"] == "queued" || job["status"] == "scheduled") && (job["waitingFor"] != "pebble orders budget" || job["until"] == nil) {
							t.Fatalf("the waiting domain's job: %v", job)
						}
						waited[id] = true
					}
					if d["status"] == "active" {
						if d["waitingFor"] != nil {
							t.Fatalf("active domain still waiting: %v", d)
						}
						at, _ := time.Parse(time.RFC3339Nano, d["lastIssuedAt"].(string))
						issued = append(issued, at)
					}
				}
				time.Sleep(100 * time.Millisecond)
			}
			if len(waited) < 2 {
				t.Errorf("%d domains were seen waiting for the budget, want at least 2 of the 3 held back", len(waited))
			}
			orders := w.ca.NewOrders()
			if len(orders) != 5 {
				t.Errorf("Pebble saw %d new orders, want 5", len(orders))
			}
			for _, o := range orders {
				if o.Refused {
					t.Errorf("order for %v refused", o.Identifiers)
				}
			}
			slices.SortFunc(issued, time.Time.Compare)
			// Orders go at 0, 0, 5, 10, 15 s: the third certificate comes
			// at least ~5 s after the first, the fifth ~15 s.
			if d := issued[2].Sub(issued[0]); d < 4*time.Second {
				t.Errorf("third certificate %s after the first, want about 5s", d)
			}
			if d := issued[4].Sub(issued[0]); d < 14*time.Second {
				t.Errorf("fifth certificate %s after the first, want about 15s", d)
			}

			// The budget as operators see it.
			status, b := call(t, "GET", base+"/api/ca-budgets", token, nil)
			if status != http.StatusOK {
				t.Fatalf("GET /api/ca-budgets: %d %v", status, b)
			}
			items, _ := b["items"].([]any)
			var found bool
			for _, it := range items {
				m := it.(map[string]any)
				if m["ca"] == "pebble" && m["kind"] == "orders" {
					found = true
					if m["capacity"] != float64(2) || m["taken"] != float64(5) || m["window"] != "10s" {
						t.Errorf("orders budget = %v", m)
					}
				}
			}
			if !found {
				t.Errorf("no pebble orders budget in %v", b)
			}
			_, _, metrics := get(t, base+"/metrics", "", "")
			if !strings.Contains(string(metrics), `dcvaas_ca_budget_capacity{account="1",ca="pebble",kind="orders"} 2`) {
				t.Errorf("metrics lack the budget's capacity")
			}
		})
	}
}

// With 3 accounts at the CA, domains are dealt to all three; a renewal
// goes through its domain's account.
func TestIssuanceSeveralAccounts(t *testing.T) {
	if testing.Short() {
		t.Skip("issues real certificates from an in-process Pebble")
	}
	dbURL := storetest.URL(t, sqlstore.SQLite)
	w := newIssuanceWorld(t, dbURL)
	w.vars["DCVAAS_ACME_PEBBLE_ACCOUNTS"] = "3"
	token, _ := bootstrapOrg(t, w.vars)
	base := w.serve(t)

	var ids []string
	for i := range 6 {
		name := "acct" + string(rune('a'+i)) + "-" + randLabel(4) + ".example.org"
		id := addDomain(t, w.dns, base, token, name)["id"].(string)
		ids = append(ids, id)
		call(t, "POST", base+"/api/domains/"+id+"/verify", token, nil)
	}
	per := map[float64]int{}
	account := map[string]float64{}
	for _, id := range ids {
		d := waitDomain(t, base, token, id, 90*time.Second, isActive)
		a, _ := d["acmeAccount"].(map[string]any)
		n, _ := a["pebble"].(float64)
		if n < 1 || n > 3 {
			t.Fatalf("domain's acmeAccount = %v", d["acmeAccount"])
		}
		per[n]++
		account[id] = n
	}
	if len(per) != 3 || per[1] != 2 || per[2] != 2 || per[3] != 2 {
		t.Fatalf("domains per account = %v, want 2 on each of 3", per)
	}
	db := storetest.Open(t, dbURL)
	var rows int
	if err := db.SQL().QueryRow(`SELECT COUNT(DISTINCT account_url) FROM acme_accounts WHERE ca_name = 'pebble' AND account_url <> ''`).Scan(&rows); err != nil || rows != 3 {
		t.Fatalf("%d registered accounts at Pebble, %v; want 3", rows, err)
	}
	// A renewal uses the domain's own account.
	id := ids[4]
	status, q := call(t, "POST", base+"/api/domains/"+id+"/renew", token, nil)
	if status != http.StatusAccepted {
		t.Fatalf("renew: %d %v", status, q)
	}
	j := waitJob(t, base, token, q["jobId"].(string), 90*time.Second)
	res, _ := j["result"].(map[string]any)
	if res["account"] != account[id] || res["outcome"] != "renewed" {
		t.Fatalf("renewal result %v, want account %v", res, account[id])
	}
}

// An order whose CA's budget refills later than DCVAAS_FAILOVER_AFTER goes
// to the next CA with budget; a shorter wait would have deferred it.
func TestIssuanceBudgetFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("issues real certificates from an in-process Pebble")
	}
	w := newIssuanceWorld(t, storetest.URL(t, sqlstore.SQLite))
	second := acmetest.NewCA(t, acmetest.Options{Resolver: w.dns.ResolverAddr})
	bundle := filepath.Join(t.TempDir(), "both.pem")
	if err := os.WriteFile(bundle, append(append([]byte{}, w.ca.TLSRootsPEM...), second.TLSRootsPEM...), 0o600); err != nil {
		t.Fatal(err)
	}
	w.vars["DCVAAS_ACME_CA_BUNDLE"] = bundle
	w.vars["DCVAAS_ACME_CAS"] = "pebble,second"
	w.vars["DCVAAS_ACME_SECOND_DIRECTORY"] = second.DirectoryURL
	w.vars["DCVAAS_ACME_PEBBLE_LIMITS"] = "orders=1/1h"
	w.vars["DCVAAS_FAILOVER_AFTER"] = "1m"
	token, _ := bootstrapOrg(t, w.vars)
	base := w.serve(t)

	var cas []string
	for i := range 2 {
		id := addDomain(t, w.dns, base, token, "fo"+string(rune('a'+i))+"-"+randLabel(4)+".example.net")["id"].(string)
		call(t, "POST", base+"/api/domains/"+id+"/verify", token, nil)
		waitDomain(t, base, token, id, 90*time.Second, isActive)
		_, c := call(t, "GET", base+"/api/domains/"+id+"/certificate", token, nil)
		cas = append(cas, c["caName"].(string))
	}
	if cas[0] != "pebble" || cas[1] != "second" {
		t.Fatalf("issued by %v, want pebble then second (pebble's budget refills in an hour)", cas)
	}
	if n := len(w.ca.NewOrders()); n != 1 {
		t.Fatalf("pebble saw %d orders, want 1", n)
	}
}

// Two serve instances on one PostgreSQL share one budget: 6 domains, half
// created through each, with 2 orders per 10 s between them, are issued at
// 0, 0, 5, 10, 15 and 20 s — not 4 at once, as two separate budgets would
// allow — and the CA counts 6 orders, none refused.
func TestIssuanceBudgetSharedByTwoNodes(t *testing.T) {
	if testing.Short() {
		t.Skip("issues real certificates from an in-process Pebble")
	}
	if os.Getenv(storetest.PostgresEnv) == "" {
		t.Skipf("%s is unset: two nodes need PostgreSQL", storetest.PostgresEnv)
	}
	w := newIssuanceWorld(t, storetest.URL(t, sqlstore.Postgres))
	w.vars["DCVAAS_ACME_PEBBLE_LIMITS"] = "orders=2/10s"
	token, _ := bootstrapOrg(t, w.vars)
	nodes := []string{w.serve(t)}
	base2, _ := startServeDNS(t, w.vars) // the second node's DNS answers the same records
	nodes = append(nodes, base2)

	var ids []string
	for i := range 6 {
		base := nodes[i%2]
		id := addDomain(t, w.dns, base, token, "two"+string(rune('a'+i))+"-"+randLabel(4)+".example.com")["id"].(string)
		ids = append(ids, id)
	}
	for i, id := range ids {
		if status, j := call(t, "POST", nodes[i%2]+"/api/domains/"+id+"/verify", token, nil); status != http.StatusAccepted {
			t.Fatalf("verify: %d %v", status, j)
		}
	}
	var issued []time.Time
	for i, id := range ids {
		d := waitDomain(t, nodes[i%2], token, id, 120*time.Second, isActive)
		at, _ := time.Parse(time.RFC3339Nano, d["lastIssuedAt"].(string))
		issued = append(issued, at)
	}
	slices.SortFunc(issued, time.Time.Compare)
	if d := issued[3].Sub(issued[0]); d < 9*time.Second {
		t.Errorf("fourth certificate %s after the first, want about 10s (one budget for both nodes)", d)
	}
	if d := issued[5].Sub(issued[0]); d < 19*time.Second {
		t.Errorf("sixth certificate %s after the first, want about 20s", d)
	}
	orders := w.ca.NewOrders()
	if len(orders) != 6 {
		t.Errorf("Pebble saw %d new orders, want 6", len(orders))
	}
	for _, o := range orders {
		if o.Refused {
			t.Errorf("order for %v refused", o.Identifiers)
		}
	}
}
