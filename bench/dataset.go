// Package bench measures wattrec's storage engine (ingest rate, bytes per
// sample, query time, recorder memory) and its plots on a deterministic
// data set: 8 GPUs at 20 Hz (change-only) and 2 CPU packages with DRAM at
// 10 Hz, as the simulator's traces make them, over 1 h or 24 h.
//
// The measurements are Go benchmarks in bench_test.go and plot_test.go;
// victoriametrics_test.go measures VictoriaMetrics on the same data set,
// the baseline of the issue-14 goals. run.sh runs them and prints a
// table of the measurements and one of the goals. Nothing here runs in a
// plain `go test`.
package bench

import (
	"context"
	"fmt"
	"time"

	"github.com/wattrec/wattrec/simulator"
	"github.com/wattrec/wattrec/store"
)

// The data set.
const (
	GPUs     = 8
	CPUs     = 2
	Seed     = 1
	Endpoint = "node1:4938" // the endpoint the data set is stored under by Build
	// OffsetMs is the clock offset Build applies: corrected = daemon + OffsetMs.
	OffsetMs = 3
)

// Start is where the data set begins on the daemon clock.
var Start = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// Config is the simulated node of the data set: zeusd's default poll
// rates, per-device sample events.
func Config() simulator.Config {
	cfg := simulator.DefaultConfig()
	cfg.GPUs, cfg.CPUs, cfg.Seed = GPUs, CPUs, Seed
	return cfg
}

// Replay returns the simulator replaying span of the data set.
func Replay(span time.Duration) (*simulator.Replay, error) {
	return simulator.NewReplay(Config(), Start, Start.Add(span))
}

// Size is the size of a data set.
type Size struct {
	Events  int64 // SSE events in the per-device sample format
	Samples int64 // readings: one per GPU event, two per CPU event (package and DRAM)
	GPU     int64 // GPU readings
}

// Count walks the data set of r.
func Count(r *simulator.Replay) Size {
	var s Size
	for range r.Values("gpu") {
		s.Events++
		s.Samples++
		s.GPU++
	}
	for v := range r.Values("cpu") {
		s.Events++
		s.Samples++
		if v.HasDRAM {
			s.Samples++
		}
	}
	return s
}

// CounterEvery is how often the data set's hardware counters are read:
// the recorder's default counter interval.
const CounterEvery = 10 * time.Second

// Build stores the data set of r in db as a recorder would have: under
// Endpoint, corrected time = daemon time + OffsetMs, with one live
// session per stream over the whole span, in batches of batch readings
// (in stream order, GPU stream then CPU stream), and, with counters, a
// hardware counter reading of every series every CounterEvery (the exact
// hold integral of its readings, in whole mJ for a GPU, with a 0.5 ms
// round trip).
func Build(ctx context.Context, db *store.DB, r *simulator.Replay, span time.Duration, batch int, counters bool) error {
	from, to := Start.UnixMilli()+OffsetMs, Start.Add(span).UnixMilli()+OffsetMs
	b := store.Batch{Sessions: []store.Session{
		{Endpoint: Endpoint, Stream: store.StreamGPU, Start: from, End: to, Reason: "benchmark data set"},
		{Endpoint: Endpoint, Stream: store.StreamCPU, Start: from, End: to, Reason: "benchmark data set"},
	}}
	flush := func() error {
		if err := db.Write(ctx, &b); err != nil {
			return fmt.Errorf("build data set: %w", err)
		}
		b.Reset()
		return nil
	}
	type counter struct{ t, mw, uj, next int64 }
	series := map[store.SeriesKey]*counter{}
	every := CounterEvery.Milliseconds()
	add := func(kind store.Kind, dev int, daemon, mw int64) error {
		t := daemon + OffsetMs
		k := store.SeriesKey{Endpoint: Endpoint, Kind: kind, Device: int32(dev)}
		c := series[k]
		if c == nil {
			c = &counter{t: t, mw: mw, next: t}
			series[k] = c
		}
		for ; counters && c.next <= t; c.next += every {
			uj := c.uj + c.mw*(c.next-c.t)
			if kind == store.KindGPU {
				uj = uj / 1000 * 1000
			}
			b.Counters = append(b.Counters, store.CounterReading{Endpoint: Endpoint, Kind: kind, Device: int32(dev),
				TakenMs: c.next, RTTUs: 500, EnergyUJ: uj, Trigger: store.TriggerPeriodic})
		}
		c.uj += c.mw * (t - c.t)
		c.t, c.mw = t, mw
		b.Readings = append(b.Readings, store.Reading{Endpoint: Endpoint, Kind: kind, Device: int32(dev),
			TimeMs: t, DaemonMs: daemon, MilliWatts: mw})
		if len(b.Readings) >= batch {
			return flush()
		}
		return nil
	}
	for v := range r.Values("gpu") {
		if err := add(store.KindGPU, v.Device, v.DaemonMs, v.Power); err != nil {
			return err
		}
	}
	for v := range r.Values("cpu") {
		if err := add(store.KindCPU, v.Device, v.DaemonMs, v.Power); err != nil {
			return err
		}
		if v.HasDRAM {
			if err := add(store.KindDRAM, v.Device, v.DaemonMs, v.DRAM); err != nil {
				return err
			}
		}
	}
	return flush()
}
