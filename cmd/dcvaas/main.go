// Command dcvaas runs the delegated-DCV certificate service and its
// operator commands. main only wires the process to run, which tests call
// directly with their own arguments, environment and output.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "dcvaas:", err)
		}
		os.Exit(1)
	}
}

const usage = `usage: dcvaas <command> [flags]

commands:
  demo        issue a certificate end to end on this machine (local test CA and DNS)
  serve       run the API, job workers, scheduler and DNS server
  migrate     apply database migrations and exit
  bootstrap   create an organization, its owner and a first API token
  keys rotate re-encrypt every secret under DCVAAS_ENCRYPTION_KEY
  dns ds      print the verify zone's DNSSEC DS record for the parent zone
  dns rollover replace the verify zone's DNSSEC zone-signing key (pre-publish)
  cron run    run the daily renewal check now (--json, --delegation)
  backup      write a consistent copy of the SQLite database (--to FILE)
  restore     replace the SQLite database with a checked backup (--from FILE)
  healthcheck exit 0 when the local serve answers /readyz (container HEALTHCHECK)
  sync        keep certificate files for nginx/HAProxy in step (--api-url, --token, --dir, --once)
  openapi     print the OpenAPI 3.0 document
  version     print the version (also --version)
  completion  print a shell completion script (bash, zsh, fish)
  help        show a command's usage: dcvaas help <command>

Run 'dcvaas <command> -h' (or 'dcvaas help <command>') for the command's
flags; every setting flag also has a DCVAAS_ environment variable.`

// run is the whole program. ctx ends on SIGINT/SIGTERM.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprintln(stderr, usage)
		return errors.New("no command given")
	}
	cmd, args := args[0], args[1:]
	fs := newFlagSet(cmd, args, stdout, stderr) // help.go
	err := func() error {
		switch cmd {
		case "demo":
			return demo(ctx, fs, args, stdout, stderr) // demo.go
		case "serve":
			return serve(ctx, fs, args, getenv, stderr)
		case "migrate":
			return migrate(ctx, fs, args, getenv, stderr)
		case "bootstrap":
			return bootstrap(ctx, fs, args, getenv, stdout, stderr)
		case "cron":
			return cronCmd(ctx, fs, args, getenv, stdout, stderr) // cron.go
		case "keys":
			return keys(ctx, fs, args, getenv, stdout, stderr)
		case "dns":
			return dnsCmd(ctx, fs, args, getenv, stdout, stderr) // dnssec.go
		case "backup":
			return backup(ctx, fs, args, getenv, stdout, stderr) // backup.go
		case "restore":
			return restore(ctx, fs, args, getenv, stdout, stderr) // backup.go
		case "healthcheck":
			return healthcheck(ctx, fs, args, getenv, stdout) // healthcheck.go
		case "sync":
			return syncCmd(ctx, fs, args, getenv, stdout, stderr) // sync.go
		case "openapi":
			return noFlags(fs, args, func() error { return printOpenAPI(stdout) })
		case "version", "--version", "-version":
			return noFlags(fs, args, func() error { _, err := fmt.Fprintln(stdout, "dcvaas", version()); return err })
		case "completion":
			return noFlags(fs, args, func() error { return completion(ctx, args, stdout, stderr) }) // completion.go
		case "help", "-h", "--help", "-help":
			return help(ctx, args, getenv, stdout, stderr) // help.go
		default:
			fmt.Fprintln(stderr, usage)
			return fmt.Errorf("unknown command %q", cmd)
		}
	}()
	if errors.Is(err, flag.ErrHelp) {
		return nil // -h printed the command's usage
	}
	return err
}

// newLogger builds the process logger from the configuration.
func newLogger(cfg *Config, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: cfg.LogLevel}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
