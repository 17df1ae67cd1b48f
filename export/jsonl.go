package export

import (
	"bufio"
	"context"
	"io"
	"strconv"

	"github.com/wattrec/wattrec/query"
	"github.com/wattrec/wattrec/store"
)

// JSONL writes one JSON object per stored reading that passes f, ordered
// by endpoint, kind, device and corrected time:
//
//	{"endpoint":"n1:4938","kind":"gpu","device":0,"time":"2026-11-27T16:00:00.123Z",
//	 "time_ms":1795881600123,"daemon_time_ms":1795881595123,"power_mw":75000,"seed":false}
//
// It returns the number of lines written.
func JSONL(ctx context.Context, w io.Writer, db *store.DB, f query.Filter) (int, error) {
	f, err := f.Resolve(ctx, db)
	if err != nil {
		return 0, err
	}
	series, err := f.Series(ctx, db)
	if err != nil {
		return 0, err
	}
	bw := bufio.NewWriterSize(w, 64<<10)
	from, to := f.Range()
	n := 0
	var line []byte
	for _, s := range series {
		// Encode by hand: encoding/json would reflect on every reading,
		// and the field set is fixed.
		prefix := strconv.AppendQuote([]byte(`{"endpoint":`), s.Endpoint)
		prefix = append(prefix, `,"kind":"`+s.Kind.String()+`","device":`...)
		prefix = strconv.AppendInt(prefix, int64(s.Device), 10)
		err := db.Scan(ctx, s.SeriesKey, from, to, func(r *store.Reading) error {
			line = append(line[:0], prefix...)
			line = append(line, `,"time":"`...)
			line = append(line, query.FormatTime(r.TimeMs)...)
			line = append(line, `","time_ms":`...)
			line = strconv.AppendInt(line, r.TimeMs, 10)
			line = append(line, `,"daemon_time_ms":`...)
			line = strconv.AppendInt(line, r.DaemonMs, 10)
			line = append(line, `,"power_mw":`...)
			line = strconv.AppendInt(line, r.MilliWatts, 10)
			line = append(line, `,"seed":`...)
			line = strconv.AppendBool(line, r.Seed)
			line = append(line, "}\n"...)
			n++
			_, err := bw.Write(line)
			return err
		})
		if err != nil {
			return n, err
		}
	}
	return n, bw.Flush()
}
