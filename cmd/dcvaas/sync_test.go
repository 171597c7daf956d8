package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// realServer finds a Debian package's binary: skipped outside CI when
// missing, a failure in CI (where .ci/run installs it).
func realServer(t *testing.T, bin, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(bin)
	if err != nil {
		for _, dir := range []string{"/usr/sbin", "/usr/bin"} {
			if _, err := os.Stat(filepath.Join(dir, bin)); err == nil {
				return filepath.Join(dir, bin)
			}
		}
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s not found: .ci/run installs the Debian package %s", bin, pkg)
		}
		t.Skipf("%s not found: apt-get install -y %s to run this test", bin, pkg)
	}
	return p
}

// activeDomain starts serve with Pebble and returns its base URL, an admin
// token, and an active domain's id and name.
func activeDomain(t *testing.T) (w *issuanceWorld, base, token, id, name string) {
	t.Helper()
	w = newIssuanceWorld(t, filepath.Join(t.TempDir(), "dcvaas.db"))
	token, _ = bootstrapOrg(t, w.vars)
	base = w.serve(t)
	name = "shop-" + randLabel(5) + ".example.com"
	id = addDomain(t, w.dns, base, token, name)["id"].(string)
	if status, job := call(t, "POST", base+"/api/domains/"+id+"/verify", token, nil); status != http.StatusAccepted {
		t.Fatalf("verify: %d %v", status, job)
	}
	waitDomain(t, base, token, id, 60*time.Second, isActive)
	return w, base, token, id, name
}

func deliveryToken(t *testing.T, base, admin string) string {
	t.Helper()
	status, tok := call(t, "POST", base+"/api/tokens", admin, map[string]any{"name": "sync", "role": "delivery"})
	if status != http.StatusCreated {
		t.Fatalf("delivery token: %d %v", status, tok)
	}
	return tok["token"].(string)
}

// leafSerial reads DIR/<name>/fullchain.pem and privkey.pem as a server
// would, checks they belong together, and returns the leaf's serial.
func leafSerial(t *testing.T, dir, name string) string {
	t.Helper()
	pair, err := tls.LoadX509KeyPair(filepath.Join(dir, name, "fullchain.pem"), filepath.Join(dir, name, "privkey.pem"))
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%x", leaf.SerialNumber)
}

func TestSyncOnceWritesFiles(t *testing.T) {
	_, base, admin, id, name := activeDomain(t)
	tok := deliveryToken(t, base, admin)
	dir := t.TempDir()
	reloads := filepath.Join(t.TempDir(), "reloads")
	args := []string{"sync", "--api-url", base, "--dir", dir, "--once", "--json", "--reload", "echo x >> " + reloads}
	syncOnce := func() map[string]any {
		t.Helper()
		var out bytes.Buffer
		if err := run(context.Background(), args, env(map[string]string{"DCVAAS_SYNC_TOKEN": tok}), &out, os.Stderr); err != nil {
			t.Fatalf("sync --once: %v (%s)", err, out.String())
		}
		var s map[string]any
		if err := json.Unmarshal(out.Bytes(), &s); err != nil {
			t.Fatalf("summary %q: %v", out.String(), err)
		}
		return s
	}
	s := syncOnce()
	if up, _ := s["updated"].([]any); len(up) != 1 || up[0] != name || s["reload"] != "ok" {
		t.Fatalf("first pass = %v", s)
	}
	want, err := servedSerial(base, admin, id)
	if err != nil {
		t.Fatal(err)
	}
	if got := leafSerial(t, dir, name); !strings.EqualFold(strings.TrimLeft(got, "0"), strings.TrimLeft(strings.ReplaceAll(want, ":", ""), "0")) {
		t.Fatalf("serial on disk %s, served %s", got, want)
	}
	for f, mode := range map[string]os.FileMode{"privkey.pem": 0o600, "bundle.pem": 0o600, "cert.pem": 0o644, "chain.pem": 0o644} {
		st, err := os.Stat(filepath.Join(dir, name, f))
		if err != nil || st.Mode().Perm() != mode || st.Size() == 0 {
			t.Fatalf("%s: %v %v", f, st, err)
		}
	}
	// Unchanged: a 304, no reload.
	s = syncOnce()
	if s["unchanged"] != float64(1) || len(s["updated"].([]any)) != 0 || s["reload"] != nil {
		t.Fatalf("second pass = %v", s)
	}
	if b, _ := os.ReadFile(reloads); strings.Count(string(b), "x") != 1 {
		t.Fatalf("reload ran %d times, want 1", strings.Count(string(b), "x"))
	}
	// An API that is down fails the pass and leaves every file in place.
	var out bytes.Buffer
	down := []string{"sync", "--api-url", "http://127.0.0.1:1", "--dir", dir, "--once", "--prune"}
	if err := run(context.Background(), down, env(map[string]string{"DCVAAS_SYNC_TOKEN": tok}), &out, &bytes.Buffer{}); err == nil {
		t.Fatalf("sync against a dead API succeeded: %s", out.String())
	}
	if got := leafSerial(t, dir, name); got == "" {
		t.Fatal("files gone after an outage")
	}
}

