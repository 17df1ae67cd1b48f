package query

import (
	"context"

	"github.com/wattrec/wattrec/store"
)

// This file is the chunk-aware integration path: integrateSeriesFast
// gives exactly integrateSeries' Result while decoding only the chunks
// at the edges of the window and of the stream sessions.

// IntegrateSeries integrates series k over window by spec (see Plan and
// Integrator): the carry-in reading before the window, then every
// reading that can cover part of it, reading only the chunks it needs.
func IntegrateSeries(ctx context.Context, db *store.DB, k store.SeriesKey, spec Series, window Interval) (Result, error) {
	return integrateSeriesFast(ctx, db, k, spec, window)
}

// integrateSeriesFast runs one Integrator over window, like
// integrateSeries, but over the store's chunks (store.DB.ScanChunks): a
// chunk that lies inside the window and inside one live session is
// folded in from its stored sums (Integrator.addRun) without decoding
// it; any other chunk is decoded and fed reading by reading. The Result
// is the same as integrateSeries' (TrapezoidUJ up to the rounding of a
// float64 sum taken in another order).
func integrateSeriesFast(ctx context.Context, db *store.DB, k store.SeriesKey, spec Series, window Interval) (Result, error) {
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
	end := window.To + spec.PeriodMs + 1
	err = db.ScanChunks(ctx, k, window.From, end, func(c *store.Chunk) error {
		if it.runFits(c) {
			it.Add(Point{c.FirstMs, c.FirstMW})
			it.addRun(c)
			return nil
		}
		return c.Readings(func(r *store.Reading) error {
			if window.From <= r.TimeMs && r.TimeMs < end {
				it.Add(Point{r.TimeMs, r.MilliWatts})
			}
			return nil
		})
	})
	if err != nil {
		return Result{}, err
	}
	return it.Result(), nil
}

// runFits reports whether addRun can stand in for adding c's readings
// after its first: every reading lies in the window and in one session,
// and so does every stretch between two of them (in effective time, as
// the rule shifts it), so that no clipping happens inside the chunk.
func (it *Integrator) runFits(c *store.Chunk) bool {
	if c.Len < 2 || !c.HasSums || c.FirstMs < it.window.From || c.LastMs >= it.window.To {
		return false
	}
	s := it.sessionOf(c.FirstMs)
	if s < 0 {
		return false
	}
	ses := it.s.Sessions[s]
	first, last := c.FirstMs-it.shift, c.LastMs-it.shift
	return c.LastMs < ses.To && // every reading belongs to session s
		first >= ses.From && last <= ses.To &&
		first >= it.window.From && last <= it.window.To
}

// addRun adds the readings of c after its first, which Add has just
// taken, from c's sums: what Add would do for each of them, when
// runFits(c) holds.
func (it *Integrator) addRun(c *store.Chunk) {
	it.res.EnergyUJ += c.HoldUJ
	it.res.TrapezoidUJ += float64(c.Trapezoid2UJ) / 2
	it.res.PeakMW = max(it.res.PeakMW, c.PeakMW)
	it.res.Samples += c.Len - 1
	if span := c.LastMs - c.FirstMs; span > 0 {
		it.res.ValuedMs += span
		seg := Interval{c.FirstMs - it.shift, c.LastMs - it.shift}
		if n := len(it.valued); n > 0 && it.valued[n-1].To == seg.From {
			it.valued[n-1].To = seg.To
		} else {
			it.valued = append(it.valued, seg)
		}
	}
	it.lastSeen = c.LastMs
	it.cur = Point{T: c.LastMs - it.shift, MW: c.LastMW}
}
