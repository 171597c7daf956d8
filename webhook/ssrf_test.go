package webhook

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestCheckURL: the rules a URL meets when an endpoint is created, each
// refusal naming its rule.
func TestCheckURL(t *testing.T) {
	strict := Policy{}
	httpOK := Policy{AllowHTTP: true}
	open := Policy{AllowHTTP: true, AllowPrivate: true}
	for _, c := range []struct {
		p    Policy
		url  string
		rule string // "" accepted
	}{
		{strict, "https://hooks.example.com/dcvaas", ""},
		{strict, "https://hooks.example.com:8443/x?y=1", ""},
		{strict, "https://93.184.215.14/hook", ""},
		{strict, "http://hooks.example.com/", "scheme"},
		{httpOK, "http://hooks.example.com/", ""},
		{strict, "ftp://hooks.example.com/", "scheme"},
		{strict, "javascript:alert(1)", "scheme"},
		{strict, "hooks.example.com/x", "scheme"},
		{strict, "https:///path", "host"},
		{strict, "https://user:pw@hooks.example.com/", "userinfo"},
		{strict, "https://hooks.example.com/#frag", "fragment"},
		{strict, "https://hooks.example.com:0/", "host"},
		{strict, "https://hooks.example.com:99999/", "host"},
		// The SSRF table, as literals.
		{httpOK, "http://127.0.0.1", "address"},
		{httpOK, "http://127.0.0.1:8080/x", "address"},
		{httpOK, "http://[::1]", "address"},
		{httpOK, "http://10.0.0.1", "address"},
		{httpOK, "http://169.254.169.254/latest/meta-data/", "address"},
		{httpOK, "http://localhost:8080/", "address"},
		{httpOK, "http://api.localhost/", "address"},
		{strict, "https://192.168.1.10/", "address"},
		{strict, "https://172.16.5.4/", "address"},
		{strict, "https://100.64.0.1/", "address"},
		{strict, "https://224.0.0.1/", "address"},
		{strict, "https://0.0.0.0/", "address"},
		{strict, "https://[::]/", "address"},
		{strict, "https://[fd00::1]/", "address"},
		{strict, "https://[fe80::1]/", "address"},
		{strict, "https://[::ffff:127.0.0.1]/", "address"},
		{strict, "https://[64:ff9b::a00:1]/", "address"},
		{strict, "https://2130706433/", "host"},
		{strict, "https://0x7f.1/", "host"},
		{strict, "https://" + strings.Repeat("a", MaxURLLength) + ".com/", "length"},
		{open, "http://127.0.0.1:8080/", ""},
		{open, "http://localhost/", ""},
	} {
		err := c.p.CheckURL(c.url)
		var ue *URLError
		switch {
		case c.rule == "" && err != nil:
			t.Errorf("%s (%+v): refused: %v", c.url, c.p, err)
		case c.rule != "" && !errors.As(err, &ue):
			t.Errorf("%s (%+v): accepted, want rule %s", c.url, c.p, c.rule)
		case c.rule != "" && ue.Rule != c.rule:
			t.Errorf("%s (%+v): rule %s (%v), want %s", c.url, c.p, ue.Rule, err, c.rule)
		case c.rule != "" && !strings.Contains(err.Error(), "rule: "+c.rule):
			t.Errorf("%s: message %q does not name the rule", c.url, err)
		}
	}
}

// TestDialGuard: the check on the address actually dialled, for the
// issue's table. Only loopback is ever dialled for real; the private and
// link-local addresses are refused by the same Control function before any
// packet could leave (it runs before connect).
func TestDialGuard(t *testing.T) {
	p := Policy{AllowHTTP: true}
	for _, addr := range []string{"127.0.0.1:80", "[::1]:443", "10.0.0.1:80", "169.254.169.254:80", "[::ffff:10.0.0.1]:80",
		"100.64.1.1:443", "192.168.0.1:443", "[fd12::1]:443", "224.0.0.251:5353", "0.0.0.0:80"} {
		if err := p.control("tcp", addr, nil); !errors.Is(err, ErrForbiddenAddress) {
			t.Errorf("dial %s: %v, want refused", addr, err)
		}
	}
	for _, addr := range []string{"93.184.215.14:443", "[2606:4700::1]:443"} {
		if err := p.control("tcp", addr, nil); err != nil {
			t.Errorf("dial %s: %v, want allowed", addr, err)
		}
	}
	if err := (Policy{AllowPrivate: true}).control("tcp", "127.0.0.1:80", nil); err != nil {
		t.Errorf("allow-private: %v", err)
	}
}

