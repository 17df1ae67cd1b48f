package query

import "github.com/wattrec/wattrec/store"

// RuleOf is the rule of a series of kind k with poll period periodMs
// (zeusd's default for the kind when zero or less): GPU values hold, CPU
// and DRAM values are backward over the period. It is what a live
// reader, which cannot look ahead in the file, uses; NewPlan infers the
// periods from the stored readings.
func RuleOf(k store.Kind, periodMs int64) Rule {
	kind, def := ruleKindOf(k), int64(DefaultCPUPeriodMs)
	if kind == RuleHold {
		def = DefaultGPUPeriodMs
	}
	if periodMs <= 0 {
		return Rule{Kind: kind, PeriodMs: def}
	}
	return Rule{Kind: kind, PeriodMs: periodMs}
}

// Running is the energy of one series as it is recorded: the integral by
// Rule of the values of its live sessions, fed in arrival order, which
// never decreases. Feed it each session's Start, its readings (Add), how
// far the session is known to be live (Through), and its End. While
// every reading's effective time (its time minus Rule.Shift) is at or
// after the time already counted, EnergyUJ equals the Integrator's over
// the same sessions, up to the time counted. A reading stamped before
// that (it arrived later than Through claimed) takes effect at the time
// counted instead: what was counted stays counted. The zero value is a
// series that has seen nothing, under the hold rule.
type Running struct {
	Rule Rule

	energy  int64 // µJ counted
	counted int64 // effective time counted up to
	cur     int64 // mW of the value that holds, if have
	have    bool
	live    bool // inside a session
}

// Start begins a live session at t (the recorder's clock). A session
// still live ends there first.
func (r *Running) Start(t int64) {
	if r.live {
		r.End(t)
	}
	r.live, r.have = true, false
	r.counted = max(r.counted, t)
}

// Add takes the next reading of the live session: corrected time t, mw
// milliwatts. Outside a session it is ignored.
func (r *Running) Add(t, mw int64) {
	if !r.live {
		return
	}
	eff := max(t-r.Rule.Shift(), r.counted)
	if r.have {
		r.energy += r.cur * (eff - r.counted)
	}
	r.counted, r.cur, r.have = eff, mw, true
}

// Through says the session is live at least until t: the value that
// holds counts up to t − Rule.Shift (a backward value's successor covers
// the period before its own time, so that much is not yet known).
func (r *Running) Through(t int64) {
	if !r.live {
		return
	}
	r.advance(t - r.Rule.Shift())
}

// End ends the live session at t: the value that holds counts up to t,
// and after it there is none.
func (r *Running) End(t int64) {
	if !r.live {
		return
	}
	r.advance(t)
	r.live, r.have = false, false
}

func (r *Running) advance(to int64) {
	if to <= r.counted {
		return
	}
	if r.have {
		r.energy += r.cur * (to - r.counted)
	}
	r.counted = to
}

// EnergyUJ is the energy counted so far, in µJ (mW·ms).
func (r *Running) EnergyUJ() int64 { return r.energy }

// At estimates the energy up to time t near the time counted: the
// energy counted, plus (or minus) the value that holds now over the
// time between. It is exact when no other value held there.
func (r *Running) At(t int64) int64 {
	if !r.have {
		return r.energy
	}
	return r.energy + r.cur*(t-r.counted)
}

// Counted is the effective time the energy is counted up to.
func (r *Running) Counted() int64 { return r.counted }

// Power is the value that holds now, if the series is in a live session
// and has one.
func (r *Running) Power() (mw int64, ok bool) { return r.cur, r.live && r.have }

// maxSpacingMs is the longest spacing of daemon times that counts
// toward a poll period: zeusd's slowest poll (0.1 Hz).
const maxSpacingMs = 10_000

// PeriodOf is the poll period that spacings of one series' daemon times
// (of readings other than seeds) show, as NewPlan infers it from the
// file: the most common of those in (0, 10 s], the smallest of a tie; 0
// without any.
func PeriodOf(spacings []int64) int64 {
	counts := map[int64]int{}
	for _, d := range spacings {
		if d > 0 && d <= maxSpacingMs {
			counts[d]++
		}
	}
	return mostCommon(counts)
}

// mostCommon is the key with the largest count, the smallest of a tie,
// or 0.
func mostCommon(counts map[int64]int) int64 {
	best, bestN := int64(0), 0
	for d, c := range counts {
		if c > bestN || (c == bestN && d < best) {
			best, bestN = d, c
		}
	}
	return best
}
