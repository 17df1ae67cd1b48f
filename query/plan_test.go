package query_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/wattrec/wattrec/internal/simtest"
	"github.com/wattrec/wattrec/query"
	"github.com/wattrec/wattrec/store"
)

// MustWrite writes b to db in one transaction.
func MustWrite(tb testing.TB, db *store.DB, b *store.Batch) {
	tb.Helper()
	if err := db.Write(context.Background(), b); err != nil {
		tb.Fatal(err)
	}
}

// planT0 is the plan tests' time zero: 2026-11-28T16:00:00Z.
const planT0 = 1_795_881_600_000

// cpuReadings is a CPU-stream series of endpoint ep: a reading every
// spacing ms of daemon time in [from, to), with the recorder's clock
// stepping back and forth around the daemon's, so that only the daemon
// spacing is regular.
func cpuReadings(ep string, kind store.Kind, from, to, spacing int64) []store.Reading {
	var out []store.Reading
	for i, d := 0, from; d < to; i, d = i+1, d+spacing {
		out = append(out, store.Reading{Endpoint: ep, Kind: kind, Device: 0,
			TimeMs: d + 20 + 30*int64(i%2), DaemonMs: d, MilliWatts: 40_000 + int64(i%7)*1_000})
	}
	return out
}

// planDB is a recording of two endpoints:
//
//	n1:4938  gpu:0 and gpu:1; GPU stream live [0 s, 10 s) and [20 s, 30 s)
//	n2:4938  cpu:0 and dram:0 every 100 ms (daemon time); CPU stream live
//	         [5 s, 40 s); a GPU stream session at [-50 s, -40 s) with no
//	         GPU readings
func planDB(t *testing.T) *store.DB {
	t.Helper()
	db := simtest.MustOpenDB(t)
	b := store.Batch{Sessions: []store.Session{
		{Endpoint: "n1:4938", Stream: store.StreamGPU, Start: planT0, End: planT0 + 10_000},
		{Endpoint: "n1:4938", Stream: store.StreamGPU, Start: planT0 + 20_000, End: planT0 + 30_000},
		{Endpoint: "n2:4938", Stream: store.StreamCPU, Start: planT0 + 5_000, End: planT0 + 40_000},
		{Endpoint: "n2:4938", Stream: store.StreamGPU, Start: planT0 - 50_000, End: planT0 - 40_000},
	}}
	for dev := int32(0); dev < 2; dev++ {
		for _, ms := range []int64{0, 2_500, 9_000, 20_000, 24_000, 29_999} {
			b.Readings = append(b.Readings, store.Reading{Endpoint: "n1:4938", Kind: store.KindGPU, Device: dev,
				TimeMs: planT0 + ms, DaemonMs: planT0 + ms - 2, MilliWatts: 100_000 + ms})
		}
	}
	b.Readings = append(b.Readings, cpuReadings("n2:4938", store.KindCPU, planT0+5_000, planT0+40_000, 100)...)
	b.Readings = append(b.Readings, cpuReadings("n2:4938", store.KindDRAM, planT0+5_000, planT0+40_000, 100)...)
	MustWrite(t, db, &b)
	return db
}

var (
	planGPU0 = store.SeriesKey{Endpoint: "n1:4938", Kind: store.KindGPU, Device: 0}
	planGPU1 = store.SeriesKey{Endpoint: "n1:4938", Kind: store.KindGPU, Device: 1}
	planCPU0 = store.SeriesKey{Endpoint: "n2:4938", Kind: store.KindCPU, Device: 0}
	planDRAM = store.SeriesKey{Endpoint: "n2:4938", Kind: store.KindDRAM, Device: 0}
)

// seriesKeys is the keys of p's series, in order.
func seriesKeys(p *query.Plan) []store.SeriesKey {
	var out []store.SeriesKey
	for _, s := range p.Series {
		out = append(out, s.SeriesKey)
	}
	return out
}

