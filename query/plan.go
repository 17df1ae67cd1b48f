package query

import (
	"context"
	"math"
	"slices"
	"strings"

	"github.com/wattrec/wattrec/store"
)

// Plan is a read resolved against a file, before anything is integrated:
// its time range, the series that pass the filter, and how each one is
// integrated. Energy, the exports and the grid all start from one.
type Plan struct {
	// Range is the filter's time range resolved: the readings a raw
	// export reads. All when the filter left both bounds out.
	Range Interval
	// Window is what is integrated: Range, or the span of the selected
	// series' stream sessions (of their readings, without sessions) when
	// Range is All. Empty when no series passed the filter.
	Window Interval
	Series []store.SeriesStats // ordered by endpoint, kind, device
	Specs  []Spec              // Specs[i] is how Series[i] is integrated
}

// NewPlan resolves f against db: the series that pass it, their stream
// sessions, the time range and window, and per series the rule (GPU
// hold; CPU/DRAM backward) with its poll period (the one periods gives
// for its kind or, when that is zero, the one inferred from the series'
// readings). It reads the file's
// series list and sessions once. An endpoint filter naming an endpoint
// the file lacks is an error that lists the ones it has; a filter that
// matches no series is not.
func NewPlan(ctx context.Context, db *store.DB, f Filter, periods Periods) (*Plan, error) {
	if periods.CPUMs < 0 {
		return nil, Invalid("CPU period %d ms: must be positive", periods.CPUMs)
	}
	if periods.GPUMs < 0 {
		return nil, Invalid("GPU period %d ms: must be positive", periods.GPUMs)
	}
	eps, err := db.Endpoints(ctx)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range eps {
		names = append(names, e.Endpoint)
	}
	var wanted []string
	for _, want := range f.Endpoints {
		if alias, ok := f.EndpointAliases[want]; ok && !slices.Contains(names, want) && slices.Contains(names, alias) {
			want = alias
		}
		if !slices.Contains(names, want) {
			return nil, Invalid("endpoint %q is not in %s (it has: %s)", want, db.Path(), strings.Join(names, ", "))
		}
		wanted = append(wanted, want)
	}
	f.Endpoints, f.EndpointAliases = wanted, nil
	all, err := db.Series(ctx, "", false)
	if err != nil {
		return nil, err
	}

	// Sessions per endpoint and stream, read once.
	sessions := map[string]map[store.Stream][]Interval{}
	for _, s := range all {
		if sessions[s.Endpoint] != nil {
			continue
		}
		list, err := db.Sessions(ctx, s.Endpoint)
		if err != nil {
			return nil, err
		}
		byStream := map[store.Stream][]Interval{}
		for _, ses := range list {
			byStream[ses.Stream] = append(byStream[ses.Stream], Interval{ses.Start, ses.End})
		}
		sessions[s.Endpoint] = byStream
	}

	p := &Plan{}
	if f.Range.needsSpan() && len(all) == 0 {
		return nil, Invalid("%s holds no readings", db.Path())
	}
	if p.Range, err = f.Range.Resolve(recordingSpan(all, sessions)); err != nil {
		return nil, err
	}
	for _, s := range all {
		if f.Match(s.SeriesKey) {
			p.Series = append(p.Series, s)
		}
	}
	p.Window = p.Range
	if p.Range == All {
		p.Window = recordingSpan(p.Series, sessions)
	}

	timeErr := map[string]int64{}
	p.Specs = make([]Spec, len(p.Series))
	for i, s := range p.Series {
		rule, err := ruleFor(ctx, db, s.SeriesKey, periods, p.Window.From)
		if err != nil {
			return nil, err
		}
		dt, ok := timeErr[s.Endpoint]
		if !ok {
			if dt, err = timeErrMs(ctx, db, s.Endpoint); err != nil {
				return nil, err
			}
			timeErr[s.Endpoint] = dt
		}
		p.Specs[i] = Spec{Rule: rule, Sessions: sessions[s.Endpoint][store.StreamOf(s.Kind)], TimeErrMs: dt}
	}
	return p, nil
}

// timeErrMs bounds the error of endpoint's corrected times: the daemon's
// millisecond timestamps (1 ms), and half the longest round trip of the
// clock estimates the correction rests on.
func timeErrMs(ctx context.Context, db *store.DB, endpoint string) (int64, error) {
	clocks, err := db.ClockEstimates(ctx, endpoint)
	if err != nil {
		return 0, err
	}
	var rtt int64
	for _, c := range clocks {
		rtt = max(rtt, c.RTTUs)
	}
	return 1 + (rtt+1999)/2000, nil
}

// Rules is the rule of each series by name ("n1:4938 cpu:0"): the poll
// periods used.
func (p *Plan) Rules() map[string]Rule {
	out := map[string]Rule{}
	for i, s := range p.Series {
		out[seriesName(s.SeriesKey)] = p.Specs[i].Rule
	}
	return out
}

// RulesLine describes the plan's integration rules in one line, as the
// report header prints them.
func (p *Plan) RulesLine() string { return RulesSummary() + periodsLine(p.Rules()) }

// recordingSpan is the span of the stream sessions of the series
// (outside them nothing holds), or of their readings when no session is
// stored. Empty (From > To) without series.
func recordingSpan(series []store.SeriesStats, sessions map[string]map[store.Stream][]Interval) Interval {
	from, to := int64(math.MaxInt64), int64(math.MinInt64)
	for _, s := range series {
		for _, ses := range sessions[s.Endpoint][store.StreamOf(s.Kind)] {
			from, to = min(from, ses.From), max(to, ses.To)
		}
	}
	if from < to {
		return Interval{from, to}
	}
	for _, s := range series {
		from, to = min(from, s.FirstMs), max(to, s.LastMs+1)
	}
	return Interval{from, to}
}

func seriesName(k store.SeriesKey) string { return k.String() }
