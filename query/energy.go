package query

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/wattrec/wattrec/store"
)

// Grouping of query rows.
const (
	ByDevice   = "device"
	ByEndpoint = "endpoint"
	ByKind     = "kind"
	ByTotal    = "total"
)

// DefaultCPUPeriodMs is zeusd's default CPU poll period (10 Hz), used when
// a series has too few readings to infer its own.
const DefaultCPUPeriodMs = 100

// Options describe an energy query.
type Options struct {
	Filter      Filter // series, and the window [FromMs, ToMs); zero = the whole recording
	By          string // ByDevice (default), ByEndpoint, ByKind or ByTotal
	EveryMs     int64  // bucket width; 0 = one bucket for the whole window
	CPUPeriodMs int64  // CPU/DRAM poll period; 0 = infer it per series
	// LiveUntilMs, when set, extends open sessions (a recorder still
	// running) to this time instead of their last commit.
	LiveUntilMs int64
	// Window names a mark: the report has one set of rows per instance of
	// it (clipped to the filter's window, if any) and one for their sum.
	Window string
}

// Row is one group in one bucket.
type Row struct {
	FromMs, ToMs int64
	Instance     string // with a Window: "epoch #3", or "sum"
	Group        string // "n1:4938 gpu:0", "n1:4938", "gpu" or "total"
	Result              // summed over the group's series
	Series       int    // series in the group; PeakMW is the largest single-device value
	// Hardware counters, for the series whose counter was read on both
	// sides of the window: the counter delta and, for comparison, the
	// integral over exactly the counter readings' interval.
	CounterUJ         int64
	CounterIntegralUJ int64
	CounterSeries     int
}

// Report is the answer to an energy query.
type Report struct {
	FromMs, ToMs int64
	By           string
	Periods      map[string]int64 // CPU/DRAM series → the poll period used (ms)
	Inferred     map[string]bool  // whether that period was inferred from the data
	Rows         []Row            // per bucket: the groups, then a total row (ByDevice, ByEndpoint, ByKind)
	Window       string           // the mark the buckets are instances of, if any
	Warnings     []string         // integral and counter disagree, ...
}

// CounterTolerance is the relative disagreement between integrated energy
// and a hardware counter delta above which a report warns.
const CounterTolerance = 0.02

// Energy integrates every series that passes opt.Filter over the window
// (or each bucket of it) by the integration rules (see Integrator).
func Energy(ctx context.Context, db *store.DB, opt Options) (rep *Report, err error) {
	if opt.By == "" {
		opt.By = ByDevice
	}
	if !slices.Contains([]string{ByDevice, ByEndpoint, ByKind, ByTotal}, opt.By) {
		return nil, fmt.Errorf("group by %q: want device, endpoint, kind or total", opt.By)
	}
	if opt.EveryMs < 0 || opt.CPUPeriodMs < 0 {
		return nil, errors.New("bucket width and CPU period must be positive")
	}
	plan, err := NewPlan(ctx, db, opt)
	if err != nil {
		return nil, err
	}
	series, specs := plan.Series, plan.Specs
	rep = &Report{By: opt.By, FromMs: plan.FromMs, ToMs: plan.ToMs, Periods: plan.Periods, Inferred: plan.Inferred}

	windows, labels, err := reportWindows(ctx, db, opt, rep)
	if err != nil {
		return nil, err
	}
	sums := map[string]*Row{}
	var sumOrder []string
	for w, bucket := range windows {
		groups := map[string]*Row{}
		var order []string
		total := &Row{FromMs: bucket.From, ToMs: bucket.To, Instance: labels[w], Group: "total"}
		for i, s := range series {
			res, err := integrateSeriesFast(ctx, db, s.SeriesKey, specs[i], bucket)
			if err != nil {
				return nil, err
			}
			cnt, err := counterCheck(ctx, db, s.SeriesKey, specs[i], bucket)
			if err != nil {
				return nil, err
			}
			if cnt.ok && cnt.disagrees() {
				rep.Warnings = append(rep.Warnings, fmt.Sprintf("%s: integral %.3f J vs hardware counter %.3f J over %s → %s (%+.2f%%)",
					strings.TrimSpace(labels[w]+" "+seriesName(s.SeriesKey)), float64(cnt.integralUJ)/1e6, float64(cnt.counterUJ)/1e6,
					FormatTime(cnt.from), FormatTime(cnt.to), cnt.diffPct()))
			}
			key := groupKey(s.SeriesKey, opt.By)
			g := groups[key]
			if g == nil {
				g = &Row{FromMs: bucket.From, ToMs: bucket.To, Instance: labels[w], Group: key}
				groups[key] = g
				order = append(order, key)
			}
			g.add(res, cnt)
			if opt.By != ByTotal {
				total.add(res, cnt)
			}
		}
		if opt.By != ByTotal {
			groups["total"], order = total, append(order, "total")
		}
		for _, key := range order {
			rep.Rows = append(rep.Rows, *groups[key])
			if opt.Window == "" {
				continue
			}
			sum := sums[key]
			if sum == nil {
				sum = &Row{FromMs: bucket.From, Instance: "sum", Group: key}
				sums[key], sumOrder = sum, append(sumOrder, key)
			}
			sum.merge(groups[key])
			sum.ToMs = max(sum.ToMs, bucket.To)
		}
	}
	for _, key := range sumOrder {
		rep.Rows = append(rep.Rows, *sums[key])
	}
	return rep, nil
}

