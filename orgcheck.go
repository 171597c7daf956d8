package dcvaas

import (
	"net/mail"
	"strings"
	"unicode"
	"unicode/utf8"
)

// CleanDisplayName trims a display name (an organization's, a
// connection's) and says what is wrong with it, "" when nothing: 1 to 100
// characters, no control characters. The API and the dashboard share it.
func CleanDisplayName(name string) (string, string) {
	name = strings.TrimSpace(name)
	switch n := utf8.RuneCountInString(name); {
	case n == 0:
		return name, "must not be empty"
	case n > 100:
		return name, "must be at most 100 characters"
	case strings.IndexFunc(name, unicode.IsControl) >= 0:
		return name, "must not contain control characters"
	}
	return name, ""
}

// CheckContactEmail says what is wrong with an organization's contact
// address, "" when nothing (or when it is empty): one bare address.
func CheckContactEmail(email string) string {
	if email == "" {
		return ""
	}
	if a, err := mail.ParseAddress(email); err != nil || a.Address != email {
		return "must be a plain email address like ops@example.com"
	}
	return ""
}
