package main

import (
	"bytes"
	"context"
	"flag"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestEveryCommandHelp runs each command's -h: exit 0, its own usage on
// stdout, only the flags it reads, settings under their group's heading
// with their type; `dcvaas help <command>` says the same.
func TestEveryCommandHelp(t *testing.T) {
	cases := []struct {
		command     string
		want, avoid []string
	}{
		{"demo", []string{"usage: dcvaas demo", "--json", "--http-addr string", "never talks to a real CA"}, []string{"--database-url", "--acme-cas"}},
		{"serve", []string{"usage: dcvaas serve", "HTTP settings:", "Database settings:", "DNS settings:", "ACME settings:", "Jobs settings:",
			"--http-addr host:port", "--hard-delete\n", "--workers int", "--shutdown-timeout duration", "--acme-cas list", "[DCVAAS_HTTP_ADDR, default 127.0.0.1:8080]",
			"--dns-addr host:port", "default 127.0.0.1:8053"}, nil},
		{"migrate", []string{"usage: dcvaas migrate", "Database settings:", "--database-url url", "--log-level string"}, []string{"--http-addr", "--acme-cas", "HTTP settings:"}},
		{"bootstrap", []string{"usage: dcvaas bootstrap", "flags:", "--org-name string", "--owner-email string", "--json\n", "--database-url"}, []string{"--http-addr", "--workers"}},
		{"cron run", []string{"usage: dcvaas cron run", "--delegation\n", "--json\n", "--renewal-cron", "--acme-cas"}, []string{"--http-addr", "--cors-origins"}},
		{"keys rotate", []string{"usage: dcvaas keys rotate", "--batch int", "--encryption-old-keys list"}, []string{"--http-addr", "--acme-cas"}},
		{"backup", []string{"usage: dcvaas backup --to FILE", "--to string", "--database-url"}, []string{"--http-addr", "--acme-cas"}},
		{"restore", []string{"usage: dcvaas restore --from FILE", "--from string", "--encryption-key"}, []string{"--http-addr", "--acme-cas"}},
		{"healthcheck", []string{"usage: dcvaas healthcheck", "--timeout duration", "--http-addr host:port"}, []string{"--database-url", "--acme-cas"}},
		{"sync", []string{"usage: dcvaas sync", "--api-url", "--once", "DCVAAS_SYNC_TOKEN"}, []string{"--database-url", "--acme-cas"}},
		{"dns ds", []string{"usage: dcvaas dns ds", "--dnssec\n", "--verify-zone", "--database-url"}, []string{"--http-addr", "--acme-cas"}},
		{"dns rollover", []string{"usage: dcvaas dns rollover", "pre-publish", "--verify-zone", "--encryption-key"}, []string{"--http-addr", "--acme-cas"}},
		{"dns", []string{"usage: dcvaas dns ds|rollover"}, nil},
		{"cron", []string{"usage: dcvaas cron run"}, nil},
		{"keys", []string{"usage: dcvaas keys rotate"}, nil},
		{"openapi", []string{"usage: dcvaas openapi"}, []string{"--"}},
		{"version", []string{"usage: dcvaas version"}, []string{"--"}},
		{"completion", []string{"usage: dcvaas completion bash|zsh|fish"}, nil},
		{"help", []string{"usage: dcvaas <command>", "demo", "completion", "dns ds", "dns rollover"}, nil},
	}
	for _, c := range cases {
		var out, errOut bytes.Buffer
		args := append(strings.Fields(c.command), "-h")
		if err := run(context.Background(), args, func(string) string { return "" }, &out, &errOut); err != nil {
			t.Errorf("%s -h: %v", c.command, err)
			continue
		}
		text := out.String()
		for _, w := range c.want {
			if !strings.Contains(text, w) {
				t.Errorf("%s -h lacks %q:\n%s", c.command, w, text)
			}
		}
		for _, a := range c.avoid {
			if strings.Contains(text, a) {
				t.Errorf("%s -h shows %q, which it does not read:\n%s", c.command, a, text)
			}
		}
		if errOut.Len() != 0 {
			t.Errorf("%s -h wrote to stderr: %s", c.command, errOut.String())
		}
		if c.command == "help" {
			continue
		}
		var viaHelp bytes.Buffer
		if err := run(context.Background(), append([]string{"help"}, strings.Fields(c.command)...), func(string) string { return "" }, &viaHelp, io.Discard); err != nil || viaHelp.String() != text {
			t.Errorf("dcvaas help %s differs from -h (err %v)", c.command, err)
		}
	}
}

// TestHelpExitsZero runs the real binary: -h exits 0.
func TestHelpExitsZero(t *testing.T) {
	bin, env := selfBinary(nil)
	for _, args := range [][]string{{"serve", "-h"}, {"bootstrap", "--help"}, {"help", "migrate"}, {"--version"}, {"version"}} {
		cmd := exec.Command(bin, args...)
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Errorf("%v: %v\n%s", args, err, out)
		}
	}
}