// add sums one series' result into a group row. Window, valued and live
// time add up across series, so a group's coverage is the fraction of
// device-time observed.
func (r *Row) add(res Result, cnt counterResult) {
	if cnt.ok {
		r.CounterUJ += cnt.counterUJ
		r.CounterIntegralUJ += cnt.integralUJ
		r.CounterSeries++
	}
	r.EnergyUJ += res.EnergyUJ
	r.TrapezoidUJ += res.TrapezoidUJ
	r.WindowMs += res.WindowMs
	r.ValuedMs += res.ValuedMs
	r.LiveMs += res.LiveMs
	r.PeakMW = max(r.PeakMW, res.PeakMW)
	r.Samples += res.Samples
	r.Gaps += res.Gaps
	r.LongestGapMs = max(r.LongestGapMs, res.LongestGapMs)
	r.Series++
}

// merge adds another row of the same group (another window instance).
// Counter comparisons are left out: the counter readings that bracket two
// instances may be the same, so their deltas do not add up.
func (r *Row) merge(o *Row) {
	n := r.Series
	r.add(o.Result, counterResult{})
	r.Series = max(n, o.Series) // the same series, observed again
}

// CounterRatio is integrated energy / counter delta over the counter
// readings' intervals; NaN without counters.
func (r Row) CounterRatio() float64 {
	if r.CounterSeries == 0 || r.CounterUJ == 0 {
		return math.NaN()
	}
	return float64(r.CounterIntegralUJ) / float64(r.CounterUJ)
}

// reportWindows returns the windows to integrate and their labels: the
// instances of opt.Window (clipped to the filter's window when it has
// one), or the buckets of the report's window.
func reportWindows(ctx context.Context, db *store.DB, opt Options, rep *Report) ([]Interval, []string, error) {
	if opt.Window == "" {
		ws := buckets(rep.FromMs, rep.ToMs, opt.EveryMs)
		return ws, make([]string, len(ws)), nil
	}
	if opt.EveryMs != 0 {
		return nil, nil, errors.New("a window report has one row set per instance: drop the bucket width")
	}
	marks, err := db.Marks(ctx, opt.Window)
	if err != nil {
		return nil, nil, err
	}
	if len(marks) == 0 {
		all, err := db.Marks(ctx, "")
		if err != nil {
			return nil, nil, err
		}
		names := map[string]bool{}
		var have []string
		for _, m := range all {
			if !names[m.Name] {
				names[m.Name] = true
				have = append(have, m.Name)
			}
		}
		if len(have) == 0 {
			return nil, nil, fmt.Errorf("no window named %q: %s has no marks", opt.Window, db.Path())
		}
		return nil, nil, fmt.Errorf("no window named %q (marks: %s)", opt.Window, strings.Join(have, ", "))
	}
	rep.Window = opt.Window
	clipTo := Interval{math.MinInt64, math.MaxInt64}
	if f := opt.Filter; f.FromMs != 0 || f.ToMs != 0 || f.FromStart || f.ToEnd {
		clipTo = Interval{rep.FromMs, rep.ToMs}
	}
	var ws []Interval
	var labels []string
	for i, m := range marks {
		end := m.EndMs
		if m.Open { // still running: up to the end of the data
			end = max(rep.ToMs, opt.LiveUntilMs)
		}
		w := clip(Interval{m.BeginMs, end}, clipTo)
		if w.Len() == 0 {
			continue
		}
		ws = append(ws, w)
		labels = append(labels, fmt.Sprintf("%s #%d", m.Name, i+1))
	}
	if len(ws) == 0 {
		return nil, nil, fmt.Errorf("no instance of window %q overlaps %s → %s", opt.Window, FormatTime(rep.FromMs), FormatTime(rep.ToMs))
	}
	rep.FromMs, rep.ToMs = ws[0].From, ws[0].To
	for _, w := range ws {
		rep.FromMs, rep.ToMs = min(rep.FromMs, w.From), max(rep.ToMs, w.To)
	}
	return ws, labels, nil
}

