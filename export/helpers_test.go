package export_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

	"github.com/wattrec/wattrec/internal/simtest"
	"github.com/wattrec/wattrec/query"
	"github.com/wattrec/wattrec/recorder"
	"github.com/wattrec/wattrec/store"
)

// t0 is the start of the hand-built recording: 2026-11-27T16:00:00Z.
const t0 = 1795881600000

// Endpoints of the hand-built store. The socket path has a comma and a
// quote, which CSV must quote.
const (
	epTCP  = "n1:4938"
	epUnix = `/run/zeusd,"a".sock`
)

// MustHandDB builds a store by hand with store.Write: two endpoints, two
// GPUs each (change-only, irregular spacing, a seed at every connect, a
// few readings sharing a millisecond), one CPU package and its DRAM at
// 10 Hz, a disconnection of the GPU stream, clock estimates and discover
// answers. Everything is deterministic.
func MustHandDB(tb testing.TB) *store.DB {
	tb.Helper()
	db := simtest.MustOpenDB(tb)
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(1, 2))
	var b store.Batch
	for ei, ep := range []string{epTCP, epUnix} {
		network := "tcp"
		if ei == 1 {
			network = "unix"
		}
		b.Endpoints = append(b.Endpoints, store.EndpointInfo{
			Endpoint: ep, Network: network, GPUSelection: "all", CPUSelection: "all", GPUs: []int{0, 1}, CPUs: []int{0},
			Discover:  json.RawMessage(fmt.Sprintf(`{"gpu_ids":[0,1],"cpu_ids":[0],"node":%d}`, ei)),
			UpdatedMs: t0,
		})
		skew := int64(-5000 + 1234*ei) // corrected − daemon, ms
		for i := range 3 {
			b.Clocks = append(b.Clocks, store.ClockEstimate{Endpoint: ep, TakenMs: t0 + int64(i)*20_000, OffsetUs: -skew*1000 + int64(i), RTTUs: 150 + int64(i), Samples: 8})
		}
		// GPU stream: live [0 s, 20 s), gap, live [25 s, 60 s) (still open).
		gpuSessions := []store.Session{
			{Endpoint: ep, Stream: store.StreamGPU, Start: t0, End: t0 + 20_000, Events: 100, Reason: "EOF"},
			{Endpoint: ep, Stream: store.StreamGPU, Start: t0 + 25_000, End: t0 + 60_000, Open: true, Events: 90},
		}
		b.Sessions = append(b.Sessions, gpuSessions...)
		b.Sessions = append(b.Sessions, store.Session{Endpoint: ep, Stream: store.StreamCPU, Start: t0, End: t0 + 60_000, Reason: "recorder stopped", Events: 600})
		for dev := range int32(2) {
			for _, ses := range gpuSessions {
				t := ses.Start - 3 // the seed's daemon time predates the connect
				b.Readings = append(b.Readings, store.Reading{Endpoint: ep, Kind: store.KindGPU, Device: dev, TimeMs: t, DaemonMs: t + skew, MilliWatts: 60_000 + rng.Int64N(5000), Seed: true})
				for t < ses.End-10 {
					t += 5 + rng.Int64N(300)
					mw := 50_000 + rng.Int64N(250_000)
					b.Readings = append(b.Readings, store.Reading{Endpoint: ep, Kind: store.KindGPU, Device: dev, TimeMs: t, DaemonMs: t + skew, MilliWatts: mw})
					if rng.IntN(40) == 0 { // a second, different value in the same millisecond
						b.Readings = append(b.Readings, store.Reading{Endpoint: ep, Kind: store.KindGPU, Device: dev, TimeMs: t, DaemonMs: t + skew, MilliWatts: mw + 1})
					}
				}
			}
		}
		for _, kind := range []store.Kind{store.KindCPU, store.KindDRAM} {
			for t := int64(t0 + 100); t < t0+60_000; t += 100 {
				b.Readings = append(b.Readings, store.Reading{Endpoint: ep, Kind: kind, Device: 0, TimeMs: t, DaemonMs: t + skew, MilliWatts: 20_000 + rng.Int64N(100_000)})
			}
		}
	}
	if err := db.Write(ctx, &b); err != nil {
		tb.Fatal(err)
	}
	return db
}

