package query

import (
	"context"

	"github.com/wattrec/wattrec/store"
)

// Step is a stretch of one series' time over which one value held, by
// the series' rule: [From, To) in effective time (a reading's time
// minus Rule.Shift), inside one live session. The integral over a
// window is the sum of MW × (To − From) over its steps: what Result's
// EnergyUJ is. A step is what a time-series database needs to see the
// same energy as wattrec: a sample of value MW at From that holds until
// the next sample (PromQL's step rule), and nothing at a To that no
// step follows (a gap).
type Step struct {
	From, To int64 // clipped to the window asked for; From < To
	MW       int64
	// Begins says the step begins inside the window (at its reading's
	// effective time, or at its session's start), not before it.
	Begins bool
}

// Steps calls fn with each step of series k by spec that overlaps
// window, clipped to it, in time order: steps never overlap, and one
// that ends where the next begins continues the series without a gap.
// Readings of the same effective millisecond hold for zero time and
// make no step: the last of them is the one that holds. It reads the
// series with store.DB.Scan (fn runs outside any transaction) and stops
// at the first error from fn.
func Steps(ctx context.Context, db *store.DB, k store.SeriesKey, spec Spec, window Interval, fn func(Step) error) error {
	if window.To <= window.From {
		return nil
	}
	sessions := spec.Sessions
	shift := spec.Rule.Shift()
	it := Integrator{s: spec} // only for sessionOf
	var (
		cur     Point // effective time
		curSess = -1
		have    bool
	)
	// close emits the current value from its time to end (the next
	// value's effective time, or its session's end).
	close := func(end int64) error {
		ses := sessions[curSess]
		own := clip(Interval{cur.T, end}, ses)
		seg := clip(own, window)
		if seg.Len() == 0 {
			return nil
		}
		return fn(Step{From: seg.From, To: seg.To, MW: cur.MW, Begins: own.From >= window.From})
	}
	add := func(t, mw int64) error {
		sess := it.sessionOf(t)
		eff := Point{T: t - shift, MW: mw}
		if have {
			end := eff.T
			if sess != curSess {
				end = sessions[curSess].To // the value holds to the end of its session
			}
			if err := close(end); err != nil {
				return err
			}
		}
		cur, curSess, have = eff, sess, sess >= 0
		return nil
	}

	carry, ok, err := db.Before(ctx, k, window.From)
	if err != nil {
		return err
	}
	if ok {
		if err := add(carry.TimeMs, carry.MilliWatts); err != nil {
			return err
		}
	}
	err = db.Scan(ctx, k, window.From, sat(window.To, spec.Rule.Reach()), func(r *store.Reading) error {
		return add(r.TimeMs, r.MilliWatts)
	})
	if err != nil {
		return err
	}
	if have {
		return close(sessions[curSess].To)
	}
	return nil
}
