package delivery

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// AgentConfig is what `dcvaas sync` is told.
type AgentConfig struct {
	APIURL string // e.g. https://dcvaas.internal:8080
	Token  string // a delivery token
	Dir    string // where DIR/<domain>/*.pem go
	// Reload is a shell command run once after each batch of changes.
	Reload string
	// Domains limits the sync to these names (empty: every domain the
	// token sees).
	Domains []string
	// Prune removes the directories of domains the API no longer lists.
	Prune bool
	// OwnKeys: for domains of keyMode csr, make the private key on this
	// machine, submit its CSR, and install certificates with it
	// (ownkeys.go). The key is never uploaded.
	OwnKeys bool
	// Interval is the polling period while nothing fails.
	Interval   time.Duration
	HTTPClient *http.Client
	Logger     *slog.Logger
}

// Summary is one sync pass.
type Summary struct {
	Domains   int      `json:"domains"`
	Updated   []string `json:"updated"`
	Unchanged int      `json:"unchanged"`
	Failed    []string `json:"failed"`
	Pruned    []string `json:"pruned"`
	// Waiting lists --own-keys domains whose certificate for this
	// machine's key is still being issued (no failure).
	Waiting []string `json:"waiting,omitempty"`
	// Reload is "", "ok" or the failure of the reload command.
	Reload string `json:"reload,omitempty"`
	Error  string `json:"error,omitempty"`
}

// OK reports whether nothing in the pass failed.
func (s Summary) OK() bool {
	return s.Error == "" && len(s.Failed) == 0 && (s.Reload == "" || s.Reload == "ok")
}

// Line is the one-line form of the summary.
func (s Summary) Line() string {
	line := fmt.Sprintf("sync: %d domains, %d updated, %d unchanged, %d failed, %d pruned",
		s.Domains, len(s.Updated), s.Unchanged, len(s.Failed), len(s.Pruned))
	if len(s.Waiting) > 0 {
		line += fmt.Sprintf(", %d waiting for a certificate for their own key", len(s.Waiting))
	}
	if s.Reload != "" {
		line += ", reload " + s.Reload
	}
	if s.Error != "" {
		line += ", error: " + s.Error
	}
	return line
}

// Agent keeps DIR in step with the certificates a delivery token sees.
// Files change only when a complete, matching certificate and key were
// received: an outage, a 5xx or a half answer leaves them as they are.
type Agent struct {
	cfg AgentConfig
	// reloadDue says an earlier reload failed (or changes were written
	// without one): the next pass reloads even without changes.
	reloadDue bool
	// submitted remembers, per domain id, the public key whose CSR dcvaas
	// is known to have (--own-keys).
	submitted map[string]string
}

// NewAgent returns an agent for cfg.
func NewAgent(cfg AgentConfig) *Agent {
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 30 * time.Second}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Interval <= 0 {
		cfg.Interval = time.Minute
	}
	cfg.APIURL = strings.TrimRight(cfg.APIURL, "/")
	return &Agent{cfg: cfg, submitted: map[string]string{}}
}

// Trigger says when the next pass is due. Polling is the default; an
// event stream (GET /api/events/stream) plugs in here and returns as soon
// as a certificate event arrives.
type Trigger interface {
	// Wait blocks until a pass is due; failed says the last pass failed,
	// so a poller backs off.
	Wait(ctx context.Context, failed bool) error
}

// PollTrigger polls every Interval, backing off (doubling, up to Max)
// while passes fail.
type PollTrigger struct {
	Interval, Max time.Duration
	cur           time.Duration
}

// next is the delay before the next pass.
func (p *PollTrigger) next(failed bool) time.Duration {
	if !failed || p.cur == 0 {
		p.cur = p.Interval
	} else {
		p.cur = min(2*p.cur, max(p.Max, p.Interval))
	}
	return p.cur
}

