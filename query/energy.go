package query

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"

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
}

// Row is one group in one bucket.
type Row struct {
	FromMs, ToMs int64
	Group        string // "n1:4938 gpu:0", "n1:4938", "gpu" or "total"
	Result              // summed over the group's series
	Series       int    // series in the group; PeakMW is the largest single-device value
}

// Report is the answer to an energy query.
type Report struct {
	FromMs, ToMs int64
	By           string
	Periods      map[string]int64 // CPU/DRAM series → the poll period used (ms)
	Inferred     map[string]bool  // whether that period was inferred from the data
	Rows         []Row            // per bucket: the groups, then a total row (ByDevice, ByEndpoint, ByKind)
}

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
	if opt.Filter, err = opt.Filter.Resolve(ctx, db); err != nil {
		return nil, err
	}
	series, err := opt.Filter.Series(ctx, db)
	if err != nil {
		return nil, err
	}
	if len(series) == 0 {
		return nil, fmt.Errorf("no series in %s match the filters", db.Path())
	}

	// Sessions per endpoint and stream.
	sessions := map[string]map[store.Stream][]Interval{}
	for _, s := range series {
		if sessions[s.Endpoint] != nil {
			continue
		}
		all, err := db.Sessions(ctx, s.Endpoint)
		if err != nil {
			return nil, err
		}
		byStream := map[store.Stream][]Interval{}
		for _, ses := range all {
			end := ses.End
			if ses.Open && opt.LiveUntilMs > end {
				end = opt.LiveUntilMs
			}
			byStream[ses.Stream] = append(byStream[ses.Stream], Interval{ses.Start, end})
		}
		sessions[s.Endpoint] = byStream
	}

	rep = &Report{By: opt.By, Periods: map[string]int64{}, Inferred: map[string]bool{}}
	rep.FromMs, rep.ToMs = opt.Filter.FromMs, opt.Filter.ToMs
	if rep.FromMs == 0 && rep.ToMs == 0 {
		rep.FromMs, rep.ToMs = recordingSpan(series, sessions)
	}
	if rep.ToMs <= rep.FromMs {
		return nil, fmt.Errorf("empty window %s → %s", FormatTime(rep.FromMs), FormatTime(rep.ToMs))
	}

	// Rules per series.
	specs := make([]Series, len(series))
	for i, s := range series {
		specs[i] = Series{Rule: RuleHold, Sessions: sessions[s.Endpoint][store.StreamOf(s.Kind)]}
		if s.Kind == store.KindGPU {
			continue
		}
		specs[i].Rule = RuleBackward
		period, inferred := opt.CPUPeriodMs, false
		if period == 0 {
			if period, err = inferPeriod(ctx, db, s.SeriesKey, rep.FromMs); err != nil {
				return nil, err
			}
			inferred = period != 0
			if !inferred {
				period = DefaultCPUPeriodMs
			}
		}
		specs[i].PeriodMs = period
		rep.Periods[seriesName(s.SeriesKey)] = period
		rep.Inferred[seriesName(s.SeriesKey)] = inferred
	}

	for _, bucket := range buckets(rep.FromMs, rep.ToMs, opt.EveryMs) {
		groups := map[string]*Row{}
		var order []string
		total := &Row{FromMs: bucket.From, ToMs: bucket.To, Group: "total"}
		for i, s := range series {
			res, err := integrateSeries(ctx, db, s.SeriesKey, specs[i], bucket)
			if err != nil {
				return nil, err
			}
			key := groupKey(s.SeriesKey, opt.By)
			g := groups[key]
			if g == nil {
				g = &Row{FromMs: bucket.From, ToMs: bucket.To, Group: key}
				groups[key] = g
				order = append(order, key)
			}
			g.add(res)
			if opt.By != ByTotal {
				total.add(res)
			}
		}
		for _, key := range order {
			rep.Rows = append(rep.Rows, *groups[key])
		}
		if opt.By != ByTotal {
			rep.Rows = append(rep.Rows, *total)
		}
	}
	return rep, nil
}

// add sums one series' result into a group row. Window, valued and live
// time add up across series, so a group's coverage is the fraction of
// device-time observed.
func (r *Row) add(res Result) {
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

// AvgW is the group's average power while observed: energy divided by
// observed device-time per device; NaN when nothing was observed.
func (r Row) AvgW() float64 {
	if r.ValuedMs == 0 {
		return math.NaN()
	}
	return float64(r.EnergyUJ) / float64(r.ValuedMs) / 1000 * float64(r.Series)
}

// integrateSeries runs one Integrator over window: the carry-in reading
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
