package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The systemd units under deploy/systemd pass `systemd-analyze verify`
// (with ExecStart pointed at an executable that exists here), and keep
// their hardening.
func TestSystemdUnits(t *testing.T) {
	analyze := realServer(t, "systemd-analyze", "systemd")
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	units, _ := filepath.Glob("../../deploy/systemd/*")
	if len(units) < 2 {
		t.Fatalf("units: %v", units)
	}
	dir := t.TempDir()
	var paths []string
	for _, u := range units {
		b, err := os.ReadFile(u)
		if err != nil {
			t.Fatal(err)
		}
		text := string(b)
		if strings.HasSuffix(u, ".service") && strings.Contains(text, "ExecStart=/usr/local/bin/dcvaas ") {
			for _, want := range []string{"NoNewPrivileges=yes", "ProtectSystem=strict"} {
				if !strings.Contains(text, want) {
					t.Errorf("%s lacks %s", u, want)
				}
			}
		}
		p := filepath.Join(dir, filepath.Base(u))
		os.WriteFile(p, []byte(strings.ReplaceAll(text, "/usr/local/bin/dcvaas", exe)), 0o644)
		paths = append(paths, p)
	}
	if b, _ := os.ReadFile("../../deploy/systemd/dcvaas.service"); !strings.Contains(string(b), "AmbientCapabilities=CAP_NET_BIND_SERVICE") {
		t.Error("dcvaas.service must be able to bind port 53 without root")
	}
	out, err := exec.Command(analyze, append([]string{"verify"}, paths...)...).CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "" {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
}
