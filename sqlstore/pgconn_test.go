package sqlstore_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/lib/pq"

	"github.com/dcvaas/dcvaas/sqlstore"
	"github.com/dcvaas/dcvaas/sqlstore/storetest"
)

// TestPostgresPQArrays sends the lib/pq array wrappers River's database/sql
// driver uses through the pool's connections and reads the values back as
// PostgreSQL stored them: unwrapping them for pgx must not change a value,
// quoting and NULLs included.
func TestPostgresPQArrays(t *testing.T) {
	if !slices.Contains(storetest.Dialects(t), sqlstore.Postgres) {
		t.Skip("PostgreSQL only")
	}
	db := storetest.NewDB(t, sqlstore.Postgres)
	ctx := context.Background()
	at := time.Date(2026, 12, 1, 15, 4, 5, 123456000, time.UTC)

	texts := []string{"plain", `quo"te`, "com,ma", "{brace}", `back\slash`, "", "NULL", "ünï"}
	var gotTexts []string
	var n int
	if err := db.SQL().QueryRowContext(ctx, `SELECT $1::text[], cardinality($1::text[])`, pq.Array(texts)).
		Scan(pq.Array(&gotTexts), &n); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(gotTexts, texts) || n != len(texts) {
		t.Errorf("text[]: got %q (%d), want %q", gotTexts, n, texts)
	}

	blobs := [][]byte{{0, 1, 2, 0xff}, []byte(`{"a":1}`), {}}
	var hexes []string
	if err := db.SQL().QueryRowContext(ctx, `SELECT array_agg(encode(b, 'hex') ORDER BY i) FROM unnest($1::bytea[]) WITH ORDINALITY AS u(b, i)`,
		pq.Array(blobs)).Scan(pq.Array(&hexes)); err != nil {
		t.Fatal(err)
	}
	if want := []string{"000102ff", "7b2261223a317d", ""}; !slices.Equal(hexes, want) {
		t.Errorf("bytea[]: got %q, want %q", hexes, want)
	}

	var text string
	if err := db.SQL().QueryRowContext(ctx, `SELECT ($1::int8[])::text || ($2::int4[])::text || ($3::int2[])::text || (($4::timestamptz[])[1] AT TIME ZONE 'UTC')::text || ($5::bool[])::text`,
		pq.Array([]int64{1, -9007199254740993}), pq.Array([]int32{7}), pq.Array([]int16{3, 4}),
		pq.Array([]time.Time{at}), pq.Array([]bool{true, false})).Scan(&text); err != nil {
		t.Fatal(err)
	}
	if want := `{1,-9007199254740993}{7}{3,4}2026-12-01 15:04:05.123456{t,f}`; text != want {
		t.Errorf("got %s, want %s", text, want)
	}

	var isNull bool
	if err := db.SQL().QueryRowContext(ctx, `SELECT $1::text[] IS NULL`, pq.Array([]string(nil))).Scan(&isNull); err != nil {
		t.Fatal(err)
	}
	if !isNull {
		t.Error("a nil slice must be sent as NULL, as lib/pq sends it")
	}
}
