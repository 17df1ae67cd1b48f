package query

import (
	"context"
	"math"

	"github.com/wattrec/wattrec/store"
)

// IntegrateBins integrates series k by spec over the consecutive bins of
// window, split at multiples of every since the Unix epoch (the buckets
// of Energy's EveryMs; every <= 0 means one bin), in one scan of the
// series. It calls fn once per bin, in time order, with that bin's
// Result, which equals what Energy reports for that series and bucket:
// each bin gets the same carry-in and the same readings as the window's
// integral. The bins of a window therefore sum to the window's integral
// (its energy; not its bound, whose edge terms belong to each bin's
// edges). It stops at the first error from fn and returns it.
func IntegrateBins(ctx context.Context, db *store.DB, k store.SeriesKey, spec Spec, window Interval, every int64, fn func(bin Interval, res Result) error) error {
	return integrateBins(ctx, db, k, spec, binner{at: window.From, to: window.To, every: every}, fn)
}

// integrateBins is IntegrateBins over the bins of bins. A chunk that lies
// inside one bin and one live session, and that no other bin still
// needs, is folded in from its stored sums without decoding it.
func integrateBins(ctx context.Context, db *store.DB, k store.SeriesKey, spec Spec, bins binner, fn func(bin Interval, res Result) error) error {
	from, to := bins.at, bins.to
	if to <= from {
		return nil
	}
	reach := spec.reach()
	end := sat(to, reach)

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
	// The integrators of finished bins, for the next ones: a report of
	// small buckets starts millions of them.
	var free []*Integrator
	finish := func(o open) error {
		free = append(free, o.it)
		return fn(o.bin, o.it.Result())
	}
	start := func(bin Interval) *Integrator {
		var it *Integrator
		if n := len(free); n > 0 {
			it, free = free[n-1], free[:n-1]
			it.reset(spec, bin)
		} else {
			it = NewIntegrator(spec, bin)
		}
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
				if err := finish(open{bin, it}); err != nil {
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
	add := func(p Point) error {
		if err := advance(p.T); err != nil {
			return err
		}
		for _, o := range active {
			o.it.Add(p)
		}
		last, have = p, true
		return nil
	}

	carry, ok, err := db.Before(ctx, k, from)
	if err != nil {
		return err
	}
	if ok {
		last, have = Point{carry.TimeMs, carry.MilliWatts}, true
	}
	err = db.ScanChunks(ctx, k, from, end, func(c *store.Chunk) error {
		if c.FirstMs >= from {
			if err := advance(c.FirstMs); err != nil {
				return err
			}
			if len(active) == 1 && (bins.done() || bins.at > c.LastMs) && active[0].it.runFits(c) {
				active[0].it.Add(Point{c.FirstMs, c.FirstMW})
				active[0].it.addRun(c)
				last, have = Point{c.LastMs, c.LastMW}, true
				return nil
			}
		}
		return c.Readings(func(r *store.Reading) error {
			if from <= r.TimeMs && r.TimeMs < end {
				return add(Point{r.TimeMs, r.MilliWatts})
			}
			return nil
		})
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

// binner yields the bins of [at, to) one at a time without holding them
// all: split at the multiples of every (every > 0), or at cuts (sorted
// times inside (at, to)), or not at all.
type binner struct {
	at, to, every int64
	cuts          []int64
}

func (b *binner) done() bool { return b.at >= b.to }

func (b *binner) next() Interval {
	start := b.at
	next := b.to
	for len(b.cuts) > 0 && b.cuts[0] <= start {
		b.cuts = b.cuts[1:]
	}
	if len(b.cuts) > 0 {
		next = min(b.cuts[0], b.to)
	}
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

// BinCount is the number of bins IntegrateBins splits window into: one
// more than the multiples of every strictly inside it (1 when every <=
// 0, 0 for an empty window).
func BinCount(window Interval, every int64) int64 {
	if window.To <= window.From {
		return 0
	}
	if every <= 0 {
		return 1
	}
	return floorDiv(window.To-1, every) - floorDiv(window.From, every) + 1
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}
