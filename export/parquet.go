package export

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"runtime"

	"github.com/parquet-go/parquet-go"

	"github.com/wattrec/wattrec/query"
	"github.com/wattrec/wattrec/store"
)

// chunkRows is how many rows go to a Parquet writer's Write at a time,
// and are read back at a time. Parquet's columnWriter ends pages as if
// its rows came in such Writes, which keeps its files what
// GenericWriter[readingRow] writes.
const chunkRows = 4096

// readingRow is one row of the raw table (rawColumns, in order). The
// struct tags are the file's schema (see Parquet).
type readingRow struct {
	Time         int64   `parquet:"time,timestamp(millisecond:utc),delta"`
	DaemonTimeMs int64   `parquet:"daemon_time_ms,delta"`
	Endpoint     string  `parquet:"endpoint,dict"`
	Kind         string  `parquet:"kind,dict"`
	Device       int32   `parquet:"device"`
	PowerW       float64 `parquet:"power_w"`
	Seed         bool    `parquet:"seed"`
}

// gridRow is one row of the grid table (see GridParquet).
type gridRow struct {
	Time      int64    `parquet:"time,timestamp(millisecond:utc),delta"`
	BinMs     int64    `parquet:"bin_ms,delta"`
	Endpoint  string   `parquet:"endpoint,dict"`
	Kind      string   `parquet:"kind,dict"`
	Device    int32    `parquet:"device"`
	EnergyJ   float64  `parquet:"energy_j"`
	AvgPowerW *float64 `parquet:"avg_power_w,optional"`
	Coverage  float64  `parquet:"coverage"`
	Samples   int32    `parquet:"samples"`
}

// newWriter returns a Parquet writer for rows of T: zstd, data pages v1
// (read by every Parquet reader), row groups of opt's size and the
// key-value metadata meta. Up to encoders pages are compressed at once.
// Call release when done with it.
func newWriter[T any](w io.Writer, opt Options, meta map[string]string, encoders int) (pw *parquet.GenericWriter[T], release func()) {
	codec := newZstdCodec(encoders)
	options := []parquet.WriterOption{
		parquet.Compression(codec),
		parquet.DataPageVersion(1),
		parquet.MaxRowsPerRowGroup(opt.rowGroupRows()),
		// "application version X" as the spec asks; parquet.CreatedBy
		// would append an empty "(build )".
		&parquet.WriterConfig{CreatedBy: "wattrec version " + cmp.Or(opt.Version, "unknown")},
	}
	for k, v := range meta {
		options = append(options, parquet.KeyValueMetadata(k, v))
	}
	return parquet.NewGenericWriter[T](w, options...), func() { codec.enc.Close() }
}

// Parquet writes every stored reading that passes f to w as a Parquet
// file, one row per device value, ordered by endpoint, kind, device and
// corrected time (ties in arrival order). The schema:
//
//	time            TIMESTAMP(MILLIS, isAdjustedToUTC=true)  clock-corrected, DELTA_BINARY_PACKED
//	daemon_time_ms  INT64                                     the daemon's own stamp, DELTA_BINARY_PACKED
//	endpoint        STRING, dictionary-encoded
//	kind            STRING, dictionary-encoded: gpu, cpu or dram
//	device          INT32
//	power_w         DOUBLE                                    milliwatts / 1000
//	seed            BOOLEAN                                   read with get_power at a (re)connect
//
// All columns are required and zstd-compressed. The key-value metadata
// (keys Meta*) holds the integration rules, each endpoint's /discover
// answer, clock estimates, sessions and gaps, the filters and
// opt.Version. Rows are read one series at a time and written in chunks,
// so memory is bounded by one row group; the columns are encoded and
// compressed side by side, one goroutine each (see columnWriter), all of
// which have exited when Parquet returns. On error (ctx cancelled
// included) it returns without writing the footer: what reached w is not
// a valid Parquet file, and WriteFile removes it. It returns the number
// of rows written.
func Parquet(ctx context.Context, w io.Writer, db *store.DB, f query.Filter, opt Options) (int64, error) {
	plan, err := query.NewPlan(ctx, db, f, query.Periods{CPUMs: opt.CPUPeriodMs})
	if err != nil {
		return 0, err
	}
	meta, err := metadata(ctx, db, TableReadings, f, plan, opt, 0)
	if err != nil {
		return 0, err
	}
	// One zstd encoder per core that can compress a column's page.
	pw, release := newWriter[readingRow](w, opt, meta, min(runtime.GOMAXPROCS(0), len(rawColumns)))
	defer release()
	cw, err := newColumnWriter(pw, opt.rowGroupRows())
	if err != nil {
		return 0, err
	}
	defer cw.stop()
	prog := newProgress(opt.Progress, estimateRows(plan.Series, plan.Range))
	b, err := cw.nextBatch()
	if err != nil {
		return 0, err
	}
	flush := func() error {
		if b.len() == 0 {
			return nil
		}
		if err := cw.write(b); err != nil {
			return err
		}
		prog.add(int64(b.len()))
		b, err = cw.nextBatch()
		return err
	}
	for _, s := range plan.Series {
		series := newRawSeries(s.SeriesKey)
		err := db.Scan(ctx, s.SeriesKey, plan.Range.From, plan.Range.To, func(r *store.Reading) error {
			b.add(series, r)
			if b.len() == batchRows {
				return flush()
			}
			return nil
		})
		if err != nil {
			return prog.done, err
		}
	}
	if err := flush(); err != nil {
		return prog.done, err
	}
	if err := ctx.Err(); err != nil {
		return prog.done, err
	}
	// close writes the last row group and the footer.
	if err := cw.close(); err != nil {
		return prog.done, err
	}
	prog.finish()
	return prog.done, nil
}

