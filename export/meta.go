package export

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/wattrec/wattrec/query"
	"github.com/wattrec/wattrec/store"
)

// Parquet key-value metadata keys. Values are JSON unless noted. Clock
// estimates, sessions and gaps are those of the endpoints exported that
// matter to the export's window: estimates taken in it and the one in
// force at its start, sessions and gaps that overlap it; counter readings
// those of the series exported taken in the filter's time range, marks
// those that overlap it (all of both without a time filter). With the
// rows, they are everything `wattrec import` needs to rebuild the
// recording (RawFile reads them back).
const (
	MetaVersion    = "wattrec.version"     // text: the wattrec version that wrote the file
	MetaTable      = "wattrec.table"       // text: TableReadings or TableGrid
	MetaColumns    = "wattrec.columns"     // {column: description with unit}
	MetaFilter     = "wattrec.filter"      // the export's filters: {"from","to","from_ms","to_ms","endpoints","devices"}
	MetaWindow     = "wattrec.window"      // the integration window: {"from","to","from_ms","to_ms"} (+ "bin_ms" for a grid)
	MetaRules      = "wattrec.rules"       // text: the integration rules, as query prints them
	MetaCPUPeriods = "wattrec.cpu_periods" // {"endpoint kind:device": {"period_ms","inferred"}}
	MetaEndpoints  = "wattrec.endpoints"   // {endpoint: {"network","discover" (the /discover answer),"gpus","cpus",...}}
	MetaClock      = "wattrec.clock"       // {endpoint: [{"taken_ms","offset_us","rtt_us","samples"}]}, oldest first
	MetaSessions   = "wattrec.sessions"    // {endpoint: [{"stream","start_ms","end_ms","open","events","malformed","reason"}]}
	MetaGaps       = "wattrec.gaps"        // {endpoint: [{"stream","from_ms","to_ms","reason","recorder"}]}
	MetaCounters   = "wattrec.counters"    // {endpoint: {"gpu:0": {"taken_ms":[…],"energy_uj":[…],"rtt_us":[…],"trigger":[…]}}}, oldest first
	MetaMarks      = "wattrec.marks"       // [{"id","name","begin_ms","end_ms","open","created_ms","source"}] (store.Mark)
	MetaTruncated  = "wattrec.truncated"   // only when a list was thinned: {"clock"|"sessions"|"gaps"|"counters": {endpoint: entries in the window}, "marks": {"": marks}}
)

// The entries of MetaClock, MetaSessions, MetaGaps and MetaCounters, as
// written and as read back (RawFile).
type (
	metaClock struct {
		TakenMs  int64 `json:"taken_ms"`
		OffsetUs int64 `json:"offset_us"`
		RTTUs    int64 `json:"rtt_us"`
		Samples  int   `json:"samples"`
	}
	metaSession struct {
		Stream    string `json:"stream"`
		StartMs   int64  `json:"start_ms"`
		EndMs     int64  `json:"end_ms"`
		Open      bool   `json:"open,omitempty"`
		Events    uint64 `json:"events"`
		Malformed uint64 `json:"malformed"`
		Reason    string `json:"reason,omitempty"`
	}
	metaGap struct {
		Stream   string `json:"stream"`
		FromMs   int64  `json:"from_ms"`
		ToMs     int64  `json:"to_ms"`
		Reason   string `json:"reason,omitempty"`
		Recorder bool   `json:"recorder"`
	}
	// metaCounters are one series' counter readings, a column each
	// (a third of the bytes of an object per reading).
	metaCounters struct {
		TakenMs  []int64  `json:"taken_ms"`
		EnergyUJ []int64  `json:"energy_uj"`
		RTTUs    []int64  `json:"rtt_us"`
		Trigger  []string `json:"trigger"`
	}
)

// counterColumns groups counter readings by series ("gpu:0"), in order.
func counterColumns(cs []store.CounterReading) map[string]*metaCounters {
	out := map[string]*metaCounters{}
	for i := range cs {
		c := &cs[i]
		name := fmt.Sprintf("%s:%d", c.Kind, c.Device)
		col := out[name]
		if col == nil {
			col = &metaCounters{}
			out[name] = col
		}
		col.TakenMs, col.EnergyUJ = append(col.TakenMs, c.TakenMs), append(col.EnergyUJ, c.EnergyUJ)
		col.RTTUs, col.Trigger = append(col.RTTUs, c.RTTUs), append(col.Trigger, c.Trigger.String())
	}
	return out
}

