package export_test

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"testing"

	"github.com/wattrec/wattrec/export"
	"github.com/wattrec/wattrec/query"
	"github.com/wattrec/wattrec/simulator"
	"github.com/wattrec/wattrec/store"
)

func seriesName(k store.SeriesKey) string {
	return fmt.Sprintf("%s %s:%d", k.Endpoint, k.Kind, k.Device)
}

// gridBins collects what Grid calls fn with.
func gridBins(tb testing.TB, db *store.DB, f query.Filter, binMs int64) []export.GridBin {
	tb.Helper()
	var out []export.GridBin
	n, err := export.Grid(context.Background(), db, f, binMs, export.Options{}, func(b *export.GridBin) error {
		out = append(out, *b)
		return nil
	})
	if err != nil {
		tb.Fatalf("Grid: %v", err)
	}
	if n != int64(len(out)) {
		tb.Errorf("Grid returned %d, called fn %d times", n, len(out))
	}
	return out
}

// checkGrid checks Grid against query.Energy over f's window: bin by bin
// against Energy's buckets of binMs (every field of the Result), and the
// sum of each series' bins, and of all bins, against Energy over the
// whole window (joules to 1e-9 relative; the integers exactly).
func checkGrid(t *testing.T, db *store.DB, f query.Filter, binMs int64) {
	t.Helper()
	ctx := context.Background()
	bins := gridBins(t, db, f, binMs)
	if len(bins) == 0 {
		t.Fatal("no bins")
	}

	// Bin by bin against Energy's buckets.
	rep, err := query.Energy(ctx, db, query.Options{Filter: f, EveryMs: binMs})
	if err != nil {
		t.Fatal(err)
	}
	type key struct {
		from  int64
		group string
	}
	buckets := map[key]query.Row{}
	nSeries := map[string]bool{}
	for _, r := range rep.Rows {
		if r.Group != "total" {
			buckets[key{r.FromMs, r.Group}] = r
			nSeries[r.Group] = true
		}
	}
	if len(bins) != len(buckets) {
		t.Errorf("%d bins, Energy has %d (series × buckets)", len(bins), len(buckets))
	}
	bad := 0
	for _, b := range bins {
		r, ok := buckets[key{b.FromMs, seriesName(b.Series)}]
		if !ok {
			t.Fatalf("bin %s %s: Energy has no such bucket", seriesName(b.Series), query.FormatTime(b.FromMs))
		}
		if r.ToMs != b.ToMs || r.Result != b.Result {
			t.Errorf("bin %s [%s, %s):\n got %+v\nwant %+v (bucket to %s)", seriesName(b.Series), query.FormatTime(b.FromMs), query.FormatTime(b.ToMs),
				b.Result, r.Result, query.FormatTime(r.ToMs))
			if bad++; bad > 3 {
				t.FailNow()
			}
		}
	}

	// Sums against Energy over the whole window, per series and in total.
	whole, err := query.Energy(ctx, db, query.Options{Filter: f})
	if err != nil {
		t.Fatal(err)
	}
	sumUJ, sumJ := map[string]int64{}, map[string]float64{}
	var totalJ float64
	for _, b := range bins {
		sumUJ[seriesName(b.Series)] += b.EnergyUJ
		sumJ[seriesName(b.Series)] += b.Joules()
		totalJ += b.Joules()
	}
	for _, r := range whole.Rows {
		if r.Group == "total" {
			if !close(totalJ, r.Joules()) {
				t.Errorf("all bins sum to %.9f J, query says %.9f J", totalJ, r.Joules())
			}
			if r.Joules() == 0 {
				t.Error("total energy is zero: the window sees nothing")
			}
			continue
		}
		if sumUJ[r.Group] != r.EnergyUJ || !close(sumJ[r.Group], r.Joules()) {
			t.Errorf("%s: bins sum to %d µJ (%.9f J), query says %d µJ (%.9f J)", r.Group, sumUJ[r.Group], sumJ[r.Group], r.EnergyUJ, r.Joules())
		}
	}
}

// close reports whether a and b agree to 1e-9 relative.
func close(a, b float64) bool {
	return a == b || math.Abs(a-b) <= 1e-9*math.Max(math.Abs(a), math.Abs(b))
}