// Wait implements Trigger.
func (p *PollTrigger) Wait(ctx context.Context, failed bool) error {
	t := time.NewTimer(p.next(failed))
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Run syncs until ctx ends, a pass each time trigger says so.
func (a *Agent) Run(ctx context.Context, trigger Trigger) error {
	for {
		s := a.Sync(ctx)
		if ctx.Err() != nil {
			return nil
		}
		lvl := slog.LevelInfo
		if !s.OK() {
			lvl = slog.LevelWarn
		}
		if !s.OK() || len(s.Updated)+len(s.Pruned) > 0 {
			a.cfg.Logger.Log(ctx, lvl, s.Line())
		}
		if s.Error != "" {
			a.cfg.Logger.Warn("API unavailable: keeping the current files, retrying with backoff", "err", s.Error)
		}
		if err := trigger.Wait(ctx, !s.OK()); err != nil {
			return nil
		}
	}
}

// apiDomain is the part of the API's domain we read.
type apiDomain struct {
	ID              string `json:"id"`
	DomainName      string `json:"domainName"`
	Status          string `json:"status"`
	KeyMode         string `json:"keyMode,omitempty"`
	KeyType         string `json:"keyType,omitempty"`
	IncludeWildcard bool   `json:"includeWildcard"`
}

// ownKey says whether the agent makes the domain's key itself.
func (a *Agent) ownsKey(d apiDomain) bool { return a.cfg.OwnKeys && d.KeyMode == "csr" }

type apiCertificate struct {
	SerialNumber   string    `json:"serialNumber"`
	NotAfter       time.Time `json:"notAfter"`
	CertificatePEM string    `json:"certificatePem"`
	ChainPEM       string    `json:"chainPem"`
	PrivateKeyPEM  string    `json:"privateKeyPem"`
}

// errUnavailable is an outage: nothing may be deleted because of it.
var errUnavailable = errors.New("API unavailable")

// errNotFound is a 404.
var errNotFound = errors.New("not found")

// Sync runs one pass.
func (a *Agent) Sync(ctx context.Context) Summary {
	s := Summary{Updated: []string{}, Failed: []string{}, Pruned: []string{}}
	domains, err := a.listDomains(ctx)
	if err != nil {
		s.Error = err.Error()
		return s
	}
	seen := map[string]bool{}
	for _, d := range domains {
		if len(a.cfg.Domains) > 0 && !slices.Contains(a.cfg.Domains, d.DomainName) {
			continue
		}
		if !validDirName(d.DomainName) {
			s.Failed = append(s.Failed, d.DomainName)
			continue
		}
		seen[d.DomainName] = true
		if d.Status != "active" {
			// Issuing again or failed: whatever is on disk stays. A
			// domain with its own key needs the CSR before it can issue.
			if a.ownsKey(d) && d.Status != "failed" {
				if _, err := a.ownKeyCSR(ctx, d); err != nil {
					a.cfg.Logger.Warn("cannot submit the CSR of this machine's key", "domain", d.DomainName, "err", err)
					s.Failed = append(s.Failed, d.DomainName)
				}
			}
			continue
		}
		s.Domains++
		var changed bool
		var err error
		if a.ownsKey(d) {
			changed, err = a.syncOwnKey(ctx, d)
		} else {
			changed, err = a.syncDomain(ctx, d)
		}
		switch {
		case errors.Is(err, errWaiting):
			s.Waiting = append(s.Waiting, d.DomainName)
		case err != nil:
			a.cfg.Logger.Warn("domain not synced; its files stay as they were", "domain", d.DomainName, "err", err)
			s.Failed = append(s.Failed, d.DomainName)
		case changed:
			s.Updated = append(s.Updated, d.DomainName)
		default:
			s.Unchanged++
		}
	}
	if a.cfg.Prune && len(a.cfg.Domains) == 0 {
		s.Pruned = a.prune(seen)
	}
	if len(s.Updated)+len(s.Pruned) > 0 {
		a.reloadDue = true
	}
	if a.reloadDue && a.cfg.Reload != "" {
		if err := a.reload(ctx); err != nil {
			s.Reload = err.Error()
		} else {
			s.Reload, a.reloadDue = "ok", false
		}
	}
	return s
}

func (a *Agent) listDomains(ctx context.Context) ([]apiDomain, error) {
	var all []apiDomain
	for offset := 0; ; {
		var page struct {
			Items []apiDomain `json:"items"`
			Total int         `json:"total"`
		}
		_, _, err := a.get(ctx, fmt.Sprintf("/api/domains?limit=200&offset=%d", offset), "", &page)
		if err != nil {
			return nil, err
		}
		all = append(all, page.Items...)
		offset += len(page.Items)
		if len(page.Items) == 0 || offset >= page.Total {
			return all, nil
		}
	}
}

// get fetches path as JSON into v. notModified is true on 304.
func (a *Agent) get(ctx context.Context, path, etag string, v any) (notModified bool, newETag string, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.cfg.APIURL+path, nil)
	if err != nil {
		return false, "", err
	}
	req.Header.Set("Authorization", "Bearer "+a.cfg.Token)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "dcvaas-sync")
	if etag != "" {
		req.Header.Set("If-None-Match", etag)
	}
	resp, err := a.cfg.HTTPClient.Do(req)
	if err != nil {
		return false, "", fmt.Errorf("%w: %v", errUnavailable, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return false, "", fmt.Errorf("%w: %v", errUnavailable, err)
	}
	switch {
	case resp.StatusCode == http.StatusNotModified:
		return true, etag, nil
	case resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests:
		return false, "", fmt.Errorf("%w: %s %s", errUnavailable, path, resp.Status)
	case resp.StatusCode == http.StatusNotFound:
		var p struct{ Detail string }
		json.Unmarshal(body, &p)
		return false, "", fmt.Errorf("%s: %s %s: %w", path, resp.Status, p.Detail, errNotFound)
	case resp.StatusCode != http.StatusOK:
		var p struct{ Detail string }
		json.Unmarshal(body, &p)
		return false, "", fmt.Errorf("%s: %s %s", path, resp.Status, p.Detail)
	}
	if err := json.Unmarshal(body, v); err != nil {
		return false, "", fmt.Errorf("%s: %w", path, err)
	}
	return false, resp.Header.Get("ETag"), nil
}

