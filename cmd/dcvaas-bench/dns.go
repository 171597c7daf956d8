package main

import (
	"bufio"
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/dcvaas/dcvaas/benchdoc"
	"github.com/dcvaas/dcvaas/dnsserver"
	"github.com/dcvaas/dcvaas/sqlstore"
	"github.com/miekg/dns"
)

// dnsBench measures the verify zone's DNS server with Debian's dnsperf:
// answered TXT queries (hits) and random labels (NXDOMAIN), on SQLite and
// PostgreSQL, beside a trivial miekg/dns server (the baseline: the
// library's own cost, nothing looked up) in the same run; then sends a
// flood of distinct random labels and counts the statements the store ran
// meanwhile.
func dnsBench(ctx context.Context, args []string) error {
	fs := flagSet("dns")
	duration := fs.Duration("duration", 10*time.Second, "length of each measurement")
	clients := fs.Int("clients", 16, "dnsperf clients (-c)")
	outstanding := fs.Int("outstanding", 32, "dnsperf queries in flight at most (-q)")
	rounds := fs.Int("rounds", 3, "measurements per scenario; the median is reported")
	flood := fs.Int("flood", 1000000, "distinct random-label queries sent once each while counting database statements")
	write := fs.String("write", "", "markdown file whose DNS section is replaced with the results")
	fs.Parse(args)
	switch {
	case *duration <= 0:
		return fmt.Errorf("-duration must be positive, got %s", *duration)
	case *clients < 1 || *rounds < 1 || *outstanding < 1 || *flood < 0:
		return fmt.Errorf("-clients, -rounds, -outstanding must be at least 1 and -flood at least 0")
	}
	dnsperf, err := ensureDNSPerf()
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "dcvaas-dnsbench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	const zone = "verify.bench.example.com"
	const records = 1000
	var hitNames []string
	for range records {
		hitNames = append(hitNames, randomLabel()+"."+zone)
	}
	hits, err := queryFile(dir, "hits", 100000, func(i int) string { return hitNames[i%records] })
	if err != nil {
		return err
	}
	misses, err := queryFile(dir, "misses", 200000, func(int) string { return randomLabel() + "." + zone })
	if err != nil {
		return err
	}
	floodFile, err := queryFile(dir, "flood", *flood, func(int) string { return randomLabel() + "." + zone })
	if err != nil {
		return err
	}
	perf := func(addr, file string, d time.Duration, once bool) (perfResult, error) {
		host, port, _ := strings.Cut(addr, ":")
		args := []string{"-s", host, "-p", port, "-d", file, "-c", strconv.Itoa(*clients), "-q", strconv.Itoa(*outstanding), "-T", "1"}
		if once {
			args = append(args, "-n", "1")
		} else {
			args = append(args, "-l", strconv.Itoa(int(d/time.Second)))
		}
		cpu := processCPU()
		out, err := exec.CommandContext(ctx, dnsperf, args...).CombinedOutput()
		cpu = processCPU() - cpu
		if err != nil {
			return perfResult{}, fmt.Errorf("dnsperf %s: %w\n%s", strings.Join(args, " "), err, out)
		}
		r, err := parseDNSPerf(string(out))
		if r.completed > 0 {
			r.cpuPerQuery = cpu / time.Duration(r.completed)
		}
		return r, err
	}
	median := func(addr, file string) (perfResult, error) {
		var runs []perfResult
		for range *rounds {
			r, err := perf(addr, file, *duration, false)
			if err != nil {
				return r, err
			}
			runs = append(runs, r)
		}
		slices.SortFunc(runs, func(a, b perfResult) int { return cmp.Compare(a.qps, b.qps) })
		return runs[len(runs)/2], nil
	}

	var out strings.Builder
	out.WriteString(dnsBenchAbout)
	fmt.Fprintf(&out, "Command: `go run ./cmd/dcvaas-bench dns -duration %s -clients %d -outstanding %d -rounds %d -flood %d` "+
		"(dnsperf: `-c %d -q %d -T 1 -l %d`)  \n", *duration, *clients, *outstanding, *rounds, *flood, *clients, *outstanding, int(*duration/time.Second))
	fmt.Fprintf(&out, "Machine: %d CPUs (%s/%s), %s; dnsperf and the server on the same machine; median of %d rounds; %s.\n\n",
		runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, runtime.Version(), *rounds, time.Now().UTC().Format("2006-01-02"))

	base, stopBase, err := trivialDNS()
	if err != nil {
		return err
	}
	baseline, err := median(base, misses)
	stopBase()
	if err != nil {
		return err
	}
	fmt.Fprintf(&out, "| database | scenario | queries/s | avg latency | server CPU/query | vs baseline (queries/s) | lost |\n|---|---|---|---|---|---|---|\n")
	fmt.Fprintln(&out, baseline.row("—", "trivial miekg/dns server (baseline)", baseline.qps))
	var floods []string
	dialects := []sqlstore.Dialect{sqlstore.SQLite}
	if os.Getenv("DCVAAS_TEST_POSTGRES_URL") != "" {
		dialects = append(dialects, sqlstore.Postgres)
	}
	for _, d := range dialects {
		dbURL, cleanup, err := freshDatabase(d)
		if err != nil {
			return err
		}
		defer cleanup()
		db, err := sqlstore.Open(ctx, dbURL, sqlstore.Options{})
		if err != nil {
			return err
		}
		defer db.Close()
		if err := db.Migrate(ctx); err != nil {
			return err
		}
		for i, name := range hitNames {
			if err := db.PutChallengeTXT(ctx, name, "authz", fmt.Sprintf("value-%043d", i)); err != nil {
				return err
			}
		}
		srv, err := dnsserver.New(dnsserver.Config{Zone: zone, Store: db, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			return err
		}
		if err := srv.Start("127.0.0.1:0"); err != nil {
			return err
		}
		for _, s := range []struct{ name, file string }{{"TXT hits", hits}, {"random-label misses (NXDOMAIN)", misses}} {
			r, err := median(srv.Addr(), s.file)
			if err != nil {
				srv.Shutdown(ctx)
				return err
			}
			fmt.Fprintln(&out, r.row(string(d), s.name, baseline.qps))
		}
		if *flood > 0 {
			q, f := db.QueryCount(), db.ChallengeFeedStats()
			r, err := perf(srv.Addr(), floodFile, 0, true)
			if err != nil {
				srv.Shutdown(ctx)
				return err
			}
			q2, f2 := db.QueryCount(), db.ChallengeFeedStats()
			floods = append(floods, fmt.Sprintf("| %s | %d | %d | %.0f | %d | %d | %d | %d |", d, r.sent, r.completed, r.qps,
				q2-q, f2.Reloads-f.Reloads, f2.Reconciles-f.Reconciles, f2.Heartbeats-f.Heartbeats))
		}
		srv.Shutdown(ctx)
	}
	if len(floods) > 0 {
		fmt.Fprintf(&out, "\nFlood of distinct random labels, each sent once (`dnsperf -n 1`), with the statements the store ran meanwhile "+
			"(every statement through its pools, counted by the driver wrappers), the reloads of the record copy after a change, and the "+
			"feed's time-driven work, which queries do not cause: the safety-net reconcile (a full read every 30 s) and the freshness checks "+
			"(data_version polls every 20 ms on SQLite, a ping a second on PostgreSQL):\n\n"+
			"| database | queries sent | answered | queries/s | store statements | reloads after a change | timed reconciles | freshness checks |\n|---|---|---|---|---|---|---|---|\n")
		out.WriteString(strings.Join(floods, "\n") + "\n")
	}
	fmt.Print(out.String())
	if *write != "" {
		return benchdoc.ReplaceSection(*write, "## DNS server", out.String())
	}
	return nil
}

const dnsBenchAbout = `The verify zone's DNS server (dnsserver, as ` + "`dcvaas serve`" + ` builds it, response rate limiting off
because every query comes from 127.0.0.1) over UDP on loopback, loaded by Debian's dnsperf, installed
with apt-get when missing. 1,000 published challenge names; "TXT hits" ask for their values, "misses" ask
for random labels (NXDOMAIN). Every answer comes from the node's copy of the records in memory
(dnsserver/zone.go); the baseline is a trivial miekg/dns server in the same process that answers every
query NXDOMAIN without looking anything up.

`

// ensureDNSPerf finds dnsperf, installing Debian's package when it is
// missing and this runs as root.
func ensureDNSPerf() (string, error) {
	if p, err := exec.LookPath("dnsperf"); err == nil {
		return p, nil
	}
	if os.Geteuid() != 0 {
		return "", fmt.Errorf("dnsperf is missing: apt-get install -y dnsperf")
	}
	fmt.Fprintln(os.Stderr, "dnsperf missing: apt-get install -y dnsperf")
	for _, args := range [][]string{{"update", "-qq"}, {"install", "-y", "-qq", "dnsperf"}} {
		cmd := exec.Command("apt-get", args...)
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			return "", fmt.Errorf("apt-get %s: %w", strings.Join(args, " "), err)
		}
	}
	return exec.LookPath("dnsperf")
}