func TestGrid(t *testing.T) {
	db := MustHandDB(t)
	devs, _ := query.ParseDevices("gpu:0,dram:0")
	for _, tc := range []struct {
		name  string
		f     query.Filter
		binMs int64
	}{
		{"WholeRecording1s", query.Filter{}, 1000},
		{"Unaligned1s", query.Filter{Range: query.Between(t0+3_333, t0+41_777)}, 1000},
		{"AcrossTheGap250ms", query.Filter{Range: query.Between(t0+15_000, t0+30_000)}, 250},
		{"Bin7s", query.Filter{Range: query.Between(t0-1_000, t0+59_999)}, 7000},
		{"BinLargerThanWindow", query.Filter{Range: query.Between(t0+1_500, t0+2_500)}, 60_000},
		{"Bin1ms", query.Filter{Range: query.Between(t0+19_900, t0+20_300)}, 1},
		{"Bin30msShorterThanCPUPeriod", query.Filter{Range: query.Between(t0+5_000, t0+6_000)}, 30},
		{"BeyondTheRecording", query.Filter{Range: query.Between(t0-30_000, t0+90_000)}, 10_000},
		{"Filtered", query.Filter{Range: query.Between(t0+1_000, t0+50_000), Endpoints: []string{epUnix}, Devices: devs}, 2000},
	} {
		t.Run(tc.name, func(t *testing.T) { checkGrid(t, db, tc.f, tc.binMs) })
	}

	t.Run("Bins", func(t *testing.T) {
		bins := gridBins(t, db, query.Filter{Range: query.Between(t0+500, t0+3_200)}, 1000)
		want := [][2]int64{{t0 + 500, t0 + 1000}, {t0 + 1000, t0 + 2000}, {t0 + 2000, t0 + 3000}, {t0 + 3000, t0 + 3200}}
		if len(bins) != 8*len(want) {
			t.Fatalf("%d bins, want %d", len(bins), 8*len(want))
		}
		for i, b := range bins {
			if w := want[i%len(want)]; b.FromMs != w[0] || b.ToMs != w[1] {
				t.Errorf("bin %d = [%d, %d), want [%d, %d)", i, b.FromMs-t0, b.ToMs-t0, w[0]-t0, w[1]-t0)
			}
		}
	})

	t.Run("Unobserved", func(t *testing.T) {
		// The GPU stream is down from 20 s to 25 s: nothing observed, no
		// energy, no average.
		for _, b := range gridBins(t, db, query.Filter{Range: query.Between(t0+21_000, t0+24_000), Endpoints: []string{epTCP}}, 1000) {
			_, ok := b.AvgW()
			if b.Series.Kind == store.KindGPU && (b.EnergyUJ != 0 || b.Coverage() != 0 || ok) {
				t.Errorf("%s in the gap: %+v, want nothing", seriesName(b.Series), b.Result)
			}
			if b.Series.Kind != store.KindGPU && (b.Coverage() != 1 || !ok) {
				t.Errorf("%s: coverage %v, want 1", seriesName(b.Series), b.Coverage())
			}
		}
	})

	t.Run("BadBin", func(t *testing.T) {
		_, err := export.Grid(context.Background(), db, query.Filter{}, 0, export.Options{}, func(*export.GridBin) error { return nil })
		if err == nil {
			t.Error("Grid with a 0 ms bin: no error")
		}
	})

	t.Run("CPUPeriod", func(t *testing.T) {
		// A fixed period reaches the plan: the bins still sum to Energy
		// with the same period.
		ctx := context.Background()
		f := query.Filter{Range: query.Between(t0+1_000, t0+9_000)}
		var sum int64
		_, err := export.Grid(ctx, db, f, 1000, export.Options{CPUPeriodMs: 250}, func(b *export.GridBin) error {
			sum += b.EnergyUJ
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		rep, err := query.Energy(ctx, db, query.Options{Filter: f, By: query.ByTotal, CPUPeriodMs: 250})
		if err != nil {
			t.Fatal(err)
		}
		if got, want := sum, rep.Rows[0].EnergyUJ; got != want {
			t.Errorf("bins sum to %d µJ, query with a 250 ms period says %d", got, want)
		}
	})
}

// TestGrid_Simulator checks the grid of a real recording against query.
func TestGrid_Simulator(t *testing.T) {
	db := recordSimulator(t, simulator.FormatSample, 400)
	plan, err := query.NewPlan(context.Background(), db, query.Filter{}, query.Periods{})
	if err != nil {
		t.Fatal(err)
	}
	from, to := plan.Window.From, plan.Window.To
	for _, binMs := range []int64{1, 7, 100, 1000} {
		t.Run(fmt.Sprint(binMs, "ms"), func(t *testing.T) {
			checkGrid(t, db, query.Filter{}, binMs)
			checkGrid(t, db, query.Filter{Range: query.Between(from+(to-from)/3, to-(to-from)/5)}, binMs)
		})
	}
}

func TestGridParquet(t *testing.T) {
	db := MustHandDB(t)
	f := query.Filter{Range: query.Between(t0+17_250, t0+33_000)}
	var want []gridRow
	for _, b := range gridBins(t, db, f, 500) {
		avg, ok := b.AvgW()
		if !ok {
			avg = math.NaN()
		}
		want = append(want, gridRow{b.FromMs, b.ToMs - b.FromMs, b.Series.Endpoint, b.Series.Kind.String(), b.Series.Device,
			b.Joules(), avg, b.Coverage(), int32(b.Samples)})
	}
	var buf bytes.Buffer
	n, err := export.GridParquet(context.Background(), &buf, db, f, 500, export.Options{Version: "v1", RowGroupRows: 100})
	if err != nil {
		t.Fatal(err)
	}
	if n != int64(len(want)) {
		t.Errorf("GridParquet returned %d rows, want %d", n, len(want))
	}
	af := readArrow(t, buf.Bytes())
	got := af.gridRows(t)
	if len(got) != len(want) {
		t.Fatalf("%d rows, want %d", len(got), len(want))
	}
	nulls := 0
	for i := range want {
		if !got[i].equal(want[i]) {
			t.Errorf("row %d = %+v, want %+v", i, got[i], want[i])
		}
		if math.IsNaN(got[i].AvgW) {
			nulls++
		}
	}
	if nulls == 0 {
		t.Error("no null avg_power_w: the window should include the GPU gap")
	}

	// Schema: the timestamp, and avg_power_w the only optional column.
	sc := af.pf.MetaData().Schema
	for i := range sc.NumColumns() {
		col := sc.Column(i)
		if optional := col.MaxDefinitionLevel() > 0; optional != (col.Name() == "avg_power_w") {
			t.Errorf("column %s: optional = %v", col.Name(), optional)
		}
	}
	if lt := sc.Column(0).LogicalType().String(); lt != "Timestamp(isAdjustedToUTC=true, timeUnit=milliseconds, is_from_converted_type=false, force_set_converted_type=false)" {
		t.Errorf("time: %s", lt)
	}

	// Metadata: the grid's window and bin.
	if got := af.meta[export.MetaTable]; got != export.TableGrid {
		t.Errorf("%s = %q, want %q", export.MetaTable, got, export.TableGrid)
	}
	var window struct {
		FromMs int64 `json:"from_ms"`
		ToMs   int64 `json:"to_ms"`
		BinMs  int64 `json:"bin_ms"`
	}
	mustJSON(t, af.meta, export.MetaWindow, &window)
	if window.FromMs != f.Range.From.Ms || window.ToMs != f.Range.To.Ms || window.BinMs != 500 {
		t.Errorf("window %+v, want %d → %d by 500 ms", window, f.Range.From.Ms, f.Range.To.Ms)
	}
	for _, key := range []string{export.MetaRules, export.MetaEndpoints, export.MetaClock, export.MetaSessions, export.MetaGaps, export.MetaVersion, export.MetaColumns} {
		if af.meta[key] == "" {
			t.Errorf("no %s", key)
		}
	}

	// Summed in Arrow's reading, the grid is query's energy.
	rep, err := query.Energy(context.Background(), db, query.Options{Filter: f, By: query.ByTotal})
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, r := range got {
		sum += r.EnergyJ
	}
	if !close(sum, rep.Rows[0].Joules()) {
		t.Errorf("energy_j sums to %.9f J, query says %.9f J", sum, rep.Rows[0].Joules())
	}
}
