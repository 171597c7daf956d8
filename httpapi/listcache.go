package httpapi

import (
	"bytes"
	"io"

	"github.com/danielgtaylor/huma/v2"

	"github.com/dcvaas/dcvaas/gencache"
)

// The domain list is the API's hottest read, and encoding 50 domains as
// JSON cost more than reading them. Where the store counts its changes
// (SQLite: one process owns the database), the encoded page is kept until
// the next change and sent as is; any write anywhere, a job's progress
// included, ends it. PostgreSQL stores have no count (another node may
// write) and every request is answered afresh.

// changeCounter is implemented by stores that count their changes.
type changeCounter interface {
	Changes() (gen uint64, ok bool)
}

type listKey struct {
	orgID  string
	status string
	limit  int
	offset int
}

// maxCachedLists bounds the pages kept between two changes.
const maxCachedLists = 10000

func (s *server) changes() (uint64, bool) {
	if c, ok := s.store.(changeCounter); ok {
		return c.Changes()
	}
	return 0, false
}

// preEncoded is a response body whose JSON is already known.
type preEncoded interface {
	encodedJSON() []byte
}

// marshalJSON is huma's JSON encoding, except that a body encoded ahead
// of time is written as it is.
func marshalJSON(w io.Writer, v any) error {
	if p, ok := v.(preEncoded); ok {
		if b := p.encodedJSON(); b != nil {
			_, err := w.Write(b)
			return err
		}
	}
	return huma.DefaultJSONFormat.Marshal(w, v)
}

var jsonFormat = huma.Format{Marshal: marshalJSON, Unmarshal: decodeJSON}

// encode returns v as marshalJSON writes it.
func encode(v any) ([]byte, error) {
	var buf bytes.Buffer
	err := marshalJSON(&buf, v)
	return buf.Bytes(), err
}

func (l domainList) encodedJSON() []byte { return l.encoded }

func newListCache() *gencache.Cache[listKey, []byte] {
	return gencache.New[listKey, []byte](maxCachedLists)
}