// metaListBudget bounds the entries of each of MetaClock, MetaSessions,
// MetaGaps, MetaCounters and MetaMarks, all endpoints together, so that
// the footer stays a few MB: readers parse it whole on open, and some
// refuse huge ones. An endpoint
// keeps at least 256 of each. Longer lists are thinned evenly (first and
// last kept), and MetaTruncated says so; `wattrec info` lists them all.
const metaListBudget = 100_000

// Values of MetaTable.
const (
	TableReadings = "readings"
	TableGrid     = "grid"
)

var gridColumns = map[string]string{
	"time":        "bin start (UTC, ms); bins are aligned to multiples of bin_ms since the Unix epoch, clipped to the window",
	"bin_ms":      "bin length in ms (shorter for a bin clipped by the window's edges)",
	"endpoint":    "the zeusd endpoint (host:port or socket path)",
	"kind":        "gpu, cpu (package) or dram",
	"device":      "device index on the endpoint",
	"energy_j":    "energy in the bin, joules: the exact integral by the integration rules (wattrec.rules); the bins of a window sum to wattrec query's joules",
	"avg_power_w": "average power while observed (energy_j / observed time); null when nothing was observed",
	"coverage":    "fraction of the bin with a known value (inside a live stream session, after its first reading)",
	"samples":     "readings stamped inside the bin",
}

