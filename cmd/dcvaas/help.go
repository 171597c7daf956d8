package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"regexp"
	"runtime/debug"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/dcvaas/dcvaas"
)

// commandHelp is each command's own -h text: synopsis and what it does.
// Its flags follow, grouped, from the flag set the command really parses.
var commandHelp = map[string]string{
	"dcvaas demo": demoUsage, // demo.go
	"dcvaas serve": `usage: dcvaas serve [flags]

Runs the HTTP API, the job workers, the renewal scheduler and the verify
zone's DNS server in one process, after applying migrations. SIGINT or
SIGTERM stops it gracefully (DCVAAS_SHUTDOWN_TIMEOUT).`,
	"dcvaas migrate": `usage: dcvaas migrate [flags]

Applies the database migrations (dcvaas's and the job queue's) and exits.`,
	"dcvaas bootstrap": `usage: dcvaas bootstrap --org-name NAME --owner-email EMAIL [--json] [flags]

Creates an organization, its owner and a first admin API token, printed
once. The database must exist already (run 'dcvaas migrate' or 'dcvaas
serve' first with the same DCVAAS_DATABASE_URL). An existing organization
name fails and changes nothing.`,
	"dcvaas keys rotate": `usage: dcvaas keys rotate [--batch N] [flags]

Re-seals every stored secret (provider tokens, private keys, ACME account
keys, DNSSEC keys) under the current DCVAAS_ENCRYPTION_KEY, opening them with it or a key
in DCVAAS_ENCRYPTION_OLD_KEYS. Resumable; afterwards the old keys can go.`,
	"dcvaas cron run": cronUsage, // cron.go
	"dcvaas dns ds": `usage: dcvaas dns ds [flags]

Prints the verify zone's DS record (SHA-256 digest of its key-signing key)
to hand to the parent zone, creating the zone's DNSSEC keys if it has none
yet. The keys are stored sealed in the database and shared by every node.`,
	"dcvaas dns rollover": `usage: dcvaas dns rollover [flags]

Replaces the verify zone's zone-signing key without failing any validation
(pre-publish): the new key enters the DNSKEY RRset now, signs once the
DNSKEY TTL and every node's key reload have passed, and the old key leaves
the RRset once its signatures have expired from caches. Every node follows
the schedule stored in the database. The DS record does not change.`,
	"dcvaas dns": dnsUsage, // dnssec.go
	"dcvaas openapi": `usage: dcvaas openapi

Prints the OpenAPI 3.0 document (committed as OPENAPI.json, served at
/openapi.json).`,
	"dcvaas version": `usage: dcvaas version

Prints the version: the one set at build time, else the module version or
the VCS revision and time recorded by the Go toolchain.`,
	"dcvaas backup": `usage: dcvaas backup --to FILE [flags]

Writes a consistent copy of the SQLite database while serve keeps running
(VACUUM INTO). FILE must not exist; it is created 0600. Secrets in it stay
sealed: keep the encryption key (dcvaas.key or DCVAAS_ENCRYPTION_KEY) too.
PostgreSQL is backed up with pg_dump (README, Running in production).`,
	"dcvaas restore": `usage: dcvaas restore --from FILE [flags]

Replaces the SQLite database with a backup, only after the copy passed
SQLite's integrity check and the configured encryption key opened its
secrets; a refused restore changes nothing. Stop every serve using the
database first.`,
	"dcvaas healthcheck": `usage: dcvaas healthcheck [--timeout D] [flags]

Asks the local serve's /readyz (at DCVAAS_HTTP_ADDR) and exits 0 when it
answers 200: the container image's HEALTHCHECK.`,
	"dcvaas sync": `usage: dcvaas sync --api-url URL --token TOKEN --dir DIR [--reload CMD] [--domain NAME]... [--once] [--prune] [--json]

Keeps DIR/<domain>/{fullchain,privkey,cert,chain,bundle}.pem in step with
dcvaas for nginx, HAProxy and anything that reads files, through the API
with a delivery token. Every flag is also a DCVAAS_SYNC_ variable.`,
	"dcvaas completion": completionUsage,
	"dcvaas cron":       cronUsage,
	"dcvaas keys":       "usage: dcvaas keys rotate [flags]\n\nThe only subcommand is rotate: 'dcvaas keys rotate -h' shows its flags.",
	"dcvaas help":       "usage: dcvaas help [command]\n\nShows the commands, or one command's usage and flags.",
}

// helpRequested reports whether args ask for help (before any "--").
func helpRequested(args []string) bool {
	for _, a := range args {
		switch a {
		case "--":
			return false
		case "-h", "-help", "--help":
			return true
		}
	}
	return false
}