// counterResult compares one series' hardware counter with the integral.
type counterResult struct {
	ok                    bool
	from, to              int64 // the counter readings' times
	counterUJ, integralUJ int64
}

func (c counterResult) diffPct() float64 {
	return (float64(c.integralUJ) - float64(c.counterUJ)) / float64(c.counterUJ) * 100
}

func (c counterResult) disagrees() bool {
	return c.counterUJ > 0 && math.Abs(c.diffPct()) > CounterTolerance*100
}

// Limits on what a counter comparison may rest on.
const (
	// counterMaxRTTUs: a counter reading is stamped at the midpoint of its
	// request; a slow round trip makes that stamp, and so the delta's
	// interval, uncertain.
	counterMaxRTTUs = 50_000
	// counterMinCoverage: the integral can only match the counter where
	// the streams were recorded; a bracket with gaps compares coverage,
	// not accuracy.
	counterMinCoverage = 0.999
)

// counterCheck looks for counter readings on both sides of window and, if
// there are, integrates the series over exactly their interval. There is
// no comparison when the counter went down (driver reload, daemon
// restart), when a reading's round trip was slow, or when the recording
// does not cover the readings' whole interval.
func counterCheck(ctx context.Context, db *store.DB, k store.SeriesKey, spec Series, window Interval) (counterResult, error) {
	br, err := db.CounterBracket(ctx, k, window.From, window.To)
	if err != nil || !br.Complete() || br.End.EnergyUJ < br.Start.EnergyUJ || br.End.TakenMs <= br.Start.TakenMs ||
		br.Start.RTTUs > counterMaxRTTUs || br.End.RTTUs > counterMaxRTTUs {
		return counterResult{}, err
	}
	span := Interval{br.Start.TakenMs, br.End.TakenMs}
	res, err := integrateSeriesFast(ctx, db, k, spec, span)
	if err != nil || res.Coverage() < counterMinCoverage {
		return counterResult{}, err
	}
	return counterResult{ok: true, from: span.From, to: span.To, counterUJ: br.End.EnergyUJ - br.Start.EnergyUJ, integralUJ: res.EnergyUJ}, nil
}

// AvgW is the group's average power while observed: energy divided by
// observed device-time per device; NaN when nothing was observed.
func (r Row) AvgW() float64 {
	if r.ValuedMs == 0 {
		return math.NaN()
	}
	return float64(r.EnergyUJ) / float64(r.ValuedMs) / 1000 * float64(r.Series)
}

// integrateSeries is the reference for integrateSeriesFast, which the
// reports use: the same Result from every reading, decoded one by one.
// It runs one Integrator over window: the carry-in reading
// before the window, then every reading that can cover part of it.
func integrateSeries(ctx context.Context, db *store.DB, k store.SeriesKey, spec Series, window Interval) (Result, error) {
	it := NewIntegrator(spec, window)
	carry, ok, err := db.Before(ctx, k, window.From)
	if err != nil {
		return Result{}, err
	}
	if ok {
		it.Add(Point{carry.TimeMs, carry.MilliWatts})
	}
	// A backward value stamped up to one period after the window still
	// covers its end.
	err = db.Scan(ctx, k, window.From, window.To+spec.PeriodMs+1, func(r *store.Reading) error {
		it.Add(Point{r.TimeMs, r.MilliWatts})
		return nil
	})
	if err != nil {
		return Result{}, err
	}
	return it.Result(), nil
}