// receiver counts the requests it gets.
func receiver(t *testing.T, h http.HandlerFunc) (*httptest.Server, *atomic.Int64) {
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		if h != nil {
			h(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

func send(p Policy, u string) Result {
	return Send(context.Background(), p.Client(5*time.Second), Request{URL: u, ID: "msg_1", Body: []byte(`{}`),
		Secrets: []string{"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}, UserAgent: "test"}, time.Now)
}

// TestSendRefusesLoopback: real deliveries to a live receiver on the
// loopback, by address and by a name that resolves to it (localhost,
// resolved by the system), never reach it while AllowPrivate is off.
func TestSendRefusesLoopback(t *testing.T) {
	srv, hits := receiver(t, nil)
	u, _ := url.Parse(srv.URL)
	port := u.Port()
	strict := Policy{AllowHTTP: true}
	for _, target := range []string{"http://127.0.0.1:" + port + "/", "http://localhost:" + port + "/", "http://[::ffff:127.0.0.1]:" + port + "/"} {
		res := send(strict, target)
		if res.OK() || !strings.Contains(res.Err, "refused to connect") {
			t.Errorf("%s: %+v, want refused", target, res)
		}
	}
	if hits.Load() != 0 {
		t.Fatalf("the receiver got %d requests", hits.Load())
	}
	if res := send(Policy{AllowHTTP: true, AllowPrivate: true}, srv.URL); !res.OK() {
		t.Fatalf("allow-private: %+v", res)
	}
}

// TestSendNoRedirect: a redirect, here to another loopback receiver, is
// not followed: the attempt fails with the 3xx and the target sees nothing.
func TestSendNoRedirect(t *testing.T) {
	target, targetHits := receiver(t, nil)
	tu, _ := url.Parse(target.URL)
	redirector, _ := receiver(t, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "http://127.0.0.1:"+tu.Port()+"/steal", http.StatusFound)
	})
	res := send(Policy{AllowHTTP: true, AllowPrivate: true}, redirector.URL)
	if res.OK() || res.StatusCode != http.StatusFound || !strings.Contains(res.Err, "redirects are not followed") {
		t.Fatalf("redirect: %+v", res)
	}
	if targetHits.Load() != 0 {
		t.Fatalf("the redirect was followed")
	}
}

// TestSendBodyCap: at most 64 KiB of an answer is read, 1 KiB kept.
func TestSendBodyCap(t *testing.T) {
	var wrote atomic.Int64
	srv, _ := receiver(t, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
		chunk := []byte(strings.Repeat("x", 1024))
		for range 4096 { // 4 MiB, if anyone read it
			if _, err := w.Write(chunk); err != nil {
				return
			}
			wrote.Add(1024)
		}
	})
	res := send(Policy{AllowHTTP: true, AllowPrivate: true}, srv.URL)
	if !res.OK() || len(res.Body) != KeptBody {
		t.Fatalf("%d bytes kept, status %d", len(res.Body), res.StatusCode)
	}
	if wrote.Load() >= 4<<20 {
		t.Fatalf("the whole 4 MiB body was read")
	}
}

// TestRetryAfter reads both forms.
func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	if d := retryAfter("120", now); d != 2*time.Minute {
		t.Errorf("seconds: %s", d)
	}
	if d := retryAfter(now.Add(time.Hour).Format(http.TimeFormat), now); d != time.Hour {
		t.Errorf("date: %s", d)
	}
	if d := retryAfter("soon", now); d != 0 {
		t.Errorf("junk: %s", d)
	}
}

// FuzzWebhookURL: whatever the input, CheckURL does not panic, and what
// it accepts under the strict policy is an http(s) URL with a host that is
// not a forbidden literal address.
func FuzzWebhookURL(f *testing.F) {
	for _, s := range []string{"https://hooks.example.com/x", "http://127.0.0.1", "http://[::1]", "http://10.0.0.1",
		"http://169.254.169.254", "https://[::ffff:7f00:1]/", "https://0x7f.0.0.1/", "https://user@h.example/",
		"https://h.example:65536/", "https://[fe80::1%25eth0]/", "HTTPS://EXAMPLE.COM", "https://xn--bcher-kva.example/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		p := Policy{AllowHTTP: true}
		if err := p.CheckURL(raw); err != nil {
			var ue *URLError
			if !errors.As(err, &ue) || ue.Rule == "" {
				t.Fatalf("%q: error without a rule: %v", raw, err)
			}
			return
		}
		u, err := url.Parse(raw)
		if err != nil {
			t.Fatalf("%q accepted but does not parse", raw)
		}
		if s := strings.ToLower(u.Scheme); s != "http" && s != "https" {
			t.Fatalf("%q accepted with scheme %q", raw, u.Scheme)
		}
		if u.Hostname() == "" || u.User != nil {
			t.Fatalf("%q accepted without host or with userinfo", raw)
		}
		if a, err := netip.ParseAddr(u.Hostname()); err == nil && Forbidden(a) != "" {
			t.Fatalf("%q accepted with forbidden address %s", raw, a)
		}
		if (Policy{}).CheckURL(raw) == nil && strings.ToLower(u.Scheme) != "https" {
			t.Fatalf("%q accepted as https-only but is %s", raw, u.Scheme)
		}
	})
}
