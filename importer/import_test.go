package importer_test

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"io"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"testing"

	"github.com/wattrec/wattrec/export"
	"github.com/wattrec/wattrec/importer"
	"github.com/wattrec/wattrec/internal/simtest"
	"github.com/wattrec/wattrec/query"
	"github.com/wattrec/wattrec/store"
)

const t0 = simtest.RecordingStartMs

// exportFile writes db's raw export of f to path.
func exportFile(tb testing.TB, db *store.DB, path, format string, f query.Filter) {
	tb.Helper()
	err := export.WriteFile(path, true, func(w io.Writer) error {
		return export.Write(context.Background(), w, db, export.Request{Format: format, Filter: f})
	})
	if err != nil {
		tb.Fatal(err)
	}
}

func openRO(tb testing.TB, path string) *store.DB {
	tb.Helper()
	db, err := store.Open(path, store.Options{ReadOnly: true})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	return db
}

func writeText(tb testing.TB, path, text string) string {
	tb.Helper()
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		tb.Fatal(err)
	}
	return path
}

// TestImport_Windows: two Parquet exports of consecutive windows of one
// recording import into one file side by side: the same rows as the
// whole, each session cut at the windows' edge, and what both carry (the
// clock estimate in force at the second's start, the marks that span
// both) once.
func TestImport_Windows(t *testing.T) {
	dir := t.TempDir()
	rec := filepath.Join(dir, "rec.db")
	simtest.WriteRecording(t, rec)
	src := openRO(t, rec)
	mid := int64(t0 + 100_000) // inside a GPU session, an epoch and a minute of clock estimates
	first, second := filepath.Join(dir, "first.parquet"), filepath.Join(dir, "second.parquet")
	exportFile(t, src, first, export.FormatParquet, query.Filter{Range: query.TimeRange{To: query.At(mid)}})
	exportFile(t, src, second, export.FormatParquet, query.Filter{Range: query.TimeRange{From: query.At(mid)}})

	out := filepath.Join(dir, "joined.db")
	rep, err := importer.Import(context.Background(), out, []string{first, second}, importer.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Files) != 2 || rep.Files[0].SessionsFrom != importer.SessionsFromFile || rep.Counts.Readings != 41400 {
		t.Fatalf("report %+v", rep)
	}
	db := openRO(t, out)
	var whole, joined bytes.Buffer
	if _, err := export.CSV(context.Background(), &whole, src, query.Filter{}, export.Options{}); err != nil {
		t.Fatal(err)
	}
	if _, err := export.CSV(context.Background(), &joined, db, query.Filter{}, export.Options{}); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(whole.Bytes(), joined.Bytes()) {
		t.Error("the two windows' rows differ from the whole recording's")
	}
	ctx := context.Background()
	for _, ep := range []string{"node1:4938", "/run/zeusd/zeusd.sock"} {
		orig, _ := src.Sessions(ctx, ep)
		var want []store.Session
		for _, s := range orig {
			if s.Start < mid && s.End > mid { // cut in two by the windows
				a, b := s, s
				a.End, b.Start = mid, mid
				want = append(want, a, b)
				continue
			}
			want = append(want, s)
		}
		slices.SortStableFunc(want, func(a, b store.Session) int {
			return cmp.Or(cmp.Compare(a.Start, b.Start), cmp.Compare(a.Stream, b.Stream))
		})
		if got, _ := db.Sessions(ctx, ep); !reflect.DeepEqual(got, want) {
			t.Errorf("%s sessions = %+v, want %+v", ep, got, want)
		}
		wantClocks, _ := src.ClockEstimates(ctx, ep)
		if got, _ := db.ClockEstimates(ctx, ep); !reflect.DeepEqual(got, wantClocks) {
			t.Errorf("%s clock estimates = %+v, want each once: %+v", ep, got, wantClocks)
		}
		cs, _ := src.CounterSeries(ctx, ep)
		for _, c := range cs {
			want, _ := src.Counters(ctx, c.SeriesKey, math.MinInt64, math.MaxInt64)
			if got, _ := db.Counters(ctx, c.SeriesKey, math.MinInt64, math.MaxInt64); !reflect.DeepEqual(got, want) {
				t.Errorf("%s counter readings: %d, want %d", c.SeriesKey, len(got), len(want))
			}
		}
	}
	wantMarks, _ := src.Marks(ctx, "")
	if got, _ := db.Marks(ctx, ""); !reflect.DeepEqual(got, wantMarks) {
		t.Errorf("marks = %+v, want each once: %+v", got, wantMarks)
	}
}

