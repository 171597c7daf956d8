package cloudflare

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/url"
	"strings"

	"github.com/dcvaas/dcvaas/provider"
)

// ChallengePublisher publishes DNS-01 values as TXT records in a verify
// zone hosted at Cloudflare, for dcvaas deployments that do not run the
// built-in DNS server (DCVAAS_CHALLENGE_PUBLISHER=cloudflare). It
// implements the acme package's Publisher.
//
// Each record's comment carries a digest of the value's key (the ACME
// authorization), so that the apex's and the wildcard's values at one name
// are told apart, publishing again is a no-op, and only dcvaas's own
// records are ever removed.
type ChallengePublisher struct {
	Client *Client
	ZoneID string
	// TTL of the records (default 60, Cloudflare's least for most plans).
	TTL int
	// Wait, when set, returns once the zone's authoritative servers serve
	// the value: Cloudflare applies changes within seconds, but a CA that
	// asks before then caches the absence.
	Wait func(ctx context.Context, name, value string) error
}

// challengeTag starts the comment of every record the publisher makes.
const challengeTag = "dcvaas acme-challenge "

func keyTag(key string) string {
	sum := sha256.Sum256([]byte(key))
	return challengeTag + hex.EncodeToString(sum[:16])
}

// txtRecords lists the TXT records at name that the publisher made.
func (p *ChallengePublisher) txtRecords(ctx context.Context, name string) ([]record, error) {
	name = provider.Canonical(name)
	q := url.Values{"type": {"TXT"}, "name": {name}, "per_page": {"100"}}
	var recs []record
	if _, err := p.Client.do(ctx, http.MethodGet, "/zones/"+url.PathEscape(p.ZoneID)+"/dns_records?"+q.Encode(), nil, &recs); err != nil {
		return nil, err
	}
	var out []record
	for _, r := range recs {
		if strings.EqualFold(r.Type, "TXT") && provider.Canonical(r.Name) == name && strings.HasPrefix(r.Comment, challengeTag) {
			out = append(out, r)
		}
	}
	return out, nil
}

// txtContent undoes Cloudflare's quoting of TXT content.
func txtContent(s string) string {
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		return strings.ReplaceAll(s[1:len(s)-1], `" "`, "")
	}
	return s
}

// PublishTXT sets the value for key at name and waits until it is served.
func (p *ChallengePublisher) PublishTXT(ctx context.Context, name, key, value string) error {
	recs, err := p.txtRecords(ctx, name)
	if err != nil {
		return err
	}
	ttl := p.TTL
	if ttl == 0 {
		ttl = 60
	}
	tag := keyTag(key)
	body := record{Type: "TXT", Name: provider.Canonical(name), Content: `"` + value + `"`, TTL: ttl, Comment: tag}
	path := "/zones/" + url.PathEscape(p.ZoneID) + "/dns_records"
	method, same := http.MethodPost, false
	for _, r := range recs {
		if r.Comment == tag {
			method, path = http.MethodPut, path+"/"+url.PathEscape(r.ID)
			same = txtContent(r.Content) == value
			break
		}
	}
	if !same {
		if _, err := p.Client.do(ctx, method, path, body, nil); err != nil {
			return err
		}
	}
	if p.Wait != nil {
		return p.Wait(ctx, name, value)
	}
	return nil
}

// UnpublishTXT removes the value for key at name.
func (p *ChallengePublisher) UnpublishTXT(ctx context.Context, name, key string) error {
	return p.remove(ctx, name, keyTag(key))
}

// ClearTXT removes every value the publisher made at name.
func (p *ChallengePublisher) ClearTXT(ctx context.Context, name string) error {
	return p.remove(ctx, name, "")
}

func (p *ChallengePublisher) remove(ctx context.Context, name, tag string) error {
	recs, err := p.txtRecords(ctx, name)
	if err != nil {
		return err
	}
	for _, r := range recs {
		if tag != "" && r.Comment != tag {
			continue
		}
		err := p.Client.Delete(ctx, provider.Zone{ID: p.ZoneID}, provider.Record{ID: r.ID})
		if err != nil && provider.KindOf(err) != provider.KindNotFound {
			return err
		}
	}
	return nil
}