func TestPlan(t *testing.T) {
	ctx := context.Background()
	db := planDB(t)
	gpuSessions := []query.Interval{{From: planT0, To: planT0 + 10_000}, {From: planT0 + 20_000, To: planT0 + 30_000}}
	cpuSessions := []query.Interval{{From: planT0 + 5_000, To: planT0 + 40_000}}
	recording := query.Interval{From: planT0, To: planT0 + 40_000}
	start, end := query.Bound{Kind: query.BoundStart}, query.Bound{Kind: query.BoundEnd}
	gpu, cpu := mustParseDevices(t, "gpu"), mustParseDevices(t, "cpu")

	t.Run("Zero", func(t *testing.T) {
		p, err := query.NewPlan(ctx, db, query.Filter{}, query.Periods{})
		if err != nil {
			t.Fatal(err)
		}
		if p.Range != query.All {
			t.Errorf("Range = %+v, want All", p.Range)
		}
		// The union of the sessions of the series' streams: n2's GPU
		// session has no series and does not count.
		if p.Window != recording {
			t.Errorf("Window = %+v, want %+v", p.Window, recording)
		}
		if got, want := seriesKeys(p), []store.SeriesKey{planGPU0, planGPU1, planCPU0, planDRAM}; !slices.Equal(got, want) {
			t.Fatalf("series %v, want %v", got, want)
		}
		if got, want := len(p.Specs), len(p.Series); got != want {
			t.Fatalf("%d specs for %d series", got, want)
		}
		for i, s := range p.Series {
			spec := p.Specs[i]
			switch s.Kind {
			case store.KindGPU:
				// The period (for the bound) from the daemon's 2.5 s spacing.
				if want := (query.Rule{Kind: query.RuleHold, PeriodMs: 2500, Inferred: true}); spec.Rule != want {
					t.Errorf("%s: rule %+v, want %+v", s.SeriesKey, spec.Rule, want)
				}
				if !slices.Equal(spec.Sessions, gpuSessions) {
					t.Errorf("%s: sessions %+v, want %+v", s.SeriesKey, spec.Sessions, gpuSessions)
				}
			default:
				// Inferred from the daemon's 100 ms spacing, not the
				// recorder's 70/130 ms one.
				if want := (query.Rule{Kind: query.RuleBackward, PeriodMs: 100, Inferred: true}); spec.Rule != want {
					t.Errorf("%s: rule %+v, want %+v", s.SeriesKey, spec.Rule, want)
				}
				if !slices.Equal(spec.Sessions, cpuSessions) {
					t.Errorf("%s: sessions %+v, want %+v", s.SeriesKey, spec.Sessions, cpuSessions)
				}
			}
		}
		rules := p.Rules()
		if len(rules) != 4 || rules[planCPU0.String()].PeriodMs != 100 || rules[planDRAM.String()].PeriodMs != 100 {
			t.Errorf("Rules() = %+v, want every series, cpu:0 and dram:0 of n2 at 100 ms", rules)
		}
		if line := p.RulesLine(); !strings.HasPrefix(line, query.RulesSummary()) || !strings.Contains(line, "CPU period 100ms inferred (2 series)") ||
			!strings.Contains(line, "GPU period 2.5s inferred (2 series)") {
			t.Errorf("RulesLine() = %q", line)
		}
	})

	t.Run("CPUPeriodGiven", func(t *testing.T) {
		p, err := query.NewPlan(ctx, db, query.Filter{}, query.Periods{CPUMs: 250})
		if err != nil {
			t.Fatal(err)
		}
		for i, s := range p.Series {
			want := query.Rule{Kind: query.RuleBackward, PeriodMs: 250}
			if s.Kind == store.KindGPU {
				want = query.Rule{Kind: query.RuleHold, PeriodMs: 2500, Inferred: true}
			}
			if got := p.Specs[i].Rule; got != want {
				t.Errorf("%s: rule %+v, want %+v", s.SeriesKey, got, want)
			}
		}
		if line := p.RulesLine(); !strings.Contains(line, "CPU period 250ms assumed") || strings.Contains(line, "CPU period 250ms inferred") {
			t.Errorf("RulesLine() = %q, want a 250ms period that is not inferred", line)
		}
	})

	t.Run("NegativeCPUPeriod", func(t *testing.T) {
		if _, err := query.NewPlan(ctx, db, query.Filter{}, query.Periods{CPUMs: -1}); !errors.Is(err, query.ErrInvalid) {
			t.Fatalf("err = %v, want ErrInvalid", err)
		}
	})

	for _, tc := range []struct {
		name   string
		ep     string
		window query.Interval
		want   []store.SeriesKey
	}{
		{"EndpointGPU", "n1:4938", query.Interval{From: planT0, To: planT0 + 30_000}, []store.SeriesKey{planGPU0, planGPU1}},
		{"EndpointCPU", "n2:4938", query.Interval{From: planT0 + 5_000, To: planT0 + 40_000}, []store.SeriesKey{planCPU0, planDRAM}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := query.NewPlan(ctx, db, query.Filter{Endpoints: []string{tc.ep}}, query.Periods{})
			if err != nil {
				t.Fatal(err)
			}
			if p.Range != query.All || p.Window != tc.window {
				t.Errorf("Range %+v, Window %+v; want All and %+v", p.Range, p.Window, tc.window)
			}
			if got := seriesKeys(p); !slices.Equal(got, tc.want) {
				t.Errorf("series %v, want %v", got, tc.want)
			}
		})
	}

	t.Run("DeviceFilter", func(t *testing.T) {
		p, err := query.NewPlan(ctx, db, query.Filter{Devices: cpu}, query.Periods{})
		if err != nil {
			t.Fatal(err)
		}
		// "cpu" takes DRAM too.
		if got, want := seriesKeys(p), []store.SeriesKey{planCPU0, planDRAM}; !slices.Equal(got, want) {
			t.Errorf("series %v, want %v", got, want)
		}
		if want := (query.Interval{From: planT0 + 5_000, To: planT0 + 40_000}); p.Window != want {
			t.Errorf("Window %+v, want %+v", p.Window, want)
		}
	})

	t.Run("UnknownEndpoint", func(t *testing.T) {
		p, err := query.NewPlan(ctx, db, query.Filter{Endpoints: []string{"n1:4938", "n3:4938"}}, query.Periods{})
		if !errors.Is(err, query.ErrInvalid) {
			t.Fatalf("NewPlan = %+v, %v; want an error matching ErrInvalid", p, err)
		}
		for _, want := range []string{`"n3:4938"`, "n1:4938, n2:4938", db.Path()} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not contain %q", err, want)
			}
		}
	})

	t.Run("NoSeriesMatch", func(t *testing.T) {
		p, err := query.NewPlan(ctx, db, query.Filter{Endpoints: []string{"n1:4938"}, Devices: cpu}, query.Periods{})
		if err != nil {
			t.Fatalf("a filter that matches nothing: %v, want no error", err)
		}
		if len(p.Series) != 0 || len(p.Specs) != 0 {
			t.Errorf("series %v, %d specs; want none", seriesKeys(p), len(p.Specs))
		}
		if p.Range != query.All || p.Window.Len() != 0 {
			t.Errorf("Range %+v, Window %+v; want All and an empty window", p.Range, p.Window)
		}
	})

	// "start" and "end" are the edges of the whole recording (every
	// series), whatever the filter selects.
	for _, tc := range []struct {
		name string
		f    query.Filter
		want query.Interval
	}{
		{"StartEnd", query.Filter{Range: query.TimeRange{From: start, To: end}}, recording},
		{"StartEndOfGPUs", query.Filter{Range: query.TimeRange{From: start, To: end}, Devices: gpu}, recording},
		{"StartEndOfCPUs", query.Filter{Range: query.TimeRange{From: start, To: end}, Endpoints: []string{"n2:4938"}}, recording},
		{"StartToTime", query.Filter{Range: query.TimeRange{From: start, To: query.At(planT0 + 15_000)}, Endpoints: []string{"n2:4938"}},
			query.Interval{From: planT0, To: planT0 + 15_000}},
		{"TimeToEnd", query.Filter{Range: query.TimeRange{From: query.At(planT0 + 25_000), To: end}, Endpoints: []string{"n1:4938"}},
			query.Interval{From: planT0 + 25_000, To: planT0 + 40_000}},
		{"FromOmitted", query.Filter{Range: query.TimeRange{To: query.At(planT0 + 1_000)}, Endpoints: []string{"n2:4938"}},
			query.Interval{From: planT0, To: planT0 + 1_000}},
		{"Between", query.Filter{Range: query.Between(planT0-5_000, planT0+100_000)},
			query.Interval{From: planT0 - 5_000, To: planT0 + 100_000}},
	} {
		t.Run("Range/"+tc.name, func(t *testing.T) {
			p, err := query.NewPlan(ctx, db, tc.f, query.Periods{})
			if err != nil {
				t.Fatal(err)
			}
			if p.Range != tc.want || p.Window != tc.want {
				t.Errorf("Range %+v, Window %+v; want both %+v", p.Range, p.Window, tc.want)
			}
		})
	}

	t.Run("Range/FromEnd", func(t *testing.T) {
		_, err := query.NewPlan(ctx, db, query.Filter{Range: query.TimeRange{From: end}}, query.Periods{})
		if !errors.Is(err, query.ErrInvalid) || !strings.Contains(err.Error(), "is not after") {
			t.Fatalf("err = %v, want an empty-window error matching ErrInvalid", err)
		}
	})
}

