package dnsserver

import (
	"testing"
	"time"
)

// SetFirstLoadWait shortens Start's wait for a store that never loads.
func SetFirstLoadWait(t *testing.T, d time.Duration) {
	old := firstLoadWait
	firstLoadWait = d
	t.Cleanup(func() { firstLoadWait = old })
}
