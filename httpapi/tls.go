package httpapi

import (
	"context"
	"net/http"
	"sync"
	"time"

	"github.com/dcvaas/dcvaas"
	"github.com/dcvaas/dcvaas/apitoken"
	"github.com/dcvaas/dcvaas/delivery"
)

// Caddy's `get_certificate http <url>` asks a URL for the certificate of
// every TLS handshake it has none for, with the handshake's server name in
// the query; 200 with the PEM chain and key serves it, 204 lets Caddy fall
// back. Caddy sends no Authorization header, so the delivery token is part
// of the path (README: use it on an internal network or over HTTPS; the
// path keeps it out of the query strings that proxies log most often).

// tlsMaxAge is how long Caddy may keep an answer. A renewed certificate
// arrives days before the old one expires, so a minute's delay costs
// nothing; a replaced key (compromise) reaches every Caddy within it.
const tlsMaxAge = "private, max-age=60"

type tlsCertificateInput struct {
	Token      string `path:"token" doc:"A delivery token."`
	ServerName string `query:"server_name" required:"true" doc:"The TLS handshake's server name (SNI); Unicode or A-label."`
	// Caddy sends these as well; they do not change the answer.
	SignatureSchemes string `query:"signature_schemes" doc:"Sent by Caddy; ignored."`
	CipherSuites     string `query:"cipher_suites" doc:"Sent by Caddy; ignored."`
	LocalIP          string `query:"local_ip" doc:"Sent by Caddy; ignored."`
}

type tlsCertificateOutput struct {
	Status       int
	ContentType  string `header:"Content-Type" hidden:"true"`
	CacheControl string `header:"Cache-Control"`
	Body         []byte
}

// keyReadStore records delivery tokens' key readings; *sqlstore.DB.
type keyReadStore interface {
	RecordKeyReads(ctx context.Context, actor dcvaas.Actor, c *dcvaas.Certificate, domainName string, n int64) error
}

func (s *server) tlsCertificate(ctx context.Context, in *tlsCertificateInput) (*tlsCertificateOutput, error) {
	if s.bundles == nil {
		return nil, dcvaas.Errorf(dcvaas.ENOTIMPLEMENTED, "certificates cannot be served on this server")
	}
	if !apitoken.Valid(in.Token) {
		s.secAudit.Add(dcvaas.SecurityAuthFailed, "", clientIPFrom(ctx))
		return nil, dcvaas.Errorf(dcvaas.EUNAUTHORIZED, "invalid, expired or revoked token")
	}
	now := s.now()
	auth, err := s.store.Authenticate(ctx, apitoken.Hash(in.Token), now)
	if err != nil {
		if dcvaas.ErrorCode(err) == dcvaas.EUNAUTHORIZED {
			s.secAudit.Add(dcvaas.SecurityAuthFailed, "", clientIPFrom(ctx))
		}
		return nil, err
	}
	if auth.Token.Role != dcvaas.TokenDelivery {
		s.keyReadDenied(ctx, auth.Token.OrgID)
		// An admin token in a URL would be a key to everything.
		return nil, dcvaas.Errorf(dcvaas.EFORBIDDEN, "this endpoint takes delivery tokens only")
	}
	s.touch(ctx, auth.Token.ID, now)
	b, err := s.bundles.Lookup(ctx, auth.Token.OrgID, in.ServerName)
	if err != nil {
		return nil, err
	}
	if b == nil || !auth.Token.Scope.Allows(b.Domain.ID, b.Domain.Name) {
		return &tlsCertificateOutput{Status: http.StatusNoContent, CacheControl: tlsMaxAge}, nil
	}
	actor := dcvaas.Actor{OrgID: auth.Token.OrgID, UserID: auth.Token.UserID, TokenID: auth.Token.ID,
		TokenRole: auth.Token.Role, MemberRole: auth.MemberRole, IP: peerFrom(ctx)}
	if err := s.keyReads.record(ctx, actor, b, now); err != nil {
		return nil, err
	}
	return &tlsCertificateOutput{Status: http.StatusOK, ContentType: "application/x-pem-file", CacheControl: tlsMaxAge, Body: b.PEM}, nil
}

// keyReadLog puts the Caddy endpoint's key readings on record without a
// write per handshake: the first reading of a token+certificate in an
// audit window is recorded before the key leaves (the store then opens
// an entry); later ones are counted here and added to that entry at most
// once a minute.
type keyReadLog struct {
	store keyReadStore
	log   func(ctx context.Context, msg string, args ...any)
	mu    sync.Mutex
	m     map[keyReadKey]*keyReadCount
}

type keyReadKey struct{ tokenID, certID string }

type keyReadCount struct {
	opened  time.Time // when the window's entry was written
	flushed time.Time
	pending int64
	// opening is closed once the window's entry is written (or failed);
	// nil after. Readings that arrive meanwhile wait for it instead of
	// each writing an entry of their own: the first handshakes after a
	// start or a renewal come in bursts.
	opening chan struct{}
}

// keyReadWindow matches sqlstore's audit window; keyReadFlush is how
// stale an entry's count may get.
const (
	keyReadWindow = time.Hour
	keyReadFlush  = time.Minute
)

func (l *keyReadLog) record(ctx context.Context, actor dcvaas.Actor, b *delivery.Bundle, now time.Time) error {
	if l.store == nil {
		return dcvaas.Errorf(dcvaas.ENOTIMPLEMENTED, "key readings cannot be recorded on this server")
	}
	k := keyReadKey{actor.TokenID, b.Certificate.ID}
	for {
		l.mu.Lock()
		if l.m == nil {
			l.m = map[keyReadKey]*keyReadCount{}
		}
		c := l.m[k]
		if c != nil && c.opening != nil {
			wait := c.opening
			l.mu.Unlock()
			select {
			case <-wait:
				continue
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		if c != nil && now.Sub(c.opened) < keyReadWindow {
			c.pending++
			var n int64
			if now.Sub(c.flushed) >= keyReadFlush {
				n, c.pending, c.flushed = c.pending, 0, now
			}
			l.mu.Unlock()
			if n > 0 {
				go l.flush(context.WithoutCancel(ctx), actor, b, n)
			}
			return nil
		}
		// A new window: what the old one still counts goes with this reading.
		var carried int64
		if c != nil {
			carried = c.pending
		}
		if len(l.m) >= 100000 {
			l.m = map[keyReadKey]*keyReadCount{}
		}
		open := &keyReadCount{opening: make(chan struct{})}
		l.m[k] = open
		l.mu.Unlock()
		err := l.store.RecordKeyReads(ctx, actor, b.Certificate, b.Domain.Name, 1+carried)
		l.mu.Lock()
		if err != nil {
			if l.m[k] == open {
				delete(l.m, k)
			}
		} else {
			open.opened, open.flushed = now, now
		}
		close(open.opening)
		open.opening = nil
		l.mu.Unlock()
		return err
	}
}

func (l *keyReadLog) flush(ctx context.Context, actor dcvaas.Actor, b *delivery.Bundle, n int64) {
	if err := l.store.RecordKeyReads(ctx, actor, b.Certificate, b.Domain.Name, n); err != nil {
		l.log(ctx, "record key readings", "token_id", actor.TokenID, "certificate_id", b.Certificate.ID, "reads", n, "err", err)
	}
}

func peerFrom(ctx context.Context) string {
	p, _ := ctx.Value(peerKey{}).(string)
	return p
}