// TestImport_MaxGap: the sessions of a stream join its devices' runs;
// each run lasts one period (the device's most common spacing) past its
// last reading, and a device with a single reading takes the stream's
// shortest period.
func TestImport_MaxGap(t *testing.T) {
	dir := t.TempDir()
	text := "time,endpoint,kind,device,power_w\n" +
		// gpu:0 every 100 ms from 0 to 1 s, then from 5 s to 5.3 s
		"0,n,gpu,0,1\n100,n,gpu,0,1\n200,n,gpu,0,1\n300,n,gpu,0,1\n400,n,gpu,0,1\n500,n,gpu,0,1\n600,n,gpu,0,1\n700,n,gpu,0,1\n800,n,gpu,0,1\n900,n,gpu,0,1\n1000,n,gpu,0,1\n" +
		"5000,n,gpu,0,1\n5100,n,gpu,0,1\n5200,n,gpu,0,1\n5300,n,gpu,0,1\n" +
		// gpu:1 every 200 ms from 900 ms to 1.7 s: the stream's first
		// session goes on to 1.9 s
		"900,n,gpu,1,1\n1100,n,gpu,1,1\n1300,n,gpu,1,1\n1500,n,gpu,1,1\n1700,n,gpu,1,1\n" +
		// gpu:2 once at 3 s: 1.3 s after gpu:1's last, a session of its
		// own, 100 ms long (gpu:0's period)
		"3000,n,gpu,2,1\n" +
		// the CPU stream is its own
		"0,n,cpu,0,1\n500,n,cpu,0,1\n"
	path := writeText(t, filepath.Join(dir, "log.csv"), text)
	out := filepath.Join(dir, "out.db")
	rep, err := importer.Import(context.Background(), out, []string{path}, importer.Options{MaxGapMs: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if f := rep.Files[0]; f.SessionsFrom != importer.SessionsMaxGap || f.Sessions != 4 || f.Rows != 23 {
		t.Errorf("report %+v", f)
	}
	got, err := openRO(t, out).Sessions(context.Background(), "n")
	if err != nil {
		t.Fatal(err)
	}
	type ses struct {
		stream     store.Stream
		start, end int64
		events     uint64
	}
	var gotS []ses
	for _, s := range got {
		gotS = append(gotS, ses{s.Stream, s.Start, s.End, s.Events})
	}
	want := []ses{{store.StreamGPU, 0, 1900, 16}, {store.StreamCPU, 0, 1000, 2}, {store.StreamGPU, 3000, 3100, 1}, {store.StreamGPU, 5000, 5400, 4}}
	if !reflect.DeepEqual(gotS, want) {
		t.Errorf("sessions = %+v, want %+v", gotS, want)
	}
}

// TestImport_Cancel: a cancelled import leaves no file and no temp file.
func TestImport_Cancel(t *testing.T) {
	dir := t.TempDir()
	path := writeText(t, filepath.Join(dir, "log.csv"), "time,endpoint,kind,device,power_w\n0,n,gpu,0,1\n")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	out := filepath.Join(dir, "out.db")
	if _, err := importer.Import(ctx, out, []string{path}, importer.Options{MaxGapMs: 1000}); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("left behind: %v", entries)
	}
}

// TestMerge_SameEndpointApart: the same endpoint in two recordings at
// times that do not overlap merges into one endpoint with both spans.
func TestMerge_SameEndpointApart(t *testing.T) {
	dir := t.TempDir()
	mk := func(name string, from int64) string {
		path := writeText(t, filepath.Join(dir, name+".csv"), "time,endpoint,kind,device,power_w\n")
		f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		for i := range int64(10) {
			f.WriteString(strconv.FormatInt(from+i*100, 10) + ",n,gpu,0,7" + "\n")
		}
		f.Close()
		db := filepath.Join(dir, name+".db")
		if _, err := importer.Import(context.Background(), db, []string{path}, importer.Options{MaxGapMs: 500}); err != nil {
			t.Fatal(err)
		}
		return db
	}
	a, b := mk("a", 0), mk("b", 5000)
	out := filepath.Join(dir, "all.db")
	counts, err := importer.Merge(context.Background(), out, []string{b, a}, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	if counts.Readings != 20 || counts.Sessions != 2 {
		t.Errorf("counts %v", counts)
	}
	// Merged the other way round, the overlap check still sees both.
	if _, err := importer.Merge(context.Background(), filepath.Join(dir, "again.db"), []string{a, out}, false, nil); !errors.Is(err, importer.ErrOverlap) {
		t.Errorf("merge of a file with a merge that holds it: %v, want ErrOverlap", err)
	}
}
