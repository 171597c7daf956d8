package main

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"
)

// eventStream reads GET /api/events/stream of a running serve: each event
// message's JSON, decoded.
func eventStream(t *testing.T, base, token string) <-chan map[string]any {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", base+"/api/events/stream", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("stream: %v %v", resp, err)
	}
	t.Cleanup(func() { cancel(); resp.Body.Close() })
	out := make(chan map[string]any, 100)
	go func() {
		defer close(out)
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			if data, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
				var m map[string]any
				if json.Unmarshal([]byte(data), &m) == nil {
					out <- m
				}
			}
		}
	}()
	return out
}

// wantEvents checks that the list and the stream both carry the domain's
// lifecycle with the certificates' serials.
func wantEvents(t *testing.T, base, token, domainID, oldSerial, newSerial string, stream <-chan map[string]any) {
	t.Helper()
	want := []string{"domain.created", "domain.verified", "certificate.issued", "certificate.renewed"}
	check := func(where string, got []map[string]any) {
		t.Helper()
		var types []string
		for _, e := range got {
			types = append(types, e["type"].(string))
		}
		if strings.Join(types, ",") != strings.Join(want, ",") {
			t.Fatalf("%s: events %v, want %v", where, types, want)
		}
		issued, renewed := got[2]["data"].(map[string]any), got[3]["data"].(map[string]any)
		if issued["serialNumber"] != oldSerial || renewed["serialNumber"] != newSerial ||
			renewed["previousSerialNumber"] != oldSerial || renewed["previousCertificateId"] != issued["certificateId"] {
			t.Fatalf("%s: issued %v, renewed %v (serials %s → %s)", where, issued, renewed, oldSerial, newSerial)
		}
	}
	var listed []map[string]any
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		_, l := call(t, "GET", base+"/api/events?domain_id="+domainID, token, nil)
		listed = nil
		for _, it := range l["items"].([]any) {
			listed = append(listed, it.(map[string]any))
		}
		if len(listed) >= len(want) || time.Now().After(deadline) {
			break
		}
	}
	check("GET /api/events", listed)
	var streamed []map[string]any
	timeout := time.After(10 * time.Second)
	for len(streamed) < len(want) {
		select {
		case e := <-stream:
			if e["data"].(map[string]any)["domain"].(map[string]any)["id"] == domainID {
				streamed = append(streamed, e)
			}
		case <-timeout:
			t.Fatalf("stream delivered %d events of %d", len(streamed), len(want))
		}
	}
	check("GET /api/events/stream", streamed)
}
