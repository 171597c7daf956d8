package httpapi_test

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/dcvaas/dcvaas/sqlstore"
)

// events decodes an event list: items and nextCursor.
func (r *response) events(t *testing.T) []map[string]any {
	t.Helper()
	var l struct {
		Items      []map[string]any `json:"items"`
		NextCursor *string          `json:"nextCursor"`
	}
	if err := json.Unmarshal(r.body, &l); err != nil || l.Items == nil || l.NextCursor == nil {
		t.Fatalf("not an event list: %s (%v)", r.body, err)
	}
	return l.Items
}

// waitEvents lists events until want are readable (on PostgreSQL, readers
// hold back events while an older transaction anywhere still runs).
func (b *bundle) waitEvents(t *testing.T, token, query string, want int) *response {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		r := b.do("GET", "/api/events"+query, token, nil).want(t, 200)
		if len(r.events(t)) >= want || time.Now().After(deadline) {
			return r
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestListEvents(t *testing.T) {
	forEachDialect(t, func(t *testing.T, dialect sqlstore.Dialect) {
		b := setup(t, dialect)
		d1 := b.createDomain(b.a.admin, "one.example.com")
		b.createDomain(b.a.admin, "two.example.com")
		b.do("DELETE", "/api/domains/"+d1["id"].(string), b.a.admin, nil).want(t, 204)
		b.createDomain(b.b.admin, "other.example.com")

		r := b.waitEvents(t, b.a.read, "", 3)
		items := r.events(t)
		var types []string
		for _, it := range items {
			types = append(types, it["type"].(string))
			if it["organizationId"] != b.a.org.ID || it["id"] == "" || it["timestamp"] == "" {
				t.Fatalf("item %v", it)
			}
		}
		if strings.Join(types, ",") != "domain.created,domain.created,domain.deleted" {
			t.Fatalf("types %v", types)
		}
		dom := items[0]["data"].(map[string]any)["domain"].(map[string]any)
		if dom["domainName"] != "one.example.com" || dom["status"] != "pending_cname" || dom["id"] != d1["id"] {
			t.Fatalf("data %v", items[0]["data"])
		}
		next := r.obj(t)["nextCursor"].(string)
		// Reading on from the last cursor: nothing, and the same cursor.
		again := b.do("GET", "/api/events?after="+next, b.a.admin, nil).want(t, 200)
		if len(again.events(t)) != 0 || again.obj(t)["nextCursor"] != next {
			t.Fatalf("after last: %s", again.body)
		}
		// Paging one at a time gives the same events.
		cursor := ""
		for i := range 3 {
			p := b.do("GET", "/api/events?limit=1&after="+cursor, b.a.admin, nil).want(t, 200)
			if it := p.events(t); len(it) != 1 || it[0]["id"] != items[i]["id"] {
				t.Fatalf("page %d: %s", i, p.body)
			}
			cursor = p.obj(t)["nextCursor"].(string)
		}
		if n := len(b.do("GET", "/api/events?type=domain.deleted", b.a.admin, nil).want(t, 200).events(t)); n != 1 {
			t.Fatalf("domain.deleted: %d", n)
		}
		if n := len(b.do("GET", "/api/events?type=domain.*", b.a.admin, nil).want(t, 200).events(t)); n != 3 {
			t.Fatalf("domain.*: %d", n)
		}
		if n := len(b.do("GET", "/api/events?type=certificate.*", b.a.admin, nil).want(t, 200).events(t)); n != 0 {
			t.Fatalf("certificate.*: %d", n)
		}
		if n := len(b.do("GET", "/api/events?domain_id="+d1["id"].(string), b.a.admin, nil).want(t, 200).events(t)); n != 2 {
			t.Fatalf("domain_id: %d", n)
		}
		// Organization b sees its own event only, and none of a's by id.
		if n := len(b.waitEvents(t, b.b.admin, "", 1).events(t)); n != 1 {
			t.Fatalf("b sees %d events", n)
		}
		if n := len(b.do("GET", "/api/events?domain_id="+d1["id"].(string), b.b.admin, nil).want(t, 200).events(t)); n != 0 {
			t.Fatalf("b sees a's domain events: %d", n)
		}
		for _, q := range []string{"?type=domain.renamed", "?type=cert*", "?after=abc", "?after=1-x", "?limit=0"} {
			b.do("GET", "/api/events"+q, b.a.admin, nil).wantProblem(t, 422)
		}
		b.do("GET", "/api/events", "", nil).wantProblem(t, 401)
	})
}

// sseMessage is one Server-Sent Events message, or a comment.
type sseMessage struct {
	id, event, data, comment string
}

// openStream connects to the SSE stream and returns its messages.
func (b *bundle) openStream(t *testing.T, token, query string, headers ...string) <-chan sseMessage {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", b.srv.URL+"/api/events/stream"+query, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := b.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("stream: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	t.Cleanup(func() { cancel(); resp.Body.Close() })
	out := make(chan sseMessage, 100)
	go func() {
		defer close(out)
		sc := bufio.NewScanner(resp.Body)
		var m sseMessage
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				out <- m
				m = sseMessage{}
			case strings.HasPrefix(line, ":"):
				m.comment = strings.TrimSpace(line[1:])
			case strings.HasPrefix(line, "id: "):
				m.id = line[4:]
			case strings.HasPrefix(line, "event: "):
				m.event = line[7:]
			case strings.HasPrefix(line, "data: "):
				m.data = line[6:]
			}
		}
	}()
	return out
}