// row is one raw reading as an exported file holds it.
type row struct {
	TimeMs, DaemonMs int64
	Endpoint, Kind   string
	Device           int32
	PowerW           float64
	Seed             bool
}

// storeRows reads what the store holds under f, in the export's order.
func storeRows(tb testing.TB, db *store.DB, f query.Filter) []row {
	tb.Helper()
	ctx := context.Background()
	plan, err := query.NewPlan(ctx, db, f, query.Periods{})
	if err != nil {
		tb.Fatal(err)
	}
	var out []row
	for _, s := range plan.Series {
		err := db.Scan(ctx, s.SeriesKey, plan.Range.From, plan.Range.To, func(r *store.Reading) error {
			out = append(out, row{r.TimeMs, r.DaemonMs, r.Endpoint, r.Kind.String(), r.Device, float64(r.MilliWatts) / 1000, r.Seed})
			return nil
		})
		if err != nil {
			tb.Fatal(err)
		}
	}
	return out
}

// diffRows fails tb unless got and want are equal, row by row.
func diffRows(tb testing.TB, got, want []row) {
	tb.Helper()
	if len(got) != len(want) {
		tb.Fatalf("%d rows, want %d", len(got), len(want))
	}
	bad := 0
	for i := range want {
		if got[i] != want[i] {
			tb.Errorf("row %d = %+v, want %+v", i, got[i], want[i])
			if bad++; bad > 5 {
				tb.FailNow()
			}
		}
	}
}

// arrowFile is a Parquet file as Apache Arrow's Go implementation reads
// it: the low-level reader (schema, row groups, column chunks, key-value
// metadata) and the table.
type arrowFile struct {
	pf    *file.Reader
	table arrow.Table
	meta  map[string]string
}

// readArrow opens data with Arrow's Parquet reader and reads the whole
// table. dictCols are read as Arrow dictionaries.
func readArrow(tb testing.TB, data []byte, dictCols ...int) *arrowFile {
	tb.Helper()
	pf, err := file.NewParquetReader(bytes.NewReader(data))
	if err != nil {
		tb.Fatalf("arrow: open parquet: %v", err)
	}
	tb.Cleanup(func() { pf.Close() })
	props := pqarrow.ArrowReadProperties{BatchSize: 64 << 10}
	for _, c := range dictCols {
		props.SetReadDict(c, true)
	}
	fr, err := pqarrow.NewFileReader(pf, props, memory.DefaultAllocator)
	if err != nil {
		tb.Fatalf("arrow: %v", err)
	}
	table, err := fr.ReadTable(context.Background())
	if err != nil {
		tb.Fatalf("arrow: read table: %v", err)
	}
	tb.Cleanup(table.Release)
	meta := map[string]string{}
	kv := pf.MetaData().KeyValueMetadata()
	for i, k := range kv.Keys() {
		meta[k] = kv.Values()[i]
	}
	return &arrowFile{pf: pf, table: table, meta: meta}
}

// column returns the chunks of the table's column named name.
func (f *arrowFile) column(tb testing.TB, name string) []arrow.Array {
	tb.Helper()
	idx := f.table.Schema().FieldIndices(name)
	if len(idx) != 1 {
		tb.Fatalf("arrow: no column %q in %s", name, f.table.Schema())
	}
	return f.table.Column(idx[0]).Data().Chunks()
}

// each calls fn for every value of column name, in row order.
func (f *arrowFile) each(tb testing.TB, name string, fn func(i int, a arrow.Array, j int)) {
	tb.Helper()
	i := 0
	for _, chunk := range f.column(tb, name) {
		for j := range chunk.Len() {
			fn(i, chunk, j)
			i++
		}
	}
}

// str reads value j of a string column, plain or dictionary-encoded.
func str(tb testing.TB, a arrow.Array, j int) string {
	switch a := a.(type) {
	case *array.String:
		return a.Value(j)
	case *array.LargeString:
		return a.Value(j)
	case *array.Dictionary:
		return str(tb, a.Dictionary(), a.GetValueIndex(j))
	}
	tb.Fatalf("arrow: %T is not a string column", a)
	return ""
}

