package query

import (
	"context"
	"errors"
	"fmt"
	"math"

	"github.com/wattrec/wattrec/store"
)

// Plan is an energy query resolved against a file, before anything is
// integrated: the window, the series that pass the filter and the rule
// each one is integrated by. Energy makes the same decisions; a Plan lets
// a caller integrate the series itself, e.g. over a fine grid of bins
// with IntegrateBins.
type Plan struct {
	FromMs, ToMs int64               // the window: the filter's, or the recording's span
	Series       []store.SeriesStats // ordered by endpoint, kind, device
	Specs        []Series            // Specs[i] is how Series[i] is integrated
	Periods      map[string]int64    // CPU/DRAM series → the poll period used (ms)
	Inferred     map[string]bool     // whether that period was inferred from the data
}

// NewPlan resolves opt against db the way Energy does: the series that
// pass opt.Filter, their stream sessions (open ones extended to
// opt.LiveUntilMs), the window (the recording's span when the filter has
// none), and per series the rule (GPU hold, CPU/DRAM backward with the
// poll period inferred from its readings unless opt.CPUPeriodMs is set).
// opt.By and opt.EveryMs are ignored.
func NewPlan(ctx context.Context, db *store.DB, opt Options) (*Plan, error) {
	if opt.CPUPeriodMs < 0 {
		return nil, errors.New("CPU period must be positive")
	}
	f, err := opt.Filter.Resolve(ctx, db)
	if err != nil {
		return nil, err
	}
	series, err := f.Series(ctx, db)
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

	p := &Plan{FromMs: f.FromMs, ToMs: f.ToMs, Series: series, Periods: map[string]int64{}, Inferred: map[string]bool{}}
	if p.FromMs == 0 && p.ToMs == 0 {
		p.FromMs, p.ToMs = recordingSpan(series, sessions)
	}
	if p.ToMs <= p.FromMs {
		return nil, fmt.Errorf("empty window %s → %s", FormatTime(p.FromMs), FormatTime(p.ToMs))
	}

	// Rules per series.
	p.Specs = make([]Series, len(series))
	for i, s := range series {
		p.Specs[i] = Series{Rule: RuleHold, Sessions: sessions[s.Endpoint][store.StreamOf(s.Kind)]}
		if s.Kind == store.KindGPU {
			continue
		}
		p.Specs[i].Rule = RuleBackward
		period, inferred := opt.CPUPeriodMs, false
		if period == 0 {
			if period, err = inferPeriod(ctx, db, s.SeriesKey, p.FromMs); err != nil {
				return nil, err
			}
			inferred = period != 0
			if !inferred {
				period = DefaultCPUPeriodMs
			}
		}
		p.Specs[i].PeriodMs = period
		p.Periods[seriesName(s.SeriesKey)] = period
		p.Inferred[seriesName(s.SeriesKey)] = inferred
	}
	return p, nil
}

// Rules describes the plan's integration rules, in the words of
// Report.Rules.
func (p *Plan) Rules() string {
	return (&Report{Periods: p.Periods, Inferred: p.Inferred}).Rules()
}

// IntegrateBins integrates series k by spec over the consecutive bins of
// [from, to), split at multiples of every since the Unix epoch (the
// buckets of Energy's EveryMs; every <= 0 means one bin), in one scan of
// the series. It calls fn once per bin, in time order, with that bin's
// Result, which equals what Energy reports for that series and bucket:
// each bin gets the same carry-in and the same readings that
// integrateSeries would feed it. The bins of a window therefore sum to
// the window's integral. It stops at the first error from fn and returns
// it.
func IntegrateBins(ctx context.Context, db *store.DB, k store.SeriesKey, spec Series, from, to, every int64, fn func(bin Interval, res Result) error) error {
	if to <= from {
		return nil
	}
	bins := binner{at: from, to: to, every: every}
	// Readings stamped up to one period after a bin can still cover its
	// end (RuleBackward); hold has a zero period.
	reach := spec.PeriodMs + 1

	// active holds the integrators of the bins that have started and can
	// still receive readings, oldest first. A bin is started with the last
	// reading before it (its carry-in) when the scan first reaches its
	// start, and finished once the scan is past its end + reach.
	type open struct {
		bin Interval
		it  *Integrator
	}
	var (
		active []open
		last   Point
		have   bool
	)
	finish := func(o open) error { return fn(o.bin, o.it.Result()) }
	start := func(bin Interval) *Integrator {
		it := NewIntegrator(spec, bin)
		if have {
			it.Add(last)
		}
		return it
	}
	// advance finishes and starts bins for a reading at t (math.MaxInt64:
	// the end of the scan), leaving in active exactly the bins t is fed to.
	advance := func(t int64) error {
		n := 0
		for n < len(active) && t >= sat(active[n].bin.To, reach) {
			if err := finish(active[n]); err != nil {
				return err
			}
			n++
		}
		active = append(active[:0], active[n:]...)
		for !bins.done() && bins.at <= t {
			bin := bins.next()
			it := start(bin)
			if t >= sat(bin.To, reach) { // no reading reaches it: it holds only the carry-in
				if err := fn(bin, it.Result()); err != nil {
					return err
				}
				if err := ctx.Err(); err != nil {
					return err
				}
				continue
			}
			active = append(active, open{bin, it})
		}
		return nil
	}

	carry, ok, err := db.Before(ctx, k, from)
	if err != nil {
		return err
	}
	if ok {
		last, have = Point{carry.TimeMs, carry.MilliWatts}, true
	}
	err = db.Scan(ctx, k, from, sat(to, reach), func(r *store.Reading) error {
		p := Point{r.TimeMs, r.MilliWatts}
		if err := advance(p.T); err != nil {
			return err
		}
		for _, o := range active {
			o.it.Add(p)
		}
		last, have = p, true
		return nil
	})
	if err != nil {
		return err
	}
	return advance(math.MaxInt64)
}

// sat is a + b, saturated at math.MaxInt64 (b >= 0).
func sat(a, b int64) int64 {
	if a > math.MaxInt64-b {
		return math.MaxInt64
	}
	return a + b
}

// binner yields the buckets of [at, to) one at a time, the same intervals
// buckets returns, without holding them all.
type binner struct {
	at, to, every int64
}

func (b *binner) done() bool { return b.at >= b.to }

func (b *binner) next() Interval {
	start := b.at
	next := b.to
	if b.every > 0 {
		next = (start/b.every + 1) * b.every
		if start < 0 && start%b.every != 0 {
			next = (start / b.every) * b.every
		}
		if next < start { // overflow near math.MaxInt64
			next = b.to
		}
		next = min(next, b.to)
	}
	b.at = next
	return Interval{start, next}
}