// next returns the next event message (skipping comments) within 10 s.
func next(t *testing.T, c <-chan sseMessage) sseMessage {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case m, ok := <-c:
			if !ok {
				t.Fatal("stream ended")
			}
			if m.event != "" {
				return m
			}
		case <-timeout:
			t.Fatal("no event within 10s")
		}
	}
}

func TestStreamEvents(t *testing.T) {
	forEachDialect(t, func(t *testing.T, dialect sqlstore.Dialect) {
		b := setup(t, dialect, options{heartbeat: 100 * time.Millisecond})
		// Made before the stream opened: not sent without Last-Event-ID.
		b.createDomain(b.a.admin, "before.example.com")
		b.waitEvents(t, b.a.admin, "", 1)
		stream := b.openStream(t, b.a.read, "?type=domain.created")
		other := b.openStream(t, b.b.read, "")
		if m := <-stream; m.comment != "stream open" {
			t.Fatalf("first message %+v", m)
		}
		d := b.createDomain(b.a.admin, "live.example.com")
		b.do("DELETE", "/api/domains/"+d["id"].(string), b.a.admin, nil).want(t, 204) // filtered out
		d2 := b.createDomain(b.a.admin, "live2.example.com")
		m := next(t, stream)
		var env map[string]any
		if err := json.Unmarshal([]byte(m.data), &env); err != nil {
			t.Fatal(err)
		}
		if m.event != "domain.created" || m.id == "" || env["type"] != "domain.created" ||
			env["data"].(map[string]any)["domain"].(map[string]any)["id"] != d["id"] {
			t.Fatalf("message %+v", m)
		}
		m2 := next(t, stream)
		if !strings.Contains(m2.data, d2["id"].(string)) {
			t.Fatalf("second message %+v", m2)
		}
		// Heartbeats while idle.
		for deadline := time.After(5 * time.Second); ; {
			select {
			case hb := <-stream:
				if hb.comment != "heartbeat" {
					t.Fatalf("unexpected %+v", hb)
				}
			case <-deadline:
				t.Fatal("no heartbeat")
			}
			break
		}
		// Resume after the first: the second again, then nothing old.
		resumed := b.openStream(t, b.a.read, "?type=domain.created", "Last-Event-ID", m.id)
		if r := next(t, resumed); r.id != m2.id {
			t.Fatalf("resumed with %+v, want id %s", r, m2.id)
		}
		// Organization b's stream saw nothing of a's.
		b.createDomain(b.b.admin, "mine.example.com")
		if o := next(t, other); !strings.Contains(o.data, "mine.example.com") {
			t.Fatalf("b's stream got %+v", o)
		}
		b.do("GET", "/api/events/stream", b.a.read, nil, "Last-Event-ID", "nonsense").wantProblem(t, 422)
		b.do("GET", "/api/events/stream?type=nope", b.a.read, nil).wantProblem(t, 422)
	})
}

// TestStreamScopedDeliveryToken: a delivery token may follow the stream
// (dcvaas sync does), and a scoped one sees its domains' events only.
func TestStreamScopedDeliveryToken(t *testing.T) {
	b := setup(t, sqlstore.SQLite, options{heartbeat: 100 * time.Millisecond})
	scoped := b.do("POST", "/api/tokens", b.a.admin, map[string]any{"name": "edge", "role": "delivery",
		"scope": map[string]any{"names": []string{"*.shop.example.com"}}}).want(t, 201).obj(t)["token"].(string)
	all := b.do("POST", "/api/tokens", b.a.admin, map[string]any{"name": "all", "role": "delivery"}).want(t, 201).obj(t)["token"].(string)
	sc := b.openStream(t, scoped, "?type=domain.*")
	un := b.openStream(t, all, "?type=domain.*")
	b.createDomain(b.a.admin, "other.example.com")
	mine := b.createDomain(b.a.admin, "a.shop.example.com")
	if m := next(t, sc); !strings.Contains(m.data, mine["id"].(string)) {
		t.Fatalf("scoped stream sent %+v, want only a.shop.example.com", m)
	}
	if m := next(t, un); !strings.Contains(m.data, "other.example.com") {
		t.Fatalf("unscoped stream sent %+v first", m)
	}
	// Resuming from the start skips the out-of-scope event too.
	resumed := b.openStream(t, scoped, "?type=domain.*", "Last-Event-ID", "0-0")
	if m := next(t, resumed); !strings.Contains(m.data, mine["id"].(string)) {
		t.Fatalf("resumed scoped stream sent %+v", m)
	}
	// Still no list of events for delivery tokens.
	b.do("GET", "/api/events", scoped, nil).wantProblem(t, 403)
}