// rows converts a raw export read by Arrow into rows.
func (f *arrowFile) rows(tb testing.TB) []row {
	tb.Helper()
	out := make([]row, f.table.NumRows())
	f.each(tb, "time", func(i int, a arrow.Array, j int) { out[i].TimeMs = int64(a.(*array.Timestamp).Value(j)) })
	f.each(tb, "daemon_time_ms", func(i int, a arrow.Array, j int) { out[i].DaemonMs = a.(*array.Int64).Value(j) })
	f.each(tb, "endpoint", func(i int, a arrow.Array, j int) { out[i].Endpoint = str(tb, a, j) })
	f.each(tb, "kind", func(i int, a arrow.Array, j int) { out[i].Kind = str(tb, a, j) })
	f.each(tb, "device", func(i int, a arrow.Array, j int) { out[i].Device = a.(*array.Int32).Value(j) })
	f.each(tb, "power_w", func(i int, a arrow.Array, j int) { out[i].PowerW = a.(*array.Float64).Value(j) })
	f.each(tb, "seed", func(i int, a arrow.Array, j int) { out[i].Seed = a.(*array.Boolean).Value(j) })
	return out
}

// gridRow is one grid bin as an exported file holds it; AvgW is NaN for
// a null.
type gridRow struct {
	TimeMs, BinMs  int64
	Endpoint, Kind string
	Device         int32
	EnergyJ, AvgW  float64
	Coverage       float64
	Samples        int32
}

func (r gridRow) equal(o gridRow) bool {
	same := func(a, b float64) bool { return a == b || (math.IsNaN(a) && math.IsNaN(b)) }
	return r.TimeMs == o.TimeMs && r.BinMs == o.BinMs && r.Endpoint == o.Endpoint && r.Kind == o.Kind && r.Device == o.Device &&
		same(r.EnergyJ, o.EnergyJ) && same(r.AvgW, o.AvgW) && same(r.Coverage, o.Coverage) && r.Samples == o.Samples
}

// gridRows converts a grid export read by Arrow into rows.
func (f *arrowFile) gridRows(tb testing.TB) []gridRow {
	tb.Helper()
	out := make([]gridRow, f.table.NumRows())
	f.each(tb, "time", func(i int, a arrow.Array, j int) { out[i].TimeMs = int64(a.(*array.Timestamp).Value(j)) })
	f.each(tb, "bin_ms", func(i int, a arrow.Array, j int) { out[i].BinMs = a.(*array.Int64).Value(j) })
	f.each(tb, "endpoint", func(i int, a arrow.Array, j int) { out[i].Endpoint = str(tb, a, j) })
	f.each(tb, "kind", func(i int, a arrow.Array, j int) { out[i].Kind = str(tb, a, j) })
	f.each(tb, "device", func(i int, a arrow.Array, j int) { out[i].Device = a.(*array.Int32).Value(j) })
	f.each(tb, "energy_j", func(i int, a arrow.Array, j int) { out[i].EnergyJ = a.(*array.Float64).Value(j) })
	f.each(tb, "avg_power_w", func(i int, a arrow.Array, j int) {
		out[i].AvgW = math.NaN()
		if a.IsValid(j) {
			out[i].AvgW = a.(*array.Float64).Value(j)
		}
	})
	f.each(tb, "coverage", func(i int, a arrow.Array, j int) { out[i].Coverage = a.(*array.Float64).Value(j) })
	f.each(tb, "samples", func(i int, a arrow.Array, j int) { out[i].Samples = a.(*array.Int32).Value(j) })
	return out
}

// recordSimulator records a simulator (two GPUs at 200 Hz, a CPU and its
// DRAM at 100 Hz, the daemon clock 5 s behind) until it has sent events
// events, then stops it and the recorder, and returns the store.
func recordSimulator(t *testing.T, format string, events int64) *store.DB {
	t.Helper()
	sent := simtest.NewLedger()
	cfg := simtest.FastConfig(format)
	cfg.OnEvent = sent.OnEvent(t)
	_, srv, stopSim := simtest.Start(t, cfg, "tcp")
	db := simtest.MustOpenDB(t)
	client := recorder.NewClient([]recorder.Server{srv})
	client.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	rec := recorder.New(client, db)
	rec.FlushInterval = 20 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- rec.Run(ctx) }()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("recorder: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("recorder did not stop")
		}
	}
	t.Cleanup(stop)

	sent.WaitEvents(t, events)
	// Stop the daemon first: every event it wrote reaches the recorder
	// before the connection's end.
	stopSim()
	want := sent.Values()
	simtest.WaitFor(t, func() bool { got, _ := simtest.Stored(t, db); return simtest.Covers(got, want) })
	stop()
	got, _ := simtest.Stored(t, db)
	simtest.Diff(t, got, want)
	return db
}

