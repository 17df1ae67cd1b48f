package query

import (
	"context"
	"slices"

	"github.com/wattrec/wattrec/store"
)

// Point is one reading as integration sees it: corrected Unix ms and
// milliwatts.
type Point struct {
	T  int64
	MW int64
}

// Spec is how one series is integrated: its rule and the live sessions
// of its stream.
type Spec struct {
	Rule     Rule
	Sessions []Interval // sorted by From
	// TimeErrMs bounds how far a reading's corrected time may lie from
	// the true time of its poll: the daemon's millisecond timestamps and
	// the clock correction (half the round trip of the clock estimates).
	// It widens the error bound where a change or a period boundary lies
	// that near a window's edge, and each change's lag (see boundOf).
	TimeErrMs int64
}

// reach is how far past a window's end a reading may bear on it: the
// rule's reach, and the time uncertainty.
func (s Spec) reach() int64 { return s.Rule.Reach() + s.TimeErrMs }

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
	// BoundUJ bounds |EnergyUJ − the true energy of the valued time|
	// from the readings (mW·ms, see boundOf): zeusd polls every
	// Rule.PeriodMs, so a change it reports at t happened in (t − period,
	// t], and a backward value's energy is known for its period as a
	// whole, not for a part of it cut by the window or a session start.
	BoundUJ int64
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
// integral over a window by its rule. Feed it the last point before the
// window (the carry-in, if any) and then every point stamped before the
// window's end + Rule.Reach, then call Result.
type Integrator struct {
	s      Spec
	window Interval
	shift  int64 // effective time = T − shift

	res      Result
	sess     int   // index of the session the current value belongs to
	cur      Point // current value, effective time
	have     bool
	valued   []Interval // value segments, in order, for the gaps
	lastSeen int64
	step     func(Interval, int64) // Steps' callback: each segment with its value
}

// NewIntegrator starts an integral of s over window.
func NewIntegrator(s Spec, window Interval) *Integrator {
	it := new(Integrator)
	it.reset(s, window)
	return it
}

// reset makes it a new Integrator of s over window.
func (it *Integrator) reset(s Spec, window Interval) {
	*it = Integrator{s: s, window: window, sess: -1, shift: s.Rule.Shift()}
	it.res.WindowMs = window.Len()
	for _, ses := range s.Sessions {
		it.res.LiveMs += clip(ses, window).Len()
	}
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
	if sess >= 0 {
		it.boundOf(p, sess)
	}
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

// boundOf adds what reading p, of session sess, can make the integral
// differ from the true energy inside the window and session. With the
// hold rule: the change from the value before it happened at most one
// period before the poll that saw it, and that poll's time is known to
// ±TimeErrMs (δ): |Δ| × the part of [p − period − δ, p + δ) inside. With
// the backward rule: where the window or session cuts p's period (t −
// period, t] so that x of it is inside, the true energy of that part is
// anywhere between none and all of the period's (v × period), so the
// rule's v × x is off by at most v × max(x, period − x); the boundary
// with the value before may lie δ off: |Δ| × δ; and where a window edge
// lies within δ of the period's ends, the period may reach δ further or
// less far: v × δ more. Points must come in time order, each
// after the value it changes (Add).
func (it *Integrator) boundOf(p Point, sess int) {
	period, dt := it.s.Rule.PeriodMs, it.s.TimeErrMs
	if period <= 0 {
		return
	}
	ses := it.s.Sessions[sess]
	switch it.s.Rule.Kind {
	case RuleHold:
		if it.have && it.sess == sess {
			d := p.MW - it.cur.MW
			if d < 0 {
				d = -d
			}
			it.res.BoundUJ += d * clip(clip(Interval{p.T - period - dt, p.T + dt}, ses), it.window).Len()
		}
	case RuleBackward:
		lo, hi := p.T-period, p.T
		if in := clip(clip(Interval{lo, hi}, ses), it.window).Len(); in > 0 && in < period {
			it.res.BoundUJ += p.MW * max(in, period-in)
		}
		// The boundary with the value before, misplaced by up to δ.
		if it.have && it.sess == sess && it.window.From <= lo && lo <= it.window.To {
			d := p.MW - it.cur.MW
			if d < 0 {
				d = -d
			}
			it.res.BoundUJ += d * dt
		}
		near := func(e int64) bool { return (lo-dt <= e && e <= lo+dt) || (hi-dt <= e && e <= hi+dt) }
		if dt > 0 && (near(it.window.From) || near(it.window.To)) && clip(Interval{lo - dt, hi + dt}, ses).Len() > 0 {
			it.res.BoundUJ += p.MW * dt
		}
	}
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
	if it.step != nil {
		it.step(seg, it.cur.MW)
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

// integrateSeries integrates series k over window by spec, in one scan
// of the store's chunks (see IntegrateBins, of which this is the one-bin
// case): a chunk that lies inside the window and inside one live session
// is folded in from its stored sums (Integrator.addRun) without decoding
// it. The result is the same as feeding every reading (the reference in
// the tests), TrapezoidUJ up to the rounding of a float64 sum taken in
// another order.
func integrateSeries(ctx context.Context, db *store.DB, k store.SeriesKey, spec Spec, window Interval) (Result, error) {
	var res Result
	err := integrateBins(ctx, db, k, spec, binner{at: window.From, to: window.To}, func(_ Interval, r Result) error {
		res = r
		return nil
	})
	return res, err
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
	if it.s.Rule.PeriodMs > 0 {
		// No reading's bound reaches past the window or the session: the
		// hold rule's is then |Δ| × (period + 2δ) each, the backward
		// rule's |Δ| × δ, from the swing.
		dt := it.s.TimeErrMs
		early := c.FirstMs - it.s.Rule.PeriodMs - dt
		if early < ses.From || early < it.window.From || c.LastMs+dt >= it.window.To || c.LastMs+dt >= ses.To {
			return false
		}
		if (it.s.Rule.Kind == RuleHold || dt > 0) && !c.HasSwing {
			return false
		}
	}
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
	switch it.s.Rule.Kind {
	case RuleHold:
		it.res.BoundUJ += c.SwingMW * (it.s.Rule.PeriodMs + 2*it.s.TimeErrMs)
	case RuleBackward:
		it.res.BoundUJ += c.SwingMW * it.s.TimeErrMs
	}
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