func randomLabel() string {
	b := make([]byte, 8)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// queryFile writes n TXT queries in dnsperf's format ("name type").
func queryFile(dir, name string, n int, qname func(int) string) (string, error) {
	path := filepath.Join(dir, name)
	f, err := os.Create(path)
	if err != nil {
		return "", err
	}
	w := bufio.NewWriter(f)
	for i := range n {
		fmt.Fprintf(w, "%s TXT\n", qname(i))
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return "", err
	}
	return path, f.Close()
}

// trivialDNS serves NXDOMAIN to everything: miekg/dns's own cost.
func trivialDNS() (string, func(), error) {
	pc, ln, err := dnsserver.ListenBoth("127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	ln.Close()
	srv := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetRcode(r, dns.RcodeNameError)
		w.WriteMsg(m)
	})}
	started := make(chan struct{})
	srv.NotifyStartedFunc = func() { close(started) }
	go srv.ActivateAndServe()
	<-started
	return pc.LocalAddr().String(), func() { srv.Shutdown() }, nil
}

type perfResult struct {
	sent, completed, lost int
	qps                   float64
	avgLatency            time.Duration
	// cpuPerQuery: this process's CPU time (the server's; dnsperf is
	// another process) per answered query, which other load on the
	// machine disturbs far less than queries/s.
	cpuPerQuery time.Duration
}