// syncDomain fetches d's certificate unless the one on disk is current,
// and writes it.
func (a *Agent) syncDomain(ctx context.Context, d apiDomain) (bool, error) {
	dir := filepath.Join(a.cfg.Dir, d.DomainName)
	etag := ""
	if b, err := os.ReadFile(filepath.Join(dir, "current", ".etag")); err == nil {
		etag = strings.TrimSpace(string(b))
	}
	var c apiCertificate
	notModified, newETag, err := a.get(ctx, "/api/domains/"+url.PathEscape(d.ID)+"/certificate", etag, &c)
	if err != nil || notModified {
		return false, err
	}
	if c.PrivateKeyPEM == "" {
		if d.KeyMode == "csr" {
			return false, errors.New("the domain's key is customer-held (keyMode csr) and dcvaas has none: run with --own-keys to make it on this machine")
		}
		return false, errors.New("the answer carries no private key: is the token a delivery token?")
	}
	// Never install a certificate with a key that is not its own.
	if _, err := tls.X509KeyPair([]byte(c.CertificatePEM), []byte(c.PrivateKeyPEM)); err != nil {
		return false, fmt.Errorf("certificate and key do not match: %w", err)
	}
	return true, writeSet(dir, newETag, c)
}

func (a *Agent) reload(ctx context.Context) error {
	cmd := exec.CommandContext(ctx, "/bin/sh", "-c", a.cfg.Reload)
	out, err := cmd.CombinedOutput()
	if err != nil {
		a.cfg.Logger.Warn("reload failed; the new files are in place, the reload is retried", "cmd", a.cfg.Reload, "err", err, "output", strings.TrimSpace(string(out)))
		return fmt.Errorf("failed: %v", err)
	}
	return nil
}

// validDirName refuses names that could escape DIR.
func validDirName(n string) bool {
	return n != "" && n != "." && n != ".." && !strings.ContainsAny(n, `/\`) && !strings.HasPrefix(n, ".")
}
