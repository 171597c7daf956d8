package dcvaas

import (
	"errors"
	"fmt"
)

// Error codes. The HTTP layer maps each to one status in exactly one place;
// everything else in the program only ever picks a code.
const (
	ECONFLICT       = "conflict"        // 409: state or uniqueness conflict
	EINTERNAL       = "internal"        // 500: a bug or an unreachable dependency
	EINVALID        = "invalid"         // 422: input that fails validation
	ENOTFOUND       = "not_found"       // 404: missing, or another organization's
	EUNAUTHORIZED   = "unauthorized"    // 401: no valid credentials
	EFORBIDDEN      = "forbidden"       // 403: valid credentials, not allowed
	ERATELIMITED    = "rate_limited"    // 429
	EUNAVAILABLE    = "unavailable"     // 503: try again later
	ENOTIMPLEMENTED = "not_implemented" // 501
	ENOTACCEPTABLE  = "not_acceptable"  // 406: no representation the client accepts
)

// Error is the application's one error type. Message is safe to show to a
// client; wrapped causes are for logs only and never leave the process.
type Error struct {
	Code    string
	Message string
	// Fields lists per-field problems for EINVALID (field path → reason).
	Fields map[string]string
	Err    error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Message, e.Err)
	}
	return fmt.Sprintf("%s: %s", e.Code, e.Message)
}

func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error with the given code and formatted client-safe message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of err, EINTERNAL for foreign errors and "" for nil.
func ErrorCode(err error) string {
	var e *Error
	if err == nil {
		return ""
	} else if errors.As(err, &e) {
		return e.Code
	}
	return EINTERNAL
}

// ErrorMessage returns the client-safe message of err; foreign errors get a
// generic text so that internals never leak.
func ErrorMessage(err error) string {
	var e *Error
	if err == nil {
		return ""
	} else if errors.As(err, &e) {
		return e.Message
	}
	return "internal error"
}
