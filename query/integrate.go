package query

import (
	"slices"
)

// Point is one reading as integration sees it: corrected Unix ms and
// milliwatts.
type Point struct {
	T  int64
	MW int64
}

// Interval is a half-open span [From, To) of Unix ms.
type Interval struct {
	From, To int64
}

// Len is the interval's length in ms (zero if empty).
func (iv Interval) Len() int64 { return max(0, iv.To-iv.From) }

// Integration rules, one per kind of series:
//
//   - Hold (GPU): zeusd sends a GPU value only when it changes, so a value
//     holds from its time until the next reading of that device.
//   - Backward (CPU package and DRAM): a value is the average over the poll
//     period that ended at its time, so it covers (t − period, t] and every
//     unsent tick after it, until the next reading's period begins.
//
// Either way a value holds only inside the live stream session it was
// received in: nothing holds across a disconnection, and the stretch of a
// session before its first value (seed or event) has no value.
const (
	RuleHold     = "hold"
	RuleBackward = "backward"
)

// Series is what Integrate needs of one series.
type Series struct {
	Rule     string     // RuleHold or RuleBackward
	PeriodMs int64      // the poll period, for RuleBackward
	Sessions []Interval // live sessions of the series' stream, sorted by From
}

// Result is the integral of one series over a window. Energy is exact:
// integer mW × ms (= µJ).
type Result struct {
	EnergyUJ int64 // mW·ms
	WindowMs int64
	ValuedMs int64 // inside a live session, with a value
	LiveMs   int64 // inside a live session
	PeakMW   int64 // largest value that held for a while inside the window
	Samples  int   // readings whose own time lies in the window
	// TrapezoidUJ is the same integral with linear interpolation between
	// consecutive readings of a session (the last one still holds to the
	// session's end): for comparison only, not exact.
	TrapezoidUJ  float64
	Gaps         int // stretches of the window without a value
	LongestGapMs int64
}

// Joules converts the energy to joules.
func (r Result) Joules() float64 { return float64(r.EnergyUJ) / 1e6 }

// Coverage is the fraction of the window with a known value: inside a live
// session, after that session's first reading.
func (r Result) Coverage() float64 {
	if r.WindowMs == 0 {
		return 0
	}
	return float64(r.ValuedMs) / float64(r.WindowMs)
}

// Integrator folds the points of one series, in time order, into the
// integral over a window. Feed it the last point before the window (the
// carry-in, if any) and then every point up to the window's end (for
// RuleBackward up to end + period), then call Result.
type Integrator struct {
	s      Series
	window Interval
	shift  int64 // effective time = T − shift

	res      Result
	sess     int   // index of the session the current value belongs to
	cur      Point // current value, effective time
	have     bool
	valued   []Interval // value segments, in order, for the gaps
	lastSeen int64
}

// NewIntegrator starts an integral of s over window.
func NewIntegrator(s Series, window Interval) *Integrator {
	it := &Integrator{s: s, window: window, sess: -1}
	if s.Rule == RuleBackward {
		it.shift = s.PeriodMs
	}
	it.res.WindowMs = window.Len()
	for _, ses := range s.Sessions {
		it.res.LiveMs += clip(ses, window).Len()
	}
	return it
}

// sessionOf returns the index of the session a reading at t was received
// in: the first session that ends after t. A reading stamped in a gap (a
// seed whose daemon time predates the reconnect) belongs to the session
// that follows. -1 means none.
func (it *Integrator) sessionOf(t int64) int {
	i, _ := slices.BinarySearchFunc(it.s.Sessions, t, func(iv Interval, t int64) int {
		if iv.To <= t {
			return -1
		}
		return 1
	})
	if i == len(it.s.Sessions) {
		return -1
	}
	return i
}

// Add feeds the next point. Points must come in time order.
func (it *Integrator) Add(p Point) {
	if it.window.From <= p.T && p.T < it.window.To {
		it.res.Samples++
	}
	it.lastSeen = p.T
	sess := it.sessionOf(p.T)
	eff := Point{T: p.T - it.shift, MW: p.MW}
	if it.have {
		if sess == it.sess {
			it.emit(eff.T, &eff)
		} else {
			it.emit(it.s.Sessions[it.sess].To, nil) // the value holds to the end of its session
		}
	}
	it.cur, it.have, it.sess = eff, sess >= 0, sess
}

// emit integrates the current value from its time to end, inside its
// session and the window. next is the following reading of the same
// session, if any, for the trapezoid comparison.
func (it *Integrator) emit(end int64, next *Point) {
	ses := it.s.Sessions[it.sess]
	seg := clip(clip(Interval{it.cur.T, end}, ses), it.window)
	if seg.Len() == 0 {
		return
	}
	it.res.EnergyUJ += seg.Len() * it.cur.MW
	if next != nil && next.T > it.cur.T {
		at := func(t int64) float64 {
			return float64(it.cur.MW) + float64(next.MW-it.cur.MW)*float64(t-it.cur.T)/float64(next.T-it.cur.T)
		}
		it.res.TrapezoidUJ += (at(seg.From) + at(seg.To)) / 2 * float64(seg.Len())
	} else {
		it.res.TrapezoidUJ += float64(seg.Len() * it.cur.MW)
	}
	it.res.ValuedMs += seg.Len()
	it.res.PeakMW = max(it.res.PeakMW, it.cur.MW)
	if n := len(it.valued); n > 0 && it.valued[n-1].To == seg.From {
		it.valued[n-1].To = seg.To
	} else {
		it.valued = append(it.valued, seg)
	}
}

// Result closes the last value at the end of its session and returns the
// integral.
func (it *Integrator) Result() Result {
	if it.have {
		it.emit(it.s.Sessions[it.sess].To, nil)
		it.have = false
	}
	res := it.res
	at := it.window.From
	for _, seg := range append(it.valued, Interval{it.window.To, it.window.To}) {
		if gap := seg.From - at; gap > 0 {
			res.Gaps++
			res.LongestGapMs = max(res.LongestGapMs, gap)
		}
		at = seg.To
	}
	return res
}

func clip(iv, to Interval) Interval {
	return Interval{max(iv.From, to.From), min(iv.To, to.To)}
}
