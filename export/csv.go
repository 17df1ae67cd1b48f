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

// CSVHeader and GridCSVHeader are the header lines of CSV and GridCSV.
const (
	CSVHeader     = "time,daemon_time_ms,endpoint,kind,device,power_w,seed"
	GridCSVHeader = "time,bin_ms,endpoint,kind,device,energy_j,avg_power_w,coverage,samples"
)

// CSV writes every stored reading that passes f to w as CSV (RFC 4180)
// with the columns of Parquet and a header line (CSVHeader), in the same
// order. time is RFC 3339 UTC with milliseconds; power_w is milliwatts /
// 1000 in the shortest decimal that parses back to the same double; seed
// is true or false. It returns the number of rows written, header
// excluded.
func CSV(ctx context.Context, w io.Writer, db *store.DB, f query.Filter, opt Options) (int64, error) {
	f, series, err := resolve(ctx, db, f)
	if err != nil {
		return 0, err
	}
	from, to := f.Range()
	prog := newProgress(opt.Progress, estimateRows(series, from, to))
	bw := bufio.NewWriterSize(w, 64<<10)
	bw.WriteString(CSVHeader + "\n")
	var line []byte
	for _, s := range series {
		// The fields after time that do not change within a series.
		mid := "," + csvField(s.Endpoint) + "," + s.Kind.String() + "," + strconv.Itoa(int(s.Device)) + ","
		n := 0
		err := db.Scan(ctx, s.SeriesKey, from, to, func(r *store.Reading) error {
			line = append(line[:0], query.FormatTime(r.TimeMs)...)
			line = append(line, ',')
			line = strconv.AppendInt(line, r.DaemonMs, 10)
			line = append(line, mid...)
			line = strconv.AppendFloat(line, float64(r.MilliWatts)/1000, 'f', -1, 64)
			line = append(line, ',')
			line = strconv.AppendBool(line, r.Seed)
			line = append(line, '\n')
			if n++; n == chunkRows {
				prog.add(int64(n))
				n = 0
			}
			_, err := bw.Write(line)
			return err
		})
		prog.add(int64(n))
		if err != nil {
			return prog.done, err
		}
	}
	if err := bw.Flush(); err != nil {
		return prog.done, err
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