// MustSyntheticDB fills a fresh store with about n readings over span,
// the shape of zeusd's streams: one endpoint, 8 GPUs at 20 Hz
// (change-only: about 3 in 4 polls change), 2 CPU packages and their
// DRAM at 10 Hz, one session per stream. It writes in batches of 50,000
// readings, one transaction each, and returns the store (kept open).
func MustSyntheticDB(tb testing.TB, n int64, span time.Duration) *store.DB {
	tb.Helper()
	db := simtest.MustOpenDB(tb)
	if err := fillSynthetic(context.Background(), db, n, span); err != nil {
		tb.Fatal(err)
	}
	return db
}

// fillSynthetic writes the data set of MustSyntheticDB into db.
func fillSynthetic(ctx context.Context, db *store.DB, n int64, span time.Duration) error {
	const ep = "node1:4938"
	spanMs := span.Milliseconds()
	// Readings per ms of span: 8 GPUs × 20 Hz × 0.77 + 4 series × 10 Hz.
	perMs := (8*20*0.77 + 4*10) / 1000.0
	scale := float64(n) / (perMs * float64(spanMs)) // > 1 packs the polls closer
	gpuStep := max(1, int64(math.Round(50/scale)))
	cpuStep := max(1, int64(math.Round(100/scale)))
	rng := rand.New(rand.NewPCG(7, 7))
	b := &store.Batch{
		Endpoints: []store.EndpointInfo{{Endpoint: ep, Network: "tcp", Discover: json.RawMessage(`{"gpu_ids":[0,1,2,3,4,5,6,7],"cpu_ids":[0,1]}`),
			GPUSelection: "all", CPUSelection: "all", GPUs: []int{0, 1, 2, 3, 4, 5, 6, 7}, CPUs: []int{0, 1}, UpdatedMs: t0}},
		Sessions: []store.Session{
			{Endpoint: ep, Stream: store.StreamGPU, Start: t0, End: t0 + spanMs, Reason: "recorder stopped"},
			{Endpoint: ep, Stream: store.StreamCPU, Start: t0, End: t0 + spanMs, Reason: "recorder stopped"},
		},
		Clocks: []store.ClockEstimate{{Endpoint: ep, TakenMs: t0, OffsetUs: 5_000_000, RTTUs: 200, Samples: 8}},
	}
	flush := func(force bool) error {
		if len(b.Readings) < 50_000 && !force {
			return nil
		}
		if err := db.Write(ctx, b); err != nil {
			return err
		}
		b.Reset()
		return nil
	}
	// Series by series, so that each batch appends to few buckets.
	for dev := range int32(8) {
		mw := int64(100_000)
		for t := int64(t0); t < t0+spanMs; t += gpuStep {
			if t > t0 && rng.IntN(100) >= 77 {
				continue // unchanged: zeusd sends nothing
			}
			mw = min(400_000, max(20_000, mw+rng.Int64N(20_001)-10_000))
			b.Readings = append(b.Readings, store.Reading{Endpoint: ep, Kind: store.KindGPU, Device: dev, TimeMs: t, DaemonMs: t - 5000, MilliWatts: mw, Seed: t == t0})
			if err := flush(false); err != nil {
				return err
			}
		}
	}
	for _, kind := range []store.Kind{store.KindCPU, store.KindDRAM} {
		for dev := range int32(2) {
			for t := int64(t0) + cpuStep; t < t0+spanMs; t += cpuStep {
				b.Readings = append(b.Readings, store.Reading{Endpoint: ep, Kind: kind, Device: dev, TimeMs: t, DaemonMs: t - 5000, MilliWatts: 30_000 + rng.Int64N(90_000)})
				if err := flush(false); err != nil {
					return err
				}
			}
		}
	}
	return flush(true)
}