func TestPlan_EmptyFile(t *testing.T) {
	ctx := context.Background()
	db := simtest.MustOpenDB(t)
	for _, r := range []query.TimeRange{
		{From: query.Bound{Kind: query.BoundStart}},
		{To: query.Bound{Kind: query.BoundEnd}},
		{From: query.At(planT0)},
	} {
		p, err := query.NewPlan(ctx, db, query.Filter{Range: r}, query.Periods{})
		if !errors.Is(err, query.ErrInvalid) || !strings.Contains(err.Error(), "holds no readings") || !strings.Contains(err.Error(), db.Path()) {
			t.Errorf("range %+v: NewPlan = %+v, %v; want ErrInvalid naming the file, \"holds no readings\"", r, p, err)
		}
	}
	// Without a recording's edge to resolve, an empty file is not an
	// error: there is just nothing to read.
	for _, r := range []query.TimeRange{{}, query.Between(planT0, planT0+1_000)} {
		p, err := query.NewPlan(ctx, db, query.Filter{Range: r}, query.Periods{})
		if err != nil {
			t.Errorf("range %+v: %v", r, err)
			continue
		}
		if len(p.Series) != 0 {
			t.Errorf("range %+v: series %v in an empty file", r, seriesKeys(p))
		}
	}
}

// TestPlan_NoSessions: without stored sessions the window is the span
// of the readings, and a CPU series too short to infer its period from
// gets the default, not inferred.
func TestPlan_NoSessions(t *testing.T) {
	ctx := context.Background()
	db := simtest.MustOpenDB(t)
	b := store.Batch{Readings: []store.Reading{
		{Endpoint: "n1:4938", Kind: store.KindGPU, TimeMs: planT0 + 1_000, DaemonMs: planT0 + 1_000, MilliWatts: 90_000},
		{Endpoint: "n1:4938", Kind: store.KindGPU, TimeMs: planT0 + 7_000, DaemonMs: planT0 + 7_000, MilliWatts: 95_000},
		{Endpoint: "n1:4938", Kind: store.KindCPU, TimeMs: planT0 + 500, DaemonMs: planT0 + 500, MilliWatts: 30_000},
		{Endpoint: "n1:4938", Kind: store.KindCPU, TimeMs: planT0 + 600, DaemonMs: planT0 + 600, MilliWatts: 31_000},
		{Endpoint: "n1:4938", Kind: store.KindCPU, TimeMs: planT0 + 900, DaemonMs: planT0 + 900, MilliWatts: 32_000},
	}}
	MustWrite(t, db, &b)
	p, err := query.NewPlan(ctx, db, query.Filter{}, query.Periods{})
	if err != nil {
		t.Fatal(err)
	}
	// The last reading's millisecond is inside the window.
	if want := (query.Interval{From: planT0 + 500, To: planT0 + 7_001}); p.Window != want {
		t.Errorf("Window %+v, want %+v", p.Window, want)
	}
	for i, s := range p.Series {
		if len(p.Specs[i].Sessions) != 0 {
			t.Errorf("%s: sessions %+v in a file without any", s.SeriesKey, p.Specs[i].Sessions)
		}
		if s.Kind != store.KindCPU {
			continue
		}
		if want := (query.Rule{Kind: query.RuleBackward, PeriodMs: query.DefaultCPUPeriodMs}); p.Specs[i].Rule != want {
			t.Errorf("%s: rule %+v, want %+v (two spacings are too few to infer from)", s.SeriesKey, p.Specs[i].Rule, want)
		}
	}
	if line := p.RulesLine(); !strings.Contains(line, "CPU period 100ms assumed (1 series)") {
		t.Errorf("RulesLine() = %q", line)
	}
	// "start" resolves to the first reading here.
	p, err = query.NewPlan(ctx, db, query.Filter{Range: query.TimeRange{From: query.Bound{Kind: query.BoundStart}}}, query.Periods{})
	if err != nil {
		t.Fatal(err)
	}
	if want := (query.Interval{From: planT0 + 500, To: planT0 + 7_001}); p.Range != want {
		t.Errorf("Range %+v, want %+v", p.Range, want)
	}
}

