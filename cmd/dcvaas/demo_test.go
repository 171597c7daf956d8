package main

import (
	"bufio"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestDemo runs `dcvaas demo --json` as a real process and checks that it
// ends with an issued certificate for shop.demo.test that verifies against
// the demo CA's root, within 30 s, and stops cleanly on SIGTERM.
func TestDemo(t *testing.T) {
	bin, env := selfBinary(nil)
	cmd := exec.Command(bin, "demo", "--json", "--http-addr", "127.0.0.1:0")
	cmd.Env = env
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	lines := make(chan demoStep)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(out)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			var s demoStep
			if err := json.Unmarshal(sc.Bytes(), &s); err != nil {
				t.Errorf("not a JSON line: %q", sc.Text())
				continue
			}
			lines <- s
		}
	}()
	steps := map[string]map[string]any{}
	timeout := time.After(30 * time.Second)
	for steps["ready"] == nil {
		select {
		case s, ok := <-lines:
			if !ok {
				t.Fatalf("demo ended before it was ready; steps %v\nstderr:\n%s", stepNames(steps), stderr.String())
			}
			data, _ := s.Data.(map[string]any)
			if data == nil {
				data = map[string]any{}
			}
			steps[s.Step] = data
		case <-timeout:
			t.Fatalf("no ready step within 30 s; steps %v\nstderr:\n%s", stepNames(steps), stderr.String())
		}
	}
	took := time.Since(start)
	for _, want := range []string{"sandbox", "bootstrap", "domain", "cname", "verify", "certificate"} {
		if steps[want] == nil {
			t.Errorf("no %q step", want)
		}
	}
	certStep := steps["certificate"]
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM([]byte(certStep["caRootsPem"].(string))) {
		t.Fatal("no demo CA root in the certificate step")
	}
	var chain []*x509.Certificate
	rest := []byte(certStep["certificatePem"].(string))
	for {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			break
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		chain = append(chain, c)
	}
	if len(chain) == 0 {
		t.Fatal("no certificate in the certificate step")
	}
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	for _, name := range []string{"shop.demo.test", "www.shop.demo.test"} {
		if _, err := chain[0].Verify(x509.VerifyOptions{DNSName: name, Roots: roots, Intermediates: inter}); err != nil {
			t.Errorf("certificate for %s: %v", name, err)
		}
	}
	if tok, _ := steps["ready"]["token"].(string); !strings.HasPrefix(tok, "dcv_") {
		t.Errorf("ready step has no token: %v", steps["ready"])
	}
	t.Logf("demo ready in %s (its own measure: %v ms)", took, steps["ready"]["durationMs"])

	// It keeps serving until told to stop, then stops cleanly.
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("demo after SIGTERM: %v\nstderr:\n%s", err, stderr.String())
	}
}

func stepNames(m map[string]map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
