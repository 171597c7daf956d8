package dnsserver

import (
	"testing"
	"time"
)

// SetKeyReload shortens the DNSSEC key reload interval of servers started
// after it.
func SetKeyReload(t *testing.T, d time.Duration) {
	old := keyReload
	keyReload = d
	t.Cleanup(func() { keyReload = old })
}

// SetFirstLoadWait shortens Start's wait for a store that never loads.
func SetFirstLoadWait(t *testing.T, d time.Duration) {
	old := firstLoadWait
	firstLoadWait = d
	t.Cleanup(func() { firstLoadWait = old })
}