// printUsage is every command's flag.FlagSet.Usage: the command's own
// text, then its flags, those of settings under their group's heading,
// each with its type, variable and default.
func printUsage(fs *flag.FlagSet) {
	w := fs.Output()
	if text, ok := commandHelp[fs.Name()]; ok {
		fmt.Fprintln(w, text)
	} else {
		fmt.Fprintf(w, "usage: %s [flags]\n", fs.Name())
	}
	byFlag := map[string]setting{}
	for _, s := range settings {
		byFlag[s.flag] = s
	}
	sections := map[string][]*flag.Flag{}
	// A setting's flag is one parseConfig made (a command's own flag may
	// share a name, like demo's --http-addr, but not the variable).
	isSetting := func(f *flag.Flag) (setting, bool) {
		switch f.Value.(type) {
		case stringFlag, boolFlag:
			s, ok := byFlag[f.Name]
			return s, ok
		}
		return setting{}, false
	}
	fs.VisitAll(func(f *flag.Flag) {
		group := "Command"
		if s, ok := isSetting(f); ok {
			group = s.group
		}
		sections[group] = append(sections[group], f)
	})
	for _, group := range append([]string{"Command"}, settingGroups...) {
		flags := sections[group]
		if len(flags) == 0 {
			continue
		}
		title := group + " settings"
		if group == "Command" {
			title = "flags"
		}
		fmt.Fprintf(w, "\n%s:\n", title)
		for _, f := range flags {
			s, isSetting := isSetting(f)
			typ := flagType(f)
			if isSetting {
				typ = settingType(s)
			}
			head := "  --" + f.Name
			if typ != "bool" {
				head += " " + typ
			}
			fmt.Fprintln(w, head)
			usage := f.Usage
			if isSetting {
				usage += " [" + s.env
				if s.def != "" {
					usage += ", default " + s.def
				}
				usage += "]"
			} else if f.DefValue != "" && f.DefValue != "false" && f.DefValue != "0" {
				usage += " (default " + f.DefValue + ")"
			}
			fmt.Fprintln(w, "      "+usage)
		}
	}
}

// flagType names a command flag's type as -h shows it.
func flagType(f *flag.Flag) string {
	if b, ok := f.Value.(interface{ IsBoolFlag() bool }); ok && b.IsBoolFlag() {
		return "bool"
	}
	switch fmt.Sprintf("%T", f.Value) {
	case "*flag.intValue", "*flag.int64Value", "*flag.uintValue":
		return "int"
	case "*flag.durationValue":
		return "duration"
	}
	return "string"
}

var durationExample = regexp.MustCompile(`\b\d+(ms|s|m|h)\b`)

// settingType is what a setting's value is, as -h shows it, read from its
// default and description so the table needs no second column to agree.
func settingType(s setting) string {
	switch {
	case s.def == "true" || s.def == "false":
		return "bool"
	case strings.HasSuffix(s.env, "_ADDR"):
		return "host:port"
	case strings.HasSuffix(s.env, "_URL"):
		return "url"
	case strings.Contains(s.usage, "comma-separated"):
		return "list"
	}
	if _, err := strconv.Atoi(s.def); err == nil {
		return "int"
	}
	if _, err := time.ParseDuration(s.def); err == nil || (s.def == "" && durationExample.MatchString(s.usage)) {
		return "duration"
	}
	return "string"
}

// help is `dcvaas help [command]`.
func help(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		fmt.Fprintln(stdout, usage)
		return nil
	}
	return run(ctx, append(args, "-h"), getenv, stdout, stderr)
}

// version returns the version set with -ldflags, else what the Go
// toolchain recorded: the module's version, or the VCS revision and time.
func version() string {
	if dcvaas.Version != "dev" {
		return dcvaas.Version
	}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return dcvaas.Version
	}
	if v := info.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	var rev, at string
	dirty := false
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.time":
			at = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if rev == "" {
		return dcvaas.Version
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	out := "dev-" + rev
	if dirty {
		out += "-dirty"
	}
	if at != "" {
		out += " (" + at + ")"
	}
	return out
}

// commandNames are the commands completion offers, with their
// subcommands.
var commandNames = []string{"demo", "serve", "migrate", "bootstrap", "cron run", "keys rotate", "dns ds", "dns rollover", "openapi", "version", "help", "completion"}

// flagsOf returns the flags a command parses, by asking the command itself
// for its -h, so completion never disagrees with the commands.
func flagsOf(ctx context.Context, command string) []string {
	var names []string
	collect = func(fs *flag.FlagSet) {
		fs.VisitAll(func(f *flag.Flag) { names = append(names, "--"+f.Name) })
	}
	defer func() { collect = nil }()
	run(ctx, append(strings.Fields(command), "-h"), func(string) string { return "" }, io.Discard, io.Discard)
	sort.Strings(names)
	return slices.Compact(names)
}

// collect, when set (by flagsOf), receives a command's flag set instead
// of its -h text being printed.
var collect func(*flag.FlagSet)

// newFlagSet is the flag set of one command, named for it ("dcvaas cron
// run"), so its -h shows its own text and only the flags it reads. Help
// asked for goes to stdout; usage after a mistake to stderr.
func newFlagSet(cmd string, args []string, stdout, stderr io.Writer) *flag.FlagSet {
	name := "dcvaas " + cmd
	if (cmd == "cron" || cmd == "keys" || cmd == "dns") && len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		name += " " + args[0]
	}
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	if helpRequested(args) {
		fs.SetOutput(stdout)
	}
	fs.Usage = func() {
		if collect != nil {
			collect(fs)
			return
		}
		printUsage(fs)
	}
	return fs
}

// noFlags runs a command that takes no flags, answering -h with its usage.
func noFlags(fs *flag.FlagSet, args []string, do func() error) error {
	if helpRequested(args) {
		fs.Usage()
		return flag.ErrHelp
	}
	return do()
}