// inferPeriod finds a CPU series' poll period: the most common positive
// spacing of daemon timestamps among its first readings from near the
// window (zeusd sends CPU values on change, which real RAPL readings
// almost always are, so most spacings are one period). 0 means too few
// readings to tell.
func inferPeriod(ctx context.Context, db *store.DB, k store.SeriesKey, from int64) (int64, error) {
	const want = 512
	counts := map[int64]int{}
	prev, n := int64(math.MinInt64), 0
	errEnough := errors.New("enough")
	scan := func(start int64) error {
		err := db.Scan(ctx, k, start, math.MaxInt64, func(r *store.Reading) error {
			if r.Seed {
				return nil
			}
			if d := r.DaemonMs - prev; prev != math.MinInt64 && d > 0 && d <= 10_000 {
				counts[d]++
				n++
			}
			prev = r.DaemonMs
			if n >= want {
				return errEnough
			}
			return nil
		})
		if errors.Is(err, errEnough) {
			return nil
		}
		return err
	}
	if err := scan(from - 60_000); err != nil {
		return 0, err
	}
	if n < 8 { // too little near the window: use the whole series
		clear(counts)
		prev, n = math.MinInt64, 0
		if err := scan(math.MinInt64); err != nil {
			return 0, err
		}
	}
	if n < 3 {
		return 0, nil
	}
	best, bestN := int64(0), 0
	for d, c := range counts {
		if c > bestN || (c == bestN && d < best) {
			best, bestN = d, c
		}
	}
	return best, nil
}

// recordingSpan is the span of the stream sessions of the series (outside
// them nothing holds), or of their readings when no session is stored.
func recordingSpan(series []store.SeriesStats, sessions map[string]map[store.Stream][]Interval) (from, to int64) {
	from, to = math.MaxInt64, math.MinInt64
	for _, s := range series {
		for _, ses := range sessions[s.Endpoint][store.StreamOf(s.Kind)] {
			from, to = min(from, ses.From), max(to, ses.To)
		}
	}
	if from < to {
		return from, to
	}
	for _, s := range series {
		from, to = min(from, s.FirstMs), max(to, s.LastMs+1)
	}
	return from, to
}

// buckets splits [from, to) at multiples of every (aligned to the Unix
// epoch, so 1m buckets start on the minute).
func buckets(from, to, every int64) []Interval {
	if every <= 0 {
		return []Interval{{from, to}}
	}
	var out []Interval
	start := from
	for start < to {
		next := (start/every + 1) * every
		if start < 0 && start%every != 0 {
			next = (start / every) * every
		}
		next = min(next, to)
		out = append(out, Interval{start, next})
		start = next
	}
	return out
}

func seriesName(k store.SeriesKey) string {
	return fmt.Sprintf("%s %s:%d", k.Endpoint, k.Kind, k.Device)
}

func groupKey(k store.SeriesKey, by string) string {
	switch by {
	case ByEndpoint:
		return k.Endpoint
	case ByKind:
		return k.Kind.String()
	case ByTotal:
		return "total"
	}
	return seriesName(k)
}

// UseTrapezoid replaces each row's energy with its trapezoid integral, for
// --method trapezoid.
func (rep *Report) UseTrapezoid() {
	for i := range rep.Rows {
		rep.Rows[i].EnergyUJ = int64(math.Round(rep.Rows[i].TrapezoidUJ))
	}
}

// Span returns the first and last millisecond (exclusive) of the
// recording: its readings and stream sessions.
func Span(ctx context.Context, db *store.DB) (from, to int64, err error) {
	series, err := db.Series(ctx, "", false)
	if err != nil {
		return 0, 0, err
	}
	if len(series) == 0 {
		return 0, 0, fmt.Errorf("%s holds no readings", db.Path())
	}
	sessions := map[string]map[store.Stream][]Interval{}
	for _, s := range series {
		if sessions[s.Endpoint] != nil {
			continue
		}
		all, err := db.Sessions(ctx, s.Endpoint)
		if err != nil {
			return 0, 0, err
		}
		sessions[s.Endpoint] = map[store.Stream][]Interval{}
		for _, ses := range all {
			sessions[s.Endpoint][ses.Stream] = append(sessions[s.Endpoint][ses.Stream], Interval{ses.Start, ses.End})
		}
	}
	from, to = recordingSpan(series, sessions)
	return from, to, nil
}
