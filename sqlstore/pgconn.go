package sqlstore

import (
	"context"
	"database/sql"
	"strings"
	"sync/atomic"
	"unicode"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/lib/pq"
)

// openPostgres opens a database/sql pool on pgx whose connections encode
// lib/pq's array parameters natively.
//
// River's database/sql driver wraps every array argument in pq.Array: 13 of
// them on each job insert. pgx sees only a driver.Valuer, so it asks it for
// PostgreSQL's text form ("{…}"), parses that text back into Go values and
// only then encodes them in binary: a fifth of the whole process's CPU in
// the POST /api/domains benchmark. Unwrapping the slice first gives pgx the
// values directly; the bytes on the wire are the same.
func openPostgres(dsn string, queries, writes *atomic.Uint64) (*sql.DB, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, err
	}
	cfg.Tracer = queryCounter{queries, writes}
	return stdlib.OpenDB(*cfg, stdlib.OptionAfterConnect(func(_ context.Context, c *pgx.Conn) error {
		m := c.TypeMap()
		m.TryWrapEncodePlanFuncs = append([]pgtype.TryWrapEncodePlanFunc{unwrapPQArray}, m.TryWrapEncodePlanFuncs...)
		return nil
	})), nil
}

// queryCounter counts the statements the pool runs (DB.QueryCount) and,
// as they end, those that may have changed something (changes.go).
type queryCounter struct{ n, writes *atomic.Uint64 }

type mayWriteKey struct{}

func (q queryCounter) TraceQueryStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryStartData) context.Context {
	q.n.Add(1)
	if mayWrite(d.SQL) {
		return context.WithValue(ctx, mayWriteKey{}, true)
	}
	return ctx
}

func (q queryCounter) TraceQueryEnd(ctx context.Context, conn *pgx.Conn, _ pgx.TraceQueryEndData) {
	// Inside a transaction nothing is visible to others before COMMIT,
	// which counts when it ends: the connection is then idle again.
	if ctx.Value(mayWriteKey{}) != nil && conn.PgConn().TxStatus() == 'I' {
		q.writes.Add(1)
	}
}

// mayWrite tells statements that cannot change a row (a plain SELECT, a
// transaction's BEGIN or ROLLBACK) from all others; a data-modifying WITH
// counts as a write.
func mayWrite(sql string) bool {
	sql = strings.TrimLeftFunc(sql, func(r rune) bool { return unicode.IsSpace(r) || r == '(' })
	word := sql
	if i := strings.IndexFunc(sql, func(r rune) bool { return unicode.IsSpace(r) || r == '(' || r == ';' }); i >= 0 {
		word = sql[:i]
	}
	for _, w := range []string{"select", "begin", "rollback", "show", "listen", ""} {
		if strings.EqualFold(word, w) {
			return false
		}
	}
	return true
}

// unwrapPQArray is a pgtype.TryWrapEncodePlanFunc for lib/pq's array types.
func unwrapPQArray(value any) (pgtype.WrappedEncodePlanNextSetter, any, bool) {
	if v := pqArraySlice(value); v != nil {
		return &pqArrayPlan{}, v, true
	}
	return nil, nil, false
}

// pqArraySlice returns the slice inside a lib/pq array wrapper, or nil when
// value is none.
func pqArraySlice(value any) any {
	switch v := value.(type) {
	case pq.GenericArray:
		return v.A
	case *pq.StringArray:
		return (*[]string)(v)
	case *pq.Int64Array:
		return (*[]int64)(v)
	case *pq.Int32Array:
		return (*[]int32)(v)
	case *pq.ByteaArray:
		return (*[][]byte)(v)
	case *pq.BoolArray:
		return (*[]bool)(v)
	case *pq.Float64Array:
		return (*[]float64)(v)
	case *pq.Float32Array:
		return (*[]float32)(v)
	}
	return nil
}

type pqArrayPlan struct{ next pgtype.EncodePlan }

func (p *pqArrayPlan) SetNext(next pgtype.EncodePlan) { p.next = next }

func (p *pqArrayPlan) Encode(value any, buf []byte) ([]byte, error) {
	return p.next.Encode(pqArraySlice(value), buf)
}
