package export

import (
	"context"

	"github.com/wattrec/wattrec/query"
	"github.com/wattrec/wattrec/store"
)

// GridBin is the energy of one series over one bin of a grid.
type GridBin struct {
	Series       store.SeriesKey
	FromMs, ToMs int64 // the bin [FromMs, ToMs)
	query.Result       // the exact integral over the bin by the query rules

	endpoint, kind string
}

// Joules is the bin's energy in joules.
func (b *GridBin) Joules() float64 { return b.Result.Joules() }

// AvgW is the average power while observed, and whether anything was.
func (b *GridBin) AvgW() (float64, bool) {
	if b.ValuedMs == 0 {
		return 0, false
	}
	return float64(b.EnergyUJ) / float64(b.ValuedMs) / 1000, true
}

// Grid integrates every series that passes f over consecutive bins of
// binMs and calls fn for each bin, ordered by endpoint, kind, device and
// time. The window is f's time range, or the recording's span when f has
// none, exactly as query.Energy chooses it; bins start at multiples of
// binMs since the Unix epoch, and the first and last are clipped to the
// window. Each bin's Result is what query.Energy reports for that series
// and a bucket of binMs (query.IntegrateBins: GPU values hold, CPU/DRAM
// values cover the poll period before them, never across a gap), so the
// bins of a window sum to the window's joules. Each series is read in one
// scan. The GridBin passed to fn is only valid during the call. It
// returns the number of bins.
func Grid(ctx context.Context, db *store.DB, f query.Filter, binMs int64, opt Options, fn func(*GridBin) error) (int64, error) {
	plan, err := gridPlan(ctx, db, f, binMs, opt)
	if err != nil {
		return 0, err
	}
	return plan.run(ctx, db, opt.Progress, fn)
}

// plan is a resolved grid export.
type plan struct {
	*query.Plan
	filter query.Filter
	binMs  int64
}

func gridPlan(ctx context.Context, db *store.DB, f query.Filter, binMs int64, opt Options) (*plan, error) {
	if binMs <= 0 {
		return nil, query.Invalid("grid bin %d ms: must be at least 1 ms", binMs)
	}
	p, err := query.NewPlan(ctx, db, f, query.Periods{CPUMs: opt.CPUPeriodMs})
	if err != nil {
		return nil, err
	}
	if len(p.Series) == 0 {
		return nil, query.Invalid("no series in %s match the filters", db.Path())
	}
	return &plan{Plan: p, filter: f, binMs: binMs}, nil
}

func (p *plan) run(ctx context.Context, db *store.DB, progressFn ProgressFunc, fn func(*GridBin) error) (int64, error) {
	prog := newProgress(progressFn, query.BinCount(p.Window, p.binMs)*int64(len(p.Series)))
	var b GridBin
	for i, s := range p.Series {
		b = GridBin{Series: s.SeriesKey, endpoint: s.Endpoint, kind: s.Kind.String()}
		err := query.IntegrateBins(ctx, db, s.SeriesKey, p.Specs[i], p.Window, p.binMs, func(bin query.Interval, res query.Result) error {
			b.FromMs, b.ToMs, b.Result = bin.From, bin.To, res
			prog.add(1)
			return fn(&b)
		})
		if err != nil {
			return prog.done, err
		}
	}
	if err := ctx.Err(); err != nil {
		return prog.done, err
	}
	prog.finish()
	return prog.done, nil
}
