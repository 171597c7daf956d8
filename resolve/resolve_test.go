package resolve_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/dcvaas/dcvaas/resolve"
	"github.com/dcvaas/dcvaas/resolve/resolvetest"
	"github.com/miekg/dns"
)

const target = "k7x2q9w4m3z8p5r1.verify.example"

func TestFollowCNAME(t *testing.T) {
	srv := resolvetest.New(t)
	srv.SetCNAME("_acme-challenge.direct.test", target+".")
	srv.SetCNAME("_ACME-Challenge.Mixed.test", "K7X2Q9W4M3Z8P5R1.Verify.Example.")
	srv.SetCNAME("_acme-challenge.chain.test", "alias.chain.test")
	srv.SetCNAME("alias.chain.test", target)
	srv.SetCNAME("_acme-challenge.wrong.test", "other.example.net")
	srv.SetTXT("_acme-challenge.txt.test", "leftover-token")
	srv.SetTXT("www.nodata.test", "x") // nodata.test exists, its _acme-challenge does not
	srv.SetCNAME("_acme-challenge.loop.test", "a.loop.test")
	srv.SetCNAME("a.loop.test", "_acme-challenge.loop.test")
	for i := range 10 {
		srv.SetCNAME(hop(i), hop(i+1))
	}

	r, err := resolve.New([]string{srv.Addr})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, tc := range []struct {
		name    string
		end     resolve.End
		targets []string
		txt     []string
		reaches bool
	}{
		{"_acme-challenge.direct.test", resolve.EndTarget, []string{target}, nil, true},
		{"_acme-challenge.mixed.test.", resolve.EndTarget, []string{target}, nil, true},
		{"_acme-challenge.chain.test", resolve.EndTarget, []string{"alias.chain.test", target}, nil, true},
		{"_acme-challenge.wrong.test", resolve.EndNXDOMAIN, []string{"other.example.net"}, nil, false},
		{"_acme-challenge.txt.test", resolve.EndNoData, nil, []string{"leftover-token"}, false},
		{"_acme-challenge.absent.test", resolve.EndNXDOMAIN, nil, nil, false},
		{"nodata.test", resolve.EndNoData, nil, nil, false},
		{"_acme-challenge.loop.test", resolve.EndLoop, []string{"a.loop.test", "_acme-challenge.loop.test"}, nil, false},
		{hop(0), resolve.EndTooLong, []string{hop(1), hop(2), hop(3), hop(4), hop(5), hop(6), hop(7), hop(8)}, nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := r.FollowCNAME(ctx, tc.name, target)
			if err != nil {
				t.Fatal(err)
			}
			if c.End != tc.end || !slices.Equal(c.Targets, tc.targets) || !slices.Equal(c.TXT, tc.txt) || c.Reaches(target) != tc.reaches {
				t.Fatalf("chain = %+v", c)
			}
		})
	}
	// The chain stops at the target without asking about it: dcvaas's own
	// zone need not answer for a check to pass.
	if n := srv.Queries(target); n != 0 {
		t.Fatalf("target queried %d times", n)
	}
}

func hop(i int) string { return "h" + string(rune('a'+i)) + ".long.test" }

func TestServfailIsAnError(t *testing.T) {
	srv := resolvetest.New(t)
	srv.Fail("_acme-challenge.broken.test", dns.RcodeServerFailure)
	r, _ := resolve.New([]string{srv.Addr})
	_, err := r.FollowCNAME(context.Background(), "_acme-challenge.broken.test", target)
	var lerr *resolve.Error
	if !errors.As(err, &lerr) || lerr.Failures[0] != (resolve.Failure{Server: srv.Addr, Reason: "SERVFAIL"}) || lerr.Reason() != "SERVFAIL" {
		t.Fatalf("err = %v", err)
	}
}

// A dead first resolver costs a timeout, then the next one answers.
func TestFailover(t *testing.T) {
	dead := resolvetest.New(t)
	dead.Hold("_acme-challenge.x.test")
	live := resolvetest.New(t)
	live.SetCNAME("_acme-challenge.x.test", target)
	r, _ := resolve.New([]string{dead.Addr, live.Addr})
	r.Timeout = 200 * time.Millisecond
	c, err := r.FollowCNAME(context.Background(), "_acme-challenge.x.test", target)
	if err != nil || !c.Reaches(target) || !slices.Equal(c.Servers, []string{live.Addr}) {
		t.Fatalf("chain = %+v, %v", c, err)
	}
	r, _ = resolve.New([]string{dead.Addr})
	r.Timeout = 100 * time.Millisecond
	_, err = r.FollowCNAME(context.Background(), "_acme-challenge.x.test", target)
	var lerr *resolve.Error
	if !errors.As(err, &lerr) || lerr.Reason() != "timeout" {
		t.Fatalf("err = %v", err)
	}
}

func TestNew(t *testing.T) {
	r, err := resolve.New([]string{"127.0.0.1", " [::1]:5353 "})
	if err != nil || !slices.Equal(r.Servers(), []string{"127.0.0.1:53", "[::1]:5353"}) {
		t.Fatalf("servers = %v, %v", r, err)
	}
	if _, err := resolve.New([]string{"dns.google:53"}); err == nil {
		t.Fatal("hostname accepted")
	}
	conf := filepath.Join(t.TempDir(), "resolv.conf")
	os.WriteFile(conf, []byte("search example.com\nnameserver 192.0.2.1\nnameserver 2001:db8::1\n"), 0o600)
	got, err := resolve.SystemServers(conf)
	if err != nil || !slices.Equal(got, []string{"192.0.2.1:53", "[2001:db8::1]:53"}) {
		t.Fatalf("system = %v, %v", got, err)
	}
}