// metadata gathers the key-value metadata of an export of plan's series
// under filter f.
func metadata(ctx context.Context, db *store.DB, table string, f query.Filter, plan *query.Plan, opt Options, binMs int64) (map[string]string, error) {
	m := map[string]string{MetaTable: table}
	if opt.Version != "" {
		m[MetaVersion] = opt.Version
	}
	put := func(key string, v any) error {
		b, err := json.Marshal(v)
		if err != nil {
			return fmt.Errorf("metadata %s: %w", key, err)
		}
		m[key] = string(b)
		return nil
	}
	cols := rawDescriptions()
	if table == TableGrid {
		cols = gridColumns
	}
	if err := put(MetaColumns, cols); err != nil {
		return nil, err
	}
	if err := put(MetaFilter, filterJSON(f, plan.Range)); err != nil {
		return nil, err
	}
	if len(plan.Series) > 0 {
		win := plan.Window
		w := map[string]any{"from_ms": win.From, "to_ms": win.To, "from": query.FormatTime(win.From), "to": query.FormatTime(win.To)}
		if binMs > 0 {
			w["bin_ms"] = binMs
		}
		if err := put(MetaWindow, w); err != nil {
			return nil, err
		}
		m[MetaRules] = plan.RulesLine()
		type period struct {
			PeriodMs int64 `json:"period_ms"`
			Inferred bool  `json:"inferred"`
		}
		periods := map[string]period{}
		for name, r := range plan.Rules() {
			if r.Kind == query.RuleBackward {
				periods[name] = period{r.PeriodMs, r.Inferred}
			}
		}
		if err := put(MetaCPUPeriods, periods); err != nil {
			return nil, err
		}
	}

	// Per endpoint: its info, clock estimates, sessions, gaps and
	// counter readings.
	endpoints := map[string]store.EndpointInfo{}
	clocks := map[string][]metaClock{}
	sessions := map[string][]metaSession{}
	gaps := map[string][]metaGap{}
	counters := map[string][]store.CounterReading{}
	truncated := map[string]map[string]int{}
	infos, err := db.Endpoints(ctx)
	if err != nil {
		return nil, err
	}
	wanted := map[string]bool{}
	for _, s := range plan.Series {
		wanted[s.Endpoint] = true
	}
	// What the window needs: estimates taken in it and the one in force
	// at its start; sessions and gaps that overlap it.
	from, to := plan.Window.From, plan.Window.To
	limit := max(256, metaListBudget/max(1, len(wanted)))
	thinned := func(list string, ep string, total int) {
		if total > limit {
			if truncated[list] == nil {
				truncated[list] = map[string]int{}
			}
			truncated[list][ep] = total
		}
	}
	for _, info := range infos {
		ep := info.Endpoint
		if !wanted[ep] {
			continue
		}
		endpoints[ep] = info
		ces, err := db.ClockEstimates(ctx, ep)
		if err != nil {
			return nil, err
		}
		var cs []metaClock
		for i, c := range ces {
			if c.TakenMs < to && (c.TakenMs >= from || i+1 == len(ces) || ces[i+1].TakenMs > from) {
				cs = append(cs, metaClock{c.TakenMs, c.OffsetUs, c.RTTUs, c.Samples})
			}
		}
		thinned("clock", ep, len(cs))
		clocks[ep] = thin(cs, limit)
		ss, err := db.Sessions(ctx, ep)
		if err != nil {
			return nil, err
		}
		var sl []metaSession
		for _, s := range ss {
			if s.End > from && s.Start < to {
				sl = append(sl, metaSession{s.Stream.String(), s.Start, s.End, s.Open, s.Events, s.Malformed, s.Reason})
			}
		}
		thinned("sessions", ep, len(sl))
		sessions[ep] = thin(sl, limit)
		var gl []metaGap
		for _, g := range query.Gaps(ss) {
			if g.ToMs > from && g.FromMs < to {
				gl = append(gl, metaGap{g.Stream.String(), g.FromMs, g.ToMs, g.Reason, g.Recorder})
			}
		}
		thinned("gaps", ep, len(gl))
		gaps[ep] = thin(gl, limit)
	}
	// Counter readings of the series exported, taken in the filter's
	// range (all of them when unfiltered: an anchor just outside the
	// window still counts).
	for _, s := range plan.Series {
		ep := s.Endpoint
		err := db.EachCounter(ctx, s.SeriesKey, plan.Range.From, plan.Range.To, func(c *store.CounterReading) error {
			counters[ep] = append(counters[ep], *c)
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	counterCols := map[string]map[string]*metaCounters{}
	for ep, cs := range counters {
		thinned("counters", ep, len(cs))
		counterCols[ep] = counterColumns(thin(cs, limit))
	}
	// Marks that overlap the filter's range (an open one reaches its end).
	var marks []store.Mark
	if len(plan.Series) > 0 {
		all, err := db.Marks(ctx, "")
		if err != nil {
			return nil, err
		}
		for _, mk := range all {
			if mk.BeginMs < plan.Range.To && (mk.Open || mk.EndMs > plan.Range.From) {
				marks = append(marks, mk)
			}
		}
	}
	if len(marks) > metaListBudget {
		truncated["marks"] = map[string]int{"": len(marks)}
	}
	for key, v := range map[string]any{MetaEndpoints: endpoints, MetaClock: clocks, MetaSessions: sessions, MetaGaps: gaps,
		MetaCounters: counterCols, MetaMarks: thin(marks, metaListBudget)} {
		if err := put(key, v); err != nil {
			return nil, err
		}
	}
	if len(truncated) > 0 {
		if err := put(MetaTruncated, truncated); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// filterJSON is the JSON form of the export's filters, with the time
// range resolved (rng); unset parts are left out.
func filterJSON(f query.Filter, rng query.Interval) map[string]any {
	out := map[string]any{}
	if rng != query.All {
		out["from_ms"], out["to_ms"] = rng.From, rng.To
		out["from"], out["to"] = query.FormatTime(rng.From), query.FormatTime(rng.To)
	}
	if len(f.Endpoints) > 0 {
		out["endpoints"] = f.Endpoints
	}
	if len(f.Devices) > 0 {
		var devs []string
		for _, d := range f.Devices {
			devs = append(devs, d.String())
		}
		out["devices"] = devs
	}
	return out
}

// thin returns at most n elements of list, evenly spread, the first and
// the last included.
func thin[T any](list []T, n int) []T {
	if list == nil {
		return []T{} // JSON [] rather than null
	}
	if len(list) <= n || n < 2 {
		return list
	}
	out := make([]T, 0, n)
	for i := range n {
		out = append(out, list[i*(len(list)-1)/(n-1)])
	}
	return out
}
