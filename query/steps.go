package query

import (
	"context"

	"github.com/wattrec/wattrec/store"
)

// Steps calls fn with each stretch of window over which series k has
// one known value by spec's rule, and that value in mW, in time order:
// the steps whose areas Energy adds up (the steps of a window sum to
// its EnergyUJ). Where the series has no value (a gap between
// sessions, the start of a session before its first reading) there is
// no step; two consecutive steps may carry the same value. Unlike
// Energy it decodes every chunk that can cover part of window (a chunk
// inside the window and one session is one step per reading, from one
// reading to the next, without the integrator's clipping), and fn runs
// inside a read transaction of the file: keep it short.
func Steps(ctx context.Context, db *store.DB, k store.SeriesKey, spec Spec, window Interval, fn func(step Interval, mw int64)) error {
	it := NewIntegrator(spec, window)
	it.step = fn
	carry, ok, err := db.Before(ctx, k, window.From)
	if err != nil {
		return err
	}
	if ok {
		it.Add(Point{carry.TimeMs, carry.MilliWatts})
	}
	end := sat(window.To, spec.reach())
	shift := spec.Rule.Shift()
	err = db.ScanChunks(ctx, k, window.From, end, func(c *store.Chunk) error {
		if it.runFits(c) {
			it.Add(Point{c.FirstMs, c.FirstMW})
			prev, first := Point{c.FirstMs, c.FirstMW}, true
			err := c.Readings(func(r *store.Reading) error {
				if first { // the point just added
					first = false
					return nil
				}
				if r.TimeMs > prev.T {
					fn(Interval{prev.T - shift, r.TimeMs - shift}, prev.MW)
				}
				prev = Point{r.TimeMs, r.MilliWatts}
				return nil
			})
			it.addRun(c) // the integrator takes up from the chunk's last reading
			return err
		}
		return c.Readings(func(r *store.Reading) error {
			if window.From <= r.TimeMs && r.TimeMs < end {
				it.Add(Point{r.TimeMs, r.MilliWatts})
			}
			return nil
		})
	})
	if err != nil {
		return err
	}
	it.Result() // closes the last value at the end of its session
	return nil
}

// Group is the name of the row that series k falls in when a report
// groups by by (ByDevice, ByEndpoint, ByKind or ByTotal): Row.Group.
func Group(k store.SeriesKey, by string) string {
	name, _ := groupKey(k, by)
	return name
}