// TestPlan_PeriodNearWindow: the CPU period is inferred from the readings
// near the window's start, so a daemon whose poll period changed mid-run
// gets the period in force at the window.
func TestPlan_PeriodNearWindow(t *testing.T) {
	ctx := context.Background()
	db := simtest.MustOpenDB(t)
	b := store.Batch{Sessions: []store.Session{{Endpoint: "n2:4938", Stream: store.StreamCPU, Start: planT0, End: planT0 + 300_000}}}
	b.Readings = append(b.Readings, cpuReadings("n2:4938", store.KindCPU, planT0, planT0+100_000, 100)...)
	b.Readings = append(b.Readings, cpuReadings("n2:4938", store.KindCPU, planT0+100_000, planT0+300_000, 250)...)
	MustWrite(t, db, &b)
	for _, tc := range []struct {
		name string
		r    query.TimeRange
		want int64
	}{
		{"Whole", query.TimeRange{}, 100},
		{"Early", query.Between(planT0+10_000, planT0+20_000), 100},
		{"Late", query.Between(planT0+200_000, planT0+210_000), 250},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := query.NewPlan(ctx, db, query.Filter{Range: tc.r}, query.Periods{})
			if err != nil {
				t.Fatal(err)
			}
			if len(p.Specs) != 1 {
				t.Fatalf("%d specs, want 1", len(p.Specs))
			}
			if want := (query.Rule{Kind: query.RuleBackward, PeriodMs: tc.want, Inferred: true}); p.Specs[0].Rule != want {
				t.Errorf("rule %+v, want %+v", p.Specs[0].Rule, want)
			}
		})
	}
}

func mustParseDevices(tb testing.TB, s string) []query.DeviceFilter {
	tb.Helper()
	d, err := query.ParseDevices(s)
	if err != nil {
		tb.Fatal(err)
	}
	return d
}
