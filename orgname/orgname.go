// Package orgname decides which organization names dcvaas accepts and in
// which form it keeps them.
//
// Names are display names, not identifiers: they are not unique across
// tenants (a tenant must not be able to squat a future customer's name, or
// learn which names exist by trying them). They are still shown to people,
// in the dashboard, the audit log and e-mails, so they must look like what
// they are: the PRECIS Nickname profile (RFC 8266) maps every width and
// compatibility variant to its plain form (full-width "Ａｃｍｅ" is
// "Acme"), every kind of space to one ASCII space, and refuses control and
// default-ignorable characters; format characters (Cf, which include the
// bidirectional controls that can reorder what a reader sees, RFC 9839) are
// refused outright. Case is kept for display; since names are not unique,
// nothing compares them.
package orgname

import (
	"errors"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/secure/precis"
)

// MaxLength is the longest name, in characters.
const MaxLength = 100

var (
	errEmpty   = errors.New("must not be empty")
	errLong    = errors.New("must be at most 100 characters")
	errControl = errors.New("must not contain control, format or bidirectional characters")
	errInvalid = errors.New("contains characters that are not allowed in a name")
)

// Normalize returns the name as it is kept and shown, or an error whose
// message can be shown to the user after the field's name.
func Normalize(name string) (string, error) {
	if !utf8.ValidString(name) {
		return "", errInvalid
	}
	for _, r := range name {
		// Checked before the profile so that the message says why.
		if unicode.Is(unicode.Cc, r) || unicode.Is(unicode.Cf, r) || unicode.In(r, unicode.Bidi_Control) {
			return "", errControl
		}
	}
	out, err := precis.Nickname.String(name)
	if err != nil {
		if out == "" && isBlank(name) {
			return "", errEmpty
		}
		return "", errInvalid
	}
	switch n := utf8.RuneCountInString(out); {
	case n == 0:
		return "", errEmpty
	case n > MaxLength:
		return "", errLong
	}
	return out, nil
}

func isBlank(s string) bool {
	for _, r := range s {
		if !unicode.IsSpace(r) {
			return false
		}
	}
	return true
}
