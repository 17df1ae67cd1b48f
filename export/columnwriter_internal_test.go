package export

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/parquet-go/parquet-go"

	"github.com/wattrec/wattrec/store"
)

// testSeries is one series of readings for the columnWriter tests.
type testSeries struct {
	key      store.SeriesKey
	readings []store.Reading
}

// randomSeries returns n readings spread over a few series of uneven
// length, with seeds, shared milliseconds and wandering power.
func randomSeries(n int, seed uint64) []testSeries {
	rng := rand.New(rand.NewPCG(seed, 1))
	keys := []store.SeriesKey{
		{Endpoint: "a:4938", Kind: store.KindGPU, Device: 0}, {Endpoint: "a:4938", Kind: store.KindGPU, Device: 1},
		{Endpoint: "a:4938", Kind: store.KindCPU, Device: 0}, {Endpoint: "a:4938", Kind: store.KindDRAM, Device: 0},
		{Endpoint: "b:4938", Kind: store.KindGPU, Device: 7},
	}
	lens := make([]int, len(keys))
	for i := range lens {
		lens[i] = n / len(keys)
	}
	lens[0] += n % len(keys)
	d := min(lens[len(lens)-1], 5) // uneven
	lens[0], lens[len(lens)-1] = lens[0]+d, lens[len(lens)-1]-d
	var out []testSeries
	for i, k := range keys {
		m := lens[i]
		s := testSeries{key: k}
		t, mw := int64(1_795_881_600_000), int64(100_000)
		for j := range m {
			t += rng.Int64N(3) // 0: a shared millisecond
			mw = max(0, mw+rng.Int64N(2001)-1000)
			s.readings = append(s.readings, store.Reading{TimeMs: t, DaemonMs: t - 3, MilliWatts: mw, Seed: j%997 == 0})
		}
		out = append(out, s)
	}
	return out
}

// writeColumns writes series as Parquet does: through a columnWriter, in
// batches of batchRows.
func writeColumns(tb testing.TB, series []testSeries, opt Options) []byte {
	tb.Helper()
	var buf bytes.Buffer
	pw, release := newWriter[readingRow](&buf, opt, map[string]string{"k": "v"}, 2)
	defer release()
	cw, err := newColumnWriter(pw, opt.rowGroupRows())
	if err != nil {
		tb.Fatal(err)
	}
	defer cw.stop()
	b, err := cw.nextBatch()
	if err != nil {
		tb.Fatal(err)
	}
	for _, s := range series {
		rs := newRawSeries(s.key)
		for i := range s.readings {
			if b.add(rs, &s.readings[i]); b.len() == batchRows {
				if err := cw.write(b); err != nil {
					tb.Fatal(err)
				}
				if b, err = cw.nextBatch(); err != nil {
					tb.Fatal(err)
				}
			}
		}
	}
	if err := cw.write(b); err != nil {
		tb.Fatal(err)
	}
	if err := cw.close(); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

// writeRows writes series with GenericWriter[readingRow].Write, chunkRows
// rows at a time.
func writeRows(tb testing.TB, series []testSeries, opt Options) []byte {
	tb.Helper()
	var buf bytes.Buffer
	pw, release := newWriter[readingRow](&buf, opt, map[string]string{"k": "v"}, 1)
	defer release()
	rows := make([]readingRow, 0, chunkRows)
	flush := func() {
		if _, err := pw.Write(rows); err != nil {
			tb.Fatal(err)
		}
		rows = rows[:0]
	}
	for _, s := range series {
		for _, r := range s.readings {
			rows = append(rows, readingRow{Time: r.TimeMs, DaemonTimeMs: r.DaemonMs, Endpoint: s.key.Endpoint,
				Kind: s.key.Kind.String(), Device: s.key.Device, PowerW: float64(r.MilliWatts) / 1000, Seed: r.Seed})
			if len(rows) == cap(rows) {
				flush()
			}
		}
	}
	flush()
	if err := pw.Close(); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

// TestColumnWriter_SameBytes: the column goroutines write the file that
// GenericWriter[readingRow] writes from the same rows, byte for byte,
// with row groups and pages that end anywhere.
func TestColumnWriter_SameBytes(t *testing.T) {
	for _, tc := range []struct {
		rows         int
		rowGroupRows int64
	}{
		{0, 0},
		{1, 0},
		{150_000, 0},        // several batches, several pages per column
		{120_000, 50_001},   // row groups that end inside a page step and a batch
		{70_000, batchRows}, // row groups that end with a batch
		{2_000, 100},        // many small row groups
		{9_000, chunkRows + 1},
	} {
		t.Run(fmt.Sprintf("rows=%d/rowGroupRows=%d", tc.rows, tc.rowGroupRows), func(t *testing.T) {
			series := randomSeries(tc.rows, uint64(tc.rows))
			opt := Options{Version: "test", RowGroupRows: tc.rowGroupRows}
			got, want := writeColumns(t, series, opt), writeRows(t, series, opt)
			if !bytes.Equal(got, want) {
				t.Fatalf("columnWriter wrote %d bytes, GenericWriter %d; they differ", len(got), len(want))
			}
			f, err := parquet.OpenFile(bytes.NewReader(got), int64(len(got)))
			if err != nil {
				t.Fatal(err)
			}
			if got, want := f.NumRows(), int64(tc.rows); got != want {
				t.Errorf("file has %d rows, want %d", got, want)
			}
			if tc.rows >= 100_000 {
				// The first column chunk (time) must span pages, or
				// their ends went untested.
				if got := len(f.OffsetIndexes()[0].PageLocations); got < 2 {
					t.Errorf("the first column chunk has %d pages, want several", got)
				}
			}
		})
	}
}

// errWriter fails every write.
type errWriter struct{}

var errWrite = errors.New("write refused")

func (errWriter) Write([]byte) (int, error) { return 0, errWrite }

// TestColumnWriter_WriteError: a failing output ends the export with its
// error (at the latest when the footer is written: the writer buffers),
// and stop (deferred) still ends the goroutines.
func TestColumnWriter_WriteError(t *testing.T) {
	pw, release := newWriter[readingRow](errWriter{}, Options{RowGroupRows: 1000}, nil, 2)
	defer release()
	cw, err := newColumnWriter(pw, 1000)
	if err != nil {
		t.Fatal(err)
	}
	defer cw.stop()
	series := randomSeries(5000, 1)
	b, err := cw.nextBatch()
	if err != nil {
		t.Fatal(err)
	}
	rs := newRawSeries(series[0].key)
	for i := range series[0].readings {
		b.add(rs, &series[0].readings[i])
	}
	err = cw.write(b)
	if err == nil {
		err = cw.close()
	}
	if !errors.Is(err, errWrite) {
		t.Fatalf("write and close: %v, want %v", err, errWrite)
	}
}
