// Package godaddy manages DNS records through GoDaddy's Domains API v1
// (plain HTTP). GoDaddy addresses records by type and relative name; a PUT
// replaces every record of that type and name, which makes setting the
// CNAME naturally idempotent.
package godaddy

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/dcvaas/dcvaas/provider"
)

// DefaultURL is the production API base.
const DefaultURL = "https://api.godaddy.com"

// MinTTL is the smallest TTL GoDaddy accepts; smaller ones are raised to it
// rather than refused, since the CNAME's TTL hardly matters for delegation.
const MinTTL = 600

const name = "godaddy"

// pageSize is how many records one listing request asks for.
const pageSize = 500

// Client is a GoDaddy account seen through one credential.
type Client struct {
	base          string
	authorization string
	hc            *http.Client
}

// SSOKey is the Authorization value for an API key and secret.
func SSOKey(key, secret string) string { return "sso-key " + key + ":" + secret }

// Bearer is the Authorization value for an OAuth access token.
func Bearer(token string) string { return "Bearer " + token }

// New returns a client for baseURL (DefaultURL when empty) that sends
// authorization (SSOKey or Bearer) with every request.
func New(baseURL, authorization string, hc *http.Client) *Client {
	if baseURL == "" {
		baseURL = DefaultURL
	}
	if hc == nil {
		hc = http.DefaultClient
	}
	return &Client{base: strings.TrimSuffix(baseURL, "/"), authorization: authorization, hc: hc}
}

var _ provider.DNS = (*Client)(nil)

type domain struct {
	Domain string `json:"domain"`
	Status string `json:"status"`
}

type record struct {
	Type string `json:"type,omitempty"`
	Name string `json:"name,omitempty"`
	Data string `json:"data"`
	TTL  int    `json:"ttl"`
}

// Zones implements provider.DNS: the account's active domains, paged by
// marker (the last domain of the previous page).
func (c *Client) Zones(ctx context.Context) ([]provider.Zone, error) {
	var out []provider.Zone
	marker := ""
	for {
		q := url.Values{"statuses": {"ACTIVE"}, "limit": {"1000"}}
		if marker != "" {
			q.Set("marker", marker)
		}
		var page []domain
		if err := c.do(ctx, http.MethodGet, "/v1/domains?"+q.Encode(), nil, &page); err != nil {
			return nil, err
		}
		for _, d := range page {
			n := provider.Canonical(d.Domain)
			out = append(out, provider.Zone{ID: n, Name: n})
		}
		if len(page) < 1000 {
			return out, nil
		}
		marker = page[len(page)-1].Domain
	}
}

// Records implements provider.DNS. The API lists records by type and name
// but not by name alone, so it pages through the zone and filters.
func (c *Client) Records(ctx context.Context, z provider.Zone, fqdn string) ([]provider.Record, error) {
	fqdn = provider.Canonical(fqdn)
	rel := provider.Relative(fqdn, z.Name)
	sets := map[string]*provider.Record{}
	var order []string
	for offset := 0; ; offset += pageSize {
		q := url.Values{"limit": {strconv.Itoa(pageSize)}, "offset": {strconv.Itoa(offset)}}
		var page []record
		if err := c.do(ctx, http.MethodGet, "/v1/domains/"+url.PathEscape(z.ID)+"/records?"+q.Encode(), nil, &page); err != nil {
			return nil, err
		}
		for _, r := range page {
			if !strings.EqualFold(r.Name, rel) {
				continue
			}
			typ := strings.ToUpper(r.Type)
			s, ok := sets[typ]
			if !ok {
				s = &provider.Record{Name: fqdn, Type: typ, TTL: r.TTL}
				sets[typ] = s
				order = append(order, typ)
			}
			s.Values = append(s.Values, provider.Canonical(r.Data))
		}
		if len(page) < pageSize {
			break
		}
	}
	out := make([]provider.Record, 0, len(order))
	for _, typ := range order {
		out = append(out, *sets[typ])
	}
	return out, nil
}

// SetCNAME implements provider.DNS.
func (c *Client) SetCNAME(ctx context.Context, z provider.Zone, fqdn, target string, ttl int) error {
	ttl = max(ttl, MinTTL)
	body := []record{{Data: provider.Canonical(target), TTL: ttl}}
	return c.do(ctx, http.MethodPut, c.recordPath(z, "CNAME", fqdn), body, nil)
}

// Delete implements provider.DNS: every record of r's type at r's name.
func (c *Client) Delete(ctx context.Context, z provider.Zone, r provider.Record) error {
	return c.do(ctx, http.MethodDelete, c.recordPath(z, r.Type, r.Name), nil, nil)
}

func (c *Client) recordPath(z provider.Zone, typ, fqdn string) string {
	return "/v1/domains/" + url.PathEscape(z.ID) + "/records/" + url.PathEscape(typ) + "/" + url.PathEscape(provider.Relative(fqdn, z.Name))
}

// apiError is GoDaddy's error body.
type apiError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Fields  []struct {
		Path    string `json:"path"`
		Message string `json:"message"`
	} `json:"fields"`
}

func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", c.authorization)
	req.Header.Set("Accept", "application/json")
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return &provider.Error{Provider: name, Kind: provider.KindUnavailable, Message: "unreachable", Err: err}
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 32<<20))
	if err != nil {
		return &provider.Error{Provider: name, Kind: provider.KindUnavailable, Status: resp.StatusCode, Message: "response cut off", Err: err}
	}
	if resp.StatusCode >= 300 {
		e := &provider.Error{Provider: name, Status: resp.StatusCode, Kind: provider.KindForStatus(resp.StatusCode)}
		var ae apiError
		if json.Unmarshal(raw, &ae) == nil && (ae.Code != "" || ae.Message != "") {
			e.Code, e.Message = ae.Code, ae.Message
			for _, f := range ae.Fields {
				e.Message += fmt.Sprintf("; %s: %s", f.Path, f.Message)
			}
		} else {
			e.Message = fmt.Sprintf("request failed with HTTP %d", resp.StatusCode)
		}
		return e
	}
	if out == nil || len(bytes.TrimSpace(raw)) == 0 {
		return nil
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return &provider.Error{Provider: name, Kind: provider.KindUnavailable, Status: resp.StatusCode, Message: "unexpected response", Err: err}
	}
	return nil
}