// GridParquet writes the energy grid of the series that pass f to w as a
// Parquet file: per series and bin of binMs (see Grid), one row,
// ordered by endpoint, kind, device and time. The schema:
//
//	time         TIMESTAMP(MILLIS, isAdjustedToUTC=true)  bin start
//	bin_ms       INT64                                     bin length (shorter where the window clips it)
//	endpoint     STRING, dictionary-encoded
//	kind         STRING, dictionary-encoded: gpu, cpu or dram
//	device       INT32
//	energy_j     DOUBLE                                    the exact integral over the bin
//	avg_power_w  DOUBLE, optional                          energy / observed time; null when unobserved
//	coverage     DOUBLE                                    observed fraction of the bin
//	samples      INT32                                     readings stamped in the bin
//
// The metadata is Parquet's, with MetaTable = TableGrid and MetaWindow
// carrying bin_ms. It returns the number of rows written; on error it
// leaves the file without a footer, like Parquet.
func GridParquet(ctx context.Context, w io.Writer, db *store.DB, f query.Filter, binMs int64, opt Options) (int64, error) {
	plan, err := gridPlan(ctx, db, f, binMs, opt)
	if err != nil {
		return 0, err
	}
	meta, err := metadata(ctx, db, TableGrid, plan.filter, plan.Plan, opt, binMs)
	if err != nil {
		return 0, err
	}
	pw, release := newWriter[gridRow](w, opt, meta, 1)
	defer release()
	buf := make([]gridRow, 0, chunkRows)
	avgs := make([]float64, chunkRows) // backing store for AvgPowerW
	flush := func() error {
		if len(buf) == 0 {
			return nil
		}
		if _, err := pw.Write(buf); err != nil {
			return fmt.Errorf("write parquet: %w", err)
		}
		buf = buf[:0]
		return nil
	}
	n, err := plan.run(ctx, db, opt.Progress, func(b *GridBin) error {
		row := gridRow{
			Time: b.FromMs, BinMs: b.ToMs - b.FromMs, Endpoint: b.endpoint, Kind: b.kind, Device: b.Series.Device,
			EnergyJ: b.Joules(), Coverage: b.Coverage(), Samples: int32(min(b.Samples, 1<<31-1)),
		}
		if avg, ok := b.AvgW(); ok {
			avgs[len(buf)] = avg
			row.AvgPowerW = &avgs[len(buf)]
		}
		buf = append(buf, row)
		if len(buf) == cap(buf) {
			return flush()
		}
		return nil
	})
	if err != nil {
		return n, err
	}
	if err := flush(); err != nil {
		return n, err
	}
	if err := pw.Close(); err != nil {
		return n, fmt.Errorf("write parquet footer: %w", err)
	}
	return n, nil
}
