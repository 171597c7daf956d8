package dnssec_test

import (
	"testing"

	"github.com/dcvaas/dcvaas/sqlstore/storetest"
)

// TestMain reports the PostgreSQL halves skipped (storetest.Main).
func TestMain(m *testing.M) { storetest.Main(m) }
