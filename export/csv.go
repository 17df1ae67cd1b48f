package export

import (
	"bufio"
	"context"
	"io"
	"strconv"
	"strings"

	"github.com/wattrec/wattrec/query"
	"github.com/wattrec/wattrec/store"
)

// GridCSVHeader is the header line of GridCSV.
const GridCSVHeader = "time,bin_ms,endpoint,kind,device,energy_j,avg_power_w,coverage,samples"

// CSV writes every stored reading that passes f to w as CSV (RFC 4180):
// a header line (CSVHeader), then one line per reading with the raw
// table's columns (rawColumns), ordered by endpoint, kind, device and
// corrected time. It returns the number of rows written, header
// excluded.
func CSV(ctx context.Context, w io.Writer, db *store.DB, f query.Filter, opt Options) (int64, error) {
	bw := bufio.NewWriterSize(w, 64<<10)
	bw.WriteString(CSVHeader + "\n")
	n, err := writeLines(ctx, bw, db, f, opt, false)
	if err != nil {
		return n, err
	}
	return n, bw.Flush()
}

// writeLines writes the raw rows of every series that passes f as CSV or
// JSON Lines lines.
func writeLines(ctx context.Context, w io.Writer, db *store.DB, f query.Filter, opt Options, jsonl bool) (int64, error) {
	plan, err := query.NewPlan(ctx, db, f, query.Periods{CPUMs: opt.CPUPeriodMs})
	if err != nil {
		return 0, err
	}
	prog := newProgress(opt.Progress, estimateRows(plan.Series, plan.Range))
	var line []byte
	for _, s := range plan.Series {
		enc := newLineEncoder(s.SeriesKey, jsonl)
		n := 0
		err := db.Scan(ctx, s.SeriesKey, plan.Range.From, plan.Range.To, func(r *store.Reading) error {
			line = enc.append(line[:0], r, jsonl)
			if n++; n == chunkRows {
				prog.add(int64(n))
				n = 0
			}
			_, err := w.Write(line)
			return err
		})
		prog.add(int64(n))
		if err != nil {
			return prog.done, err
		}
	}
	if err := ctx.Err(); err != nil {
		return prog.done, err
	}
	prog.finish()
	return prog.done, nil
}

// GridCSV writes the energy grid of Grid to w as CSV with a header line
// (GridCSVHeader): the columns of GridParquet, time as RFC 3339 UTC with
// milliseconds, avg_power_w empty when nothing was observed. It returns
// the number of rows written, header excluded.
func GridCSV(ctx context.Context, w io.Writer, db *store.DB, f query.Filter, binMs int64, opt Options) (int64, error) {
	bw := bufio.NewWriterSize(w, 64<<10)
	bw.WriteString(GridCSVHeader + "\n")
	var line []byte
	n, err := Grid(ctx, db, f, binMs, opt, func(b *GridBin) error {
		line = append(line[:0], query.FormatTime(b.FromMs)...)
		line = append(line, ',')
		line = strconv.AppendInt(line, b.ToMs-b.FromMs, 10)
		line = append(line, ',')
		line = append(line, csvField(b.endpoint)...)
		line = append(line, ',')
		line = append(line, b.kind...)
		line = append(line, ',')
		line = strconv.AppendInt(line, int64(b.Series.Device), 10)
		line = append(line, ',')
		line = strconv.AppendFloat(line, b.Joules(), 'g', -1, 64)
		line = append(line, ',')
		if avg, ok := b.AvgW(); ok {
			line = strconv.AppendFloat(line, avg, 'g', -1, 64)
		}
		line = append(line, ',')
		line = strconv.AppendFloat(line, b.Coverage(), 'g', -1, 64)
		line = append(line, ',')
		line = strconv.AppendInt(line, int64(b.Samples), 10)
		line = append(line, '\n')
		_, err := bw.Write(line)
		return err
	})
	if err != nil {
		return n, err
	}
	return n, bw.Flush()
}

// csvField quotes s if it holds a comma, quote or line break (RFC 4180).
func csvField(s string) string {
	if !strings.ContainsAny(s, ",\"\r\n") && strings.TrimSpace(s) == s {
		return s
	}
	return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
}
