// Package cloudflare manages DNS records through the Cloudflare API v4. It
// speaks plain HTTP: the four calls dcvaas needs do not justify the SDK's
// size, and plain requests are easy to test against a recorded format.
//
// The same client serves API tokens (scoped to Zone:Read and DNS:Edit) and
// OAuth access tokens: both are bearer tokens to the API.
package cloudflare

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

// DefaultURL is the API base.
const DefaultURL = "https://api.cloudflare.com/client/v4"

const name = "cloudflare"

// comment marks the records dcvaas made, for whoever reads the zone later.
const comment = "Managed by dcvaas (ACME DNS-01 delegation)"

// Client is a Cloudflare account seen through one token.
type Client struct {
	base  string
	token string
	hc    *http.Client
}

// New returns a client for baseURL (DefaultURL when empty) authenticating
// with the bearer token. hc nil means http.DefaultClient.
func New(baseURL, token string, hc *http.Client) *Client {
	if baseURL == "" {
		baseURL = DefaultURL
	}
	if hc == nil {
		hc = http.DefaultClient
	}
	return &Client{base: strings.TrimSuffix(baseURL, "/"), token: token, hc: hc}
}

var _ provider.DNS = (*Client)(nil)

// envelope is the v4 response wrapper around every result.
type envelope struct {
	Success    bool            `json:"success"`
	Errors     []apiMessage    `json:"errors"`
	Result     json.RawMessage `json:"result"`
	ResultInfo *resultInfo     `json:"result_info"`
}

type resultInfo struct {
	Page       int `json:"page"`
	TotalPages int `json:"total_pages"`
}

type apiMessage struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

type zone struct {
	ID     string `json:"id"`
	Name   string `json:"name"`
	Status string `json:"status"`
}

type record struct {
	ID      string `json:"id,omitempty"`
	Type    string `json:"type"`
	Name    string `json:"name"`
	Content string `json:"content"`
	TTL     int    `json:"ttl"`
	Proxied *bool  `json:"proxied,omitempty"`
	Comment string `json:"comment,omitempty"`
}

// Zones implements provider.DNS.
func (c *Client) Zones(ctx context.Context) ([]provider.Zone, error) {
	var out []provider.Zone
	for page := 1; ; page++ {
		var zones []zone
		info, err := c.do(ctx, http.MethodGet, "/zones?per_page=50&page="+strconv.Itoa(page), nil, &zones)
		if err != nil {
			return nil, err
		}
		for _, z := range zones {
			out = append(out, provider.Zone{ID: z.ID, Name: provider.Canonical(z.Name)})
		}
		if info == nil || page >= info.TotalPages || len(zones) == 0 {
			return out, nil
		}
	}
}

// Records implements provider.DNS. The name filter is exact on the v4 API.
func (c *Client) Records(ctx context.Context, z provider.Zone, fqdn string) ([]provider.Record, error) {
	fqdn = provider.Canonical(fqdn)
	var recs []record
	q := url.Values{"name": {fqdn}, "per_page": {"100"}}
	if _, err := c.do(ctx, http.MethodGet, "/zones/"+url.PathEscape(z.ID)+"/dns_records?"+q.Encode(), nil, &recs); err != nil {
		return nil, err
	}
	var out []provider.Record
	for _, r := range recs {
		if provider.Canonical(r.Name) != fqdn {
			continue
		}
		out = append(out, provider.Record{ID: r.ID, Name: fqdn, Type: strings.ToUpper(r.Type),
			Values: []string{provider.Canonical(r.Content)}, TTL: r.TTL})
	}
	return out, nil
}

// SetCNAME implements provider.DNS. The record is never proxied: the CA must
// see the CNAME itself, not Cloudflare's flattened answer.
func (c *Client) SetCNAME(ctx context.Context, z provider.Zone, fqdn, target string, ttl int) error {
	existing, err := c.Records(ctx, z, fqdn)
	if err != nil {
		return err
	}
	proxied := false
	body := record{Type: "CNAME", Name: provider.Canonical(fqdn), Content: provider.Canonical(target), TTL: ttl, Proxied: &proxied, Comment: comment}
	path := "/zones/" + url.PathEscape(z.ID) + "/dns_records"
	method := http.MethodPost
	for _, r := range existing {
		if r.Type == "CNAME" {
			method, path = http.MethodPut, path+"/"+url.PathEscape(r.ID)
			break
		}
	}
	_, err = c.do(ctx, method, path, body, nil)
	return err
}

// Delete implements provider.DNS.
func (c *Client) Delete(ctx context.Context, z provider.Zone, r provider.Record) error {
	_, err := c.do(ctx, http.MethodDelete, "/zones/"+url.PathEscape(z.ID)+"/dns_records/"+url.PathEscape(r.ID), nil, nil)
	return err
}

// authCodes are the v4 error codes for a token that is invalid, expired or
// revoked; Cloudflare sends some of them with status 400 or 403.
var authCodes = map[int]bool{6003: true, 6111: true, 9106: true, 9109: true, 10000: true, 10001: true}

// do sends one request and decodes the envelope's result into out.
func (c *Client) do(ctx context.Context, method, path string, in, out any) (*resultInfo, error) {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return nil, err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Accept", "application/json")
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, &provider.Error{Provider: name, Kind: provider.KindUnavailable, Message: "unreachable", Err: err}
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return nil, &provider.Error{Provider: name, Kind: provider.KindUnavailable, Status: resp.StatusCode, Message: "response cut off", Err: err}
	}
	var env envelope
	jsonErr := json.Unmarshal(raw, &env)
	if resp.StatusCode >= 300 || jsonErr != nil || !env.Success {
		return nil, apiError(resp.StatusCode, env, jsonErr)
	}
	if out != nil {
		if err := json.Unmarshal(env.Result, out); err != nil {
			return nil, &provider.Error{Provider: name, Kind: provider.KindUnavailable, Status: resp.StatusCode, Message: "unexpected response", Err: err}
		}
	}
	return env.ResultInfo, nil
}

func apiError(status int, env envelope, jsonErr error) *provider.Error {
	e := &provider.Error{Provider: name, Status: status, Kind: provider.KindForStatus(status)}
	if jsonErr != nil {
		// A proxy's HTML error page, typically: say so without echoing it.
		e.Message = "unexpected response"
		if status < 300 {
			e.Kind = provider.KindUnavailable
		}
		return e
	}
	var msgs, codes []string
	for _, m := range env.Errors {
		msgs = append(msgs, m.Message)
		codes = append(codes, strconv.Itoa(m.Code))
		if authCodes[m.Code] {
			e.Kind = provider.KindAuth
		}
	}
	e.Message, e.Code = strings.Join(msgs, "; "), strings.Join(codes, ",")
	if e.Message == "" {
		e.Message = fmt.Sprintf("request failed with HTTP %d", status)
	}
	return e
}
