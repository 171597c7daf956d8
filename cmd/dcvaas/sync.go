package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/dcvaas/dcvaas/delivery"
)

// syncSettings are `dcvaas sync`'s flags; each has a DCVAAS_SYNC_
// variable (the flag wins). sync talks to a dcvaas API over HTTP and
// opens no database, so it has none of serve's settings.
var syncSettings = []setting{
	{"api-url", "DCVAAS_SYNC_API_URL", "", "base URL of the dcvaas API, e.g. https://dcvaas.internal:8080 (required)", groupSync},
	{"token", "DCVAAS_SYNC_TOKEN", "", "a delivery token (required; prefer the variable: flags show in ps)", groupSync},
	{"dir", "DCVAAS_SYNC_DIR", "", "directory receiving <domain>/{fullchain,privkey,cert,chain,bundle}.pem (required)", groupSync},
	{"reload", "DCVAAS_SYNC_RELOAD", "", "shell command run once after each batch of changes, e.g. 'systemctl reload nginx'", groupSync},
	{"domain", "DCVAAS_SYNC_DOMAIN", "", "only these domain names (flag repeatable; variable comma-separated)", groupSync},
	{"interval", "DCVAAS_SYNC_INTERVAL", "1m", "polling period: a safety net while the event stream is followed, the schedule while it is down (backs off up to 5m while the API fails)", groupSync},
	{"once", "DCVAAS_SYNC_ONCE", "false", "sync once and exit, non-zero when anything failed", groupSync},
	{"prune", "DCVAAS_SYNC_PRUNE", "false", "remove the directories of domains dcvaas no longer lists", groupSync},
	{"json", "DCVAAS_SYNC_JSON", "false", "with --once: print the summary as one JSON object", groupSync},
	{"own-keys", "DCVAAS_SYNC_OWN_KEYS", "false", "for keyMode csr domains: make the private key on this machine (DIR/<domain>/.own-key/privkey.pem, never uploaded), submit its CSR, install certificates with it", groupSync},
}

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

// syncBool is a boolean flag (--once, --once=false) that remembers
// whether it was given, so that its variable applies when it was not.
type syncBool string

func (b *syncBool) String() string     { return string(*b) }
func (b *syncBool) Set(v string) error { *b = syncBool(v); return nil }
func (b *syncBool) IsBoolFlag() bool   { return true }

func syncCmd(ctx context.Context, fs *flag.FlagSet, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	vals := map[string]*string{}
	var domains multiFlag
	for _, s := range syncSettings {
		if s.flag == "domain" {
			fs.Var(&domains, s.flag, s.usage+" ["+s.env+"]")
			continue
		}
		v := new(string)
		if s.def == "false" {
			fs.Var((*syncBool)(v), s.flag, s.usage+" ["+s.env+"]")
		} else {
			fs.StringVar(v, s.flag, "", s.usage+" ["+s.env+"]")
		}
		vals[s.flag] = v
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	get := func(name string) string {
		for _, s := range syncSettings {
			if s.flag == name {
				if v := *vals[name]; v != "" {
					return v
				}
				if v := getenv(s.env); v != "" {
					return v
				}
				return s.def
			}
		}
		return ""
	}
	var problems []string
	bad := func(env, format string, a ...any) { problems = append(problems, env+": "+fmt.Sprintf(format, a...)) }
	boolean := func(name, env string) bool {
		b, err := strconv.ParseBool(get(name))
		if err != nil {
			bad(env, "want true or false, got %q", get(name))
		}
		return b
	}
	cfg := delivery.AgentConfig{APIURL: get("api-url"), Token: get("token"), Dir: get("dir"), Reload: get("reload"), Domains: domains}
	if len(cfg.Domains) == 0 && getenv("DCVAAS_SYNC_DOMAIN") != "" {
		for _, d := range strings.Split(getenv("DCVAAS_SYNC_DOMAIN"), ",") {
			if d = strings.TrimSpace(d); d != "" {
				cfg.Domains = append(cfg.Domains, d)
			}
		}
	}
	if !strings.HasPrefix(cfg.APIURL, "http://") && !strings.HasPrefix(cfg.APIURL, "https://") {
		bad("DCVAAS_SYNC_API_URL", "want an http:// or https:// URL, got %q", cfg.APIURL)
	}
	if cfg.Token == "" {
		bad("DCVAAS_SYNC_TOKEN", "required: a delivery token")
	}
	if cfg.Dir == "" {
		bad("DCVAAS_SYNC_DIR", "required")
	}
	interval, err := time.ParseDuration(get("interval"))
	if err != nil || interval < time.Second {
		bad("DCVAAS_SYNC_INTERVAL", "want a duration of at least 1s, got %q", get("interval"))
	}
	cfg.Interval = interval
	once, prune, asJSON := boolean("once", "DCVAAS_SYNC_ONCE"), boolean("prune", "DCVAAS_SYNC_PRUNE"), boolean("json", "DCVAAS_SYNC_JSON")
	cfg.Prune = prune
	cfg.OwnKeys = boolean("own-keys", "DCVAAS_SYNC_OWN_KEYS")
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "; "))
	}
	cfg.Logger = slog.New(slog.NewTextHandler(stderr, nil))
	agent := delivery.NewAgent(cfg)
	if !once {
		// Follow the event stream (a renewal on disk within seconds), the
		// poller underneath for when it is down.
		trigger := &delivery.StreamTrigger{APIURL: cfg.APIURL, Token: cfg.Token, Logger: cfg.Logger,
			Poll: delivery.PollTrigger{Interval: interval, Max: 5 * time.Minute}}
		trigger.Start(ctx)
		return agent.Run(ctx, trigger)
	}
	s := agent.Sync(ctx)
	if asJSON {
		json.NewEncoder(stdout).Encode(s)
	} else {
		fmt.Fprintln(stdout, s.Line())
	}
	if !s.OK() {
		return errors.New("sync failed")
	}
	return nil
}