// TestSyncNginx: the files the agent writes serve TLS in a real nginx,
// and a renewal reaches nginx's handshakes through the agent's reload.
func TestSyncNginx(t *testing.T) {
	nginx := realServer(t, "nginx", "nginx")
	w, base, admin, id, name := activeDomain(t)
	tok := deliveryToken(t, base, admin)
	dir := t.TempDir()
	prefix := t.TempDir()
	var out bytes.Buffer
	if err := run(context.Background(), []string{"sync", "--api-url", base, "--token", tok, "--dir", dir, "--once"}, env(nil), &out, os.Stderr); err != nil {
		t.Fatalf("sync: %v %s", err, out.String())
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	conf := filepath.Join(prefix, "nginx.conf")
	os.WriteFile(conf, []byte(fmt.Sprintf(`daemon off;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log;
events {}
http {
  access_log off;
  client_body_temp_path %[1]s; proxy_temp_path %[1]s; fastcgi_temp_path %[1]s; uwsgi_temp_path %[1]s; scgi_temp_path %[1]s;
  server {
    listen %[2]s ssl;
    server_name %[3]s;
    ssl_certificate %[4]s/fullchain.pem;
    ssl_certificate_key %[4]s/privkey.pem;
    return 200 "ok";
  }
}
`, prefix, addr, name, filepath.Join(dir, name))), 0o644)
	cmd := exec.Command(nginx, "-c", conf, "-p", prefix)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	handshake := func() (string, error) {
		conn, err := tls.DialWithDialer(&net.Dialer{Timeout: time.Second}, "tcp", addr, &tls.Config{ServerName: name, RootCAs: w.ca.Roots()})
		if err != nil {
			return "", err
		}
		defer conn.Close()
		return fmt.Sprintf("%x", conn.ConnectionState().PeerCertificates[0].SerialNumber), nil
	}
	var first string
	for deadline := time.Now().Add(10 * time.Second); ; {
		if first, err = handshake(); err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("handshake with nginx (chain verified to Pebble's root): %v", err)
	}
	if first != leafSerial(t, dir, name) {
		t.Fatalf("nginx serves %s, the agent wrote %s", first, leafSerial(t, dir, name))
	}

	// The agent follows; a renewal reaches nginx's handshakes.
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"sync", "--api-url", base, "--token", tok, "--dir", dir, "--interval", "1s",
			"--reload", nginx + " -c " + conf + " -p " + prefix + " -s reload"}, env(nil), &bytes.Buffer{}, os.Stderr)
	}()
	t.Cleanup(func() { cancel(); <-done })
	status, job := call(t, "POST", base+"/api/domains/"+id+"/renew", admin, nil)
	if status != http.StatusAccepted {
		t.Fatalf("renew: %d %v", status, job)
	}
	waitJob(t, base, admin, job["jobId"].(string), 60*time.Second)
	renewed := time.Now()
	for {
		s, err := handshake()
		if err == nil && s != first {
			t.Logf("renewed certificate served by nginx %s after the renewal finished", time.Since(renewed).Round(time.Millisecond))
			break
		}
		if time.Since(renewed) > 10*time.Second {
			t.Fatalf("nginx still serves %s (%v) 10 s after the renewal", s, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestCaddyGetCertificate: a real Caddy whose get_certificate http points
// at dcvaas serves the apex and a name under the wildcard; a name dcvaas
// does not know is 204 (Caddy falls back and, having nothing else, fails
// the handshake).
func TestCaddyGetCertificate(t *testing.T) {
	caddy := realServer(t, "caddy", "caddy")
	w, base, admin, _, name := activeDomain(t)
	tok := deliveryToken(t, base, admin)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	_, port, _ := net.SplitHostPort(addr)
	home := t.TempDir()
	caddyfile := filepath.Join(home, "Caddyfile")
	os.WriteFile(caddyfile, []byte(fmt.Sprintf(`{
	admin off
	auto_https disable_redirects
	skip_install_trust
	storage file_system %s
}
https://:%s {
	bind 127.0.0.1
	tls {
		get_certificate http %s/tls/%s/certificate
	}
	respond "ok"
}
`, filepath.Join(home, "data"), port, base, tok)), 0o644)
	cmd := exec.Command(caddy, "run", "--config", caddyfile, "--adapter", "caddyfile")
	cmd.Env = append(os.Environ(), "HOME="+home, "XDG_DATA_HOME="+home, "XDG_CONFIG_HOME="+home)
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	handshake := func(sni string) (*x509.Certificate, error) {
		conn, err := tls.DialWithDialer(&net.Dialer{Timeout: time.Second}, "tcp", addr, &tls.Config{ServerName: sni, RootCAs: w.ca.Roots()})
		if err != nil {
			return nil, err
		}
		defer conn.Close()
		return conn.ConnectionState().PeerCertificates[0], nil
	}
	var leaf *x509.Certificate
	for deadline := time.Now().Add(15 * time.Second); ; {
		if leaf, err = handshake(name); err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("handshake for %s through Caddy: %v\n%s", name, err, logs.String())
	}
	wild, err := handshake("www." + name)
	if err != nil {
		t.Fatalf("handshake for www.%s (wildcard): %v", name, err)
	}
	if wild.SerialNumber.Cmp(leaf.SerialNumber) != 0 {
		t.Fatalf("apex and wildcard served different certificates")
	}
	if _, err := handshake("unknown.example.net"); err == nil {
		t.Fatal("Caddy served a certificate for a name dcvaas does not know")
	}
	resp, err := http.Get(base + "/tls/" + tok + "/certificate?server_name=unknown.example.net")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("unknown name: %d, want 204", resp.StatusCode)
	}
}
