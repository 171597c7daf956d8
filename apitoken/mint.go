package apitoken

import (
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/dcvaas/dcvaas"
)

// Request is what a user asks for when creating a token.
type Request struct {
	Name      string
	Role      dcvaas.TokenRole
	ExpiresAt *time.Time
}

// Mint checks a token request with the rules the API and the dashboard
// share and returns the new token's plaintext (shown once) and its row for
// orgID and userID. EINVALID names the fields ("name", "role", "expiresAt").
func Mint(req Request, orgID, userID string, now time.Time) (string, *dcvaas.Token, error) {
	fields := map[string]string{}
	name := strings.TrimSpace(req.Name)
	switch n := utf8.RuneCountInString(name); {
	case n == 0:
		fields["name"] = "must not be empty"
	case n > 100:
		fields["name"] = "must be at most 100 characters"
	case strings.IndexFunc(name, unicode.IsControl) >= 0:
		fields["name"] = "must not contain control characters"
	}
	if req.Role != dcvaas.TokenAdmin && req.Role != dcvaas.TokenRead && req.Role != dcvaas.TokenDelivery {
		fields["role"] = "must be admin, read or delivery"
	}
	var expires *time.Time
	if req.ExpiresAt != nil {
		// The store keeps microseconds; answer what a later read returns.
		t := req.ExpiresAt.UTC().Truncate(time.Microsecond)
		if !t.After(now) {
			fields["expiresAt"] = "must be in the future"
		}
		expires = &t
	}
	if len(fields) > 0 {
		return "", nil, &dcvaas.Error{Code: dcvaas.EINVALID, Message: "validation failed", Fields: fields}
	}
	secret, err := Generate()
	if err != nil {
		return "", nil, err
	}
	return secret, &dcvaas.Token{OrgID: orgID, UserID: userID, Name: name, Prefix: DisplayPrefix(secret),
		Hash: Hash(secret), Role: req.Role, ExpiresAt: expires}, nil
}
