package export

import (
	"bufio"
	"context"
	"io"

	"github.com/wattrec/wattrec/query"
	"github.com/wattrec/wattrec/store"
)

// JSONL writes one JSON object per stored reading that passes f, with the
// raw table's columns as keys and the same values as CSV (time as an RFC
// 3339 string, power_w in watts, seed a boolean), ordered by endpoint,
// kind, device and corrected time:
//
//	{"time":"2026-11-27T16:00:00.123Z","daemon_time_ms":1795881595123,"endpoint":"n1:4938","kind":"gpu","device":0,"power_w":75,"seed":false}
//
// It returns the number of lines written.
func JSONL(ctx context.Context, w io.Writer, db *store.DB, f query.Filter, opt Options) (int64, error) {
	bw := bufio.NewWriterSize(w, 64<<10)
	n, err := writeLines(ctx, bw, db, f, opt, true)
	if err != nil {
		return n, err
	}
	return n, bw.Flush()
}
