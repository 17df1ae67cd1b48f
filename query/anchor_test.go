package query_test

import (
	"context"
	"math"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wattrec/wattrec/query"
	"github.com/wattrec/wattrec/store"
)

// TestAnchored builds a GPU whose true power steps at random instants, a
// zeusd that polls it every 20 ms and sends changes, a 3 s outage, and a
// hardware counter read every 2 s (exact, in whole mJ, at a time known to
// ±1 ms), then checks every figure of the anchored energy against the
// truth over random windows: the anchored joules within their bound of
// the true energy of the window (the outage bridged, so all of it), the
// stream joules within theirs of the true energy of the covered time,
// the sources adding up, the bridged time the outage's share of the
// window, and the anchored bound tighter than the stream's.
func TestAnchored(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, err := store.Open(filepath.Join(t.TempDir(), "a.db"), store.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rng := rand.New(rand.NewPCG(3, 4))
	const (
		ep      = "n1:4938"
		period  = 20
		spanMs  = 60_000
		outFrom = 21_000
		outTo   = 24_000
	)
	base := int64(1_795_881_600_000)
	tp := truePower{t: []float64{0}, mw: []float64{200_000}}
	for k := int64(1); k < spanMs/period; k++ {
		if rng.IntN(4) == 0 {
			tp.t = append(tp.t, float64((k-1)*period)+rng.Float64()*period)
			tp.mw = append(tp.mw, float64(80_000+rng.IntN(250_000)))
		}
	}
	b := store.Batch{Sessions: []store.Session{
		{Endpoint: ep, Stream: store.StreamGPU, Start: base, End: base + outFrom, Reason: "server closed the stream"},
		{Endpoint: ep, Stream: store.StreamGPU, Start: base + outTo, End: base + spanMs, Reason: "recorder stopped"},
	}}
	last := int64(-1)
	for ms := int64(0); ms < spanMs; ms += period {
		if ms >= outFrom && ms < outTo {
			last = -1 // the seed after the reconnect
			continue
		}
		if mw := int64(tp.at(float64(ms))); mw != last {
			b.Readings = append(b.Readings, store.Reading{Endpoint: ep, Kind: store.KindGPU, TimeMs: base + ms, DaemonMs: base + ms, MilliWatts: mw, Seed: last < 0})
			last = mw
		}
	}
	for ms := int64(0); ms <= spanMs; ms += 2000 {
		at := float64(ms) + rng.Float64() - 0.5 // read within ±0.5 ms of its stamp, 1 ms round trip
		b.Counters = append(b.Counters, store.CounterReading{Endpoint: ep, Kind: store.KindGPU, TakenMs: base + ms, RTTUs: 1000,
			EnergyUJ: 1e12 + int64(tp.cumulative(at)/1000)*1000, Trigger: store.TriggerPeriodic})
	}
	if err := db.Write(ctx, &b); err != nil {
		t.Fatal(err)
	}

	for i := range 40 {
		a := rng.Int64N(spanMs - 5000)
		w := query.Interval{From: a, To: a + 5000 + rng.Int64N(spanMs-a-5000)}
		if i == 0 {
			w = query.Interval{From: 15_000, To: 30_000} // across the outage
		}
		rep, err := query.Energy(ctx, db, query.Options{Filter: query.Filter{Range: query.Between(base+w.From, base+w.To)}, By: query.ByTotal})
		if err != nil {
			t.Fatal(err)
		}
		r := rep.Rows[0]
		full := tp.energy(float64(w.From), float64(w.To))
		var observed float64
		for _, s := range []query.Interval{{From: 0, To: outFrom}, {From: outTo, To: spanMs}} {
			if iv := (query.Interval{From: max(s.From, w.From), To: min(s.To, w.To)}); iv.Len() > 0 {
				observed += tp.energy(float64(iv.From), float64(iv.To))
			}
		}
		if e := math.Abs(float64(r.EnergyUJ) - observed); e > float64(r.BoundUJ) {
			t.Errorf("window %v: stream %d µJ, true energy of the covered time %.0f: error %.0f over the bound %d", w, r.EnergyUJ, observed, e, r.BoundUJ)
		}
		if w.Len() < 4000 || r.AnchoredSeries != 1 {
			t.Errorf("window %v: %d anchored series, want 1", w, r.AnchoredSeries)
			continue
		}
		if r.FromCounterUJ+r.FromStreamUJ != r.AnchoredUJ {
			t.Errorf("window %v: sources %d + %d µJ, anchored %d", w, r.FromCounterUJ, r.FromStreamUJ, r.AnchoredUJ)
		}
		// The counter bridges the part of the outage between the window's
		// first and last counter readings (every 2 s; one up to 250 ms
		// outside, in the outage, anchors the edge).
		first, lastRead := int64(math.MaxInt64), int64(math.MinInt64)
		inOutage := func(a, b int64) bool { return a >= outFrom && b <= outTo }
		for r := int64(0); r <= spanMs; r += 2000 {
			switch {
			case w.From <= r && r <= w.To:
				first, lastRead = min(first, r), max(lastRead, r)
			case w.From-250 <= r && r < w.From && inOutage(r, w.From):
				first = min(first, w.From)
			case w.To < r && r <= w.To+250 && inOutage(w.To, r):
				lastRead = max(lastRead, w.To)
			}
		}
		bridged := query.Interval{From: max(outFrom, first, w.From), To: min(outTo, lastRead, w.To)}
		truth := observed
		if bridged.Len() > 0 {
			truth += tp.energy(float64(bridged.From), float64(bridged.To))
		}
		if e := math.Abs(float64(r.AnchoredUJ) - truth); e > float64(r.AnchoredBoundUJ) {
			t.Errorf("window %v: anchored %d µJ, true %.0f (window %.0f): error %.0f over the bound %d", w, r.AnchoredUJ, truth, full, e, r.AnchoredBoundUJ)
		}
		outage := max(0, min(w.To, outTo)-max(w.From, outFrom))
		if r.BridgedMs != max(0, bridged.Len()) || r.BridgedMs+r.UncoveredMs != outage {
			t.Errorf("window %v: bridged %d ms + uncovered %d ms, want %d ms of the outage's %d ms bridged", w, r.BridgedMs, r.UncoveredMs, bridged.Len(), outage)
		}
		if r.AnchoredBoundUJ >= r.BoundUJ {
			t.Errorf("window %v: anchored bound %d µJ, not tighter than the stream's %d", w, r.AnchoredBoundUJ, r.BoundUJ)
		}
		if i == 0 {
			t.Logf("window %v across the outage: true %.3f J; anchored %.3f ± %.3f J (%.3f J from the counter, %d ms bridged); stream %.3f ± %.3f J, true energy of the covered time %.3f J",
				w, truth/1e6, float64(r.AnchoredUJ)/1e6, float64(r.AnchoredBoundUJ)/1e6, float64(r.FromCounterUJ)/1e6, r.BridgedMs, r.Joules(), float64(r.BoundUJ)/1e6, observed/1e6)
		}
		if i == 0 && (r.BridgedMs != outTo-outFrom || r.CounterRatio() < 0.97 || r.CounterRatio() > 1.03) {
			t.Errorf("window across the outage: bridged %d ms, integral/counter %.4f", r.BridgedMs, r.CounterRatio())
		}
	}

	// A counter that goes down (a driver reload) is no anchor there, and
	// the report says so.
	if err := db.Write(ctx, &store.Batch{Counters: []store.CounterReading{
		{Endpoint: ep, Kind: store.KindGPU, TakenMs: base + 41_000, RTTUs: 1000, EnergyUJ: 5_000_000, Trigger: store.TriggerMark},
	}}); err != nil {
		t.Fatal(err)
	}
	rep, err := query.Energy(ctx, db, query.Options{Filter: query.Filter{Range: query.Between(base+39_500, base+42_500)}})
	if err != nil {
		t.Fatal(err)
	}
	r := rep.Rows[0]
	if r.CounterMs != 0 || r.AnchoredSeries != 0 {
		t.Errorf("around a counter that went down: counter %d ms, %d anchored series; want none", r.CounterMs, r.AnchoredSeries)
	}
	if len(rep.Warnings) != 2 || !strings.Contains(rep.Warnings[0], "went down") {
		t.Errorf("warnings %q, want two about the counter going down and back", rep.Warnings)
	}
}

// TestAnchored_Jump: a counter that jumps inside a long run of intervals
// (a RAPL wrap zeusd did not unwrap, say) is far too small a share of the
// run to show in its sum, but each interval must fit the device's peak
// power: the jump's interval is left to the stream, with a warning, and
// the rest of the run stays anchored.
func TestAnchored_Jump(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, err := store.Open(filepath.Join(t.TempDir(), "j.db"), store.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	const ep = "n1:4938"
	base := int64(1_795_881_600_000)
	b := store.Batch{Sessions: []store.Session{{Endpoint: ep, Stream: store.StreamGPU, Start: base, End: base + 3_600_000, Reason: "recorder stopped"}}}
	for ms := int64(0); ms < 3_600_000; ms += 50 {
		b.Readings = append(b.Readings, store.Reading{Endpoint: ep, Kind: store.KindGPU, TimeMs: base + ms, DaemonMs: base + ms, MilliWatts: 200_000 + ms%1000})
	}
	var e int64 = 1e12
	for ms := int64(0); ms <= 3_600_000; ms += 10_000 {
		if ms == 1_800_000 {
			e += 4_294_967_296 // 2^32 µJ
		}
		b.Counters = append(b.Counters, store.CounterReading{Endpoint: ep, Kind: store.KindGPU, TakenMs: base + ms, RTTUs: 500, EnergyUJ: e, Trigger: store.TriggerPeriodic})
		e += 200_475 * 10_000 // the stream's average power × 10 s
	}
	if err := db.Write(ctx, &b); err != nil {
		t.Fatal(err)
	}
	rep, err := query.Energy(ctx, db, query.Options{Filter: query.Filter{Range: query.Between(base, base+3_600_000)}})
	if err != nil {
		t.Fatal(err)
	}
	r := rep.Rows[0]
	jump := query.FormatTime(base+1_790_000) + " → " + query.FormatTime(base+1_800_000)
	if len(rep.Warnings) != 1 || !strings.Contains(rep.Warnings[0], jump) {
		t.Errorf("warnings %q, want one about the jump's interval %s", rep.Warnings, jump)
	}
	if r.CounterMs != 3_590_000 || r.AnchoredSeries != 1 {
		t.Errorf("anchored over %d ms, want all but the jump's 10 s", r.CounterMs)
	}
	if e := math.Abs(float64(r.AnchoredUJ - r.EnergyUJ)); e > float64(r.AnchoredBoundUJ) {
		t.Errorf("anchored %d µJ, stream %d µJ (the truth here): off by %.0f µJ, over the bound %d", r.AnchoredUJ, r.EnergyUJ, e, r.AnchoredBoundUJ)
	}
}