// processCPU is the CPU time (user + system) this process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func (r perfResult) row(db, scenario string, base float64) string {
	ratio := "—"
	if base > 0 && !strings.Contains(scenario, "baseline") {
		ratio = fmt.Sprintf("%.2f×", r.qps/base)
	}
	return fmt.Sprintf("| %s | %s | %.0f | %.3f ms | %.1f µs | %s | %d |", db, scenario, r.qps, float64(r.avgLatency)/float64(time.Millisecond),
		float64(r.cpuPerQuery)/float64(time.Microsecond), ratio, r.lost)
}

var (
	perfSent      = regexp.MustCompile(`Queries sent:\s+(\d+)`)
	perfCompleted = regexp.MustCompile(`Queries completed:\s+(\d+)`)
	perfLost      = regexp.MustCompile(`Queries lost:\s+(\d+)`)
	perfQPS       = regexp.MustCompile(`Queries per second:\s+([\d.]+)`)
	perfLatency   = regexp.MustCompile(`Average Latency \(s\):\s+([\d.]+)`)
)

func parseDNSPerf(out string) (perfResult, error) {
	var r perfResult
	get := func(re *regexp.Regexp) (string, bool) {
		m := re.FindStringSubmatch(out)
		if m == nil {
			return "", false
		}
		return m[1], true
	}
	for _, f := range []struct {
		re *regexp.Regexp
		to *int
	}{{perfSent, &r.sent}, {perfCompleted, &r.completed}, {perfLost, &r.lost}} {
		s, ok := get(f.re)
		if !ok {
			return r, fmt.Errorf("dnsperf output lacks %s:\n%s", f.re, out)
		}
		*f.to, _ = strconv.Atoi(s)
	}
	s, ok := get(perfQPS)
	if !ok {
		return r, fmt.Errorf("dnsperf output lacks queries per second:\n%s", out)
	}
	r.qps, _ = strconv.ParseFloat(s, 64)
	s, ok = get(perfLatency)
	if !ok {
		return r, fmt.Errorf("dnsperf output lacks average latency:\n%s", out)
	}
	sec, _ := strconv.ParseFloat(s, 64)
	r.avgLatency = time.Duration(sec * float64(time.Second))
	return r, nil
}