func TestBoolSettingsAreBoolFlags(t *testing.T) {
	fs := flag.NewFlagSet("dcvaas serve", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	cfg, err := parseConfig(fs, []string{"--hard-delete", "--staging", "--http-addr", "127.0.0.1:0"}, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.HardDelete || !cfg.ACME.Staging {
		t.Errorf("bare --hard-delete/--staging: HardDelete %v, Staging %v", cfg.HardDelete, cfg.ACME.Staging)
	}
	fs = flag.NewFlagSet("dcvaas serve", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	if cfg, err = parseConfig(fs, []string{"--hard-delete=false"}, func(k string) string {
		return map[string]string{"DCVAAS_HARD_DELETE": "true"}[k]
	}); err != nil || cfg.HardDelete {
		t.Errorf("--hard-delete=false over DCVAAS_HARD_DELETE=true: %v %v", cfg.HardDelete, err)
	}
}

func TestRelativeDatabasePathIsAbsolute(t *testing.T) {
	fs := flag.NewFlagSet("dcvaas migrate", flag.ContinueOnError)
	cfg, err := parseConfig(fs, nil, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	wd, _ := os.Getwd()
	if want := filepath.Join(wd, "data", "dcvaas.db"); cfg.DatabaseURL != want {
		t.Errorf("database %q, want %q", cfg.DatabaseURL, want)
	}
	if cfg.KeyFile() != filepath.Join(wd, "data", "dcvaas.key") {
		t.Errorf("key file %q", cfg.KeyFile())
	}
}

func TestVersion(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), []string{"version"}, func(string) string { return "" }, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out.String(), "dcvaas ") || strings.TrimSpace(out.String()) == "dcvaas" {
		t.Errorf("version: %q", out.String())
	}
}

// TestCompletion checks each shell's script names every command and the
// flags a command reads, and that bash and (when installed) zsh and fish
// parse it.
func TestCompletion(t *testing.T) {
	for _, shell := range []string{"bash", "zsh", "fish"} {
		var out bytes.Buffer
		if err := run(context.Background(), []string{"completion", shell}, func(string) string { return "" }, &out, io.Discard); err != nil {
			t.Fatalf("%s: %v", shell, err)
		}
		for _, w := range []string{"demo", "serve", "bootstrap", "rotate", "org-name", "hard-delete", "delegation"} {
			if !strings.Contains(out.String(), w) {
				t.Errorf("%s completion lacks %q", shell, w)
			}
		}
		check := map[string][]string{"bash": {"bash", "-n"}, "zsh": {"zsh", "-n"}, "fish": {"fish", "--no-execute"}}[shell]
		if _, err := exec.LookPath(check[0]); err != nil {
			t.Logf("%s not installed: its script is not syntax-checked", check[0])
			continue
		}
		f := filepath.Join(t.TempDir(), "c")
		os.WriteFile(f, out.Bytes(), 0o600)
		if msg, err := exec.Command(check[0], append(check[1:], f)...).CombinedOutput(); err != nil {
			t.Errorf("%s rejects its completion script: %v\n%s", shell, err, msg)
		}
	}
	if err := run(context.Background(), []string{"completion", "tcsh"}, func(string) string { return "" }, io.Discard, io.Discard); err == nil {
		t.Error("completion tcsh accepted")
	}
}
