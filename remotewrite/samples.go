package remotewrite

import (
	"math"

	"github.com/prometheus/prometheus/model/value"
	"github.com/prometheus/prometheus/prompb"

	"github.com/wattrec/wattrec/query"
)

// staleNaN is Prometheus's staleness marker: the series ends here.
var staleNaN = math.Float64frombits(value.StaleNaN)

// seriesSamples turns the steps of one series (query.Steps), window by
// window, into the samples of its two metrics (see the package
// documentation):
//
//   - power: a sample where each step begins (a reading's effective
//     time, or its session's start), the held value again at each
//     multiple of every inside a step (so that a flat GPU, which sends
//     nothing for minutes, never goes stale), and a staleness marker
//     where a gap begins;
//   - energy: the counter, in joules, where the series starts after a
//     gap, at each multiple of every while it has a value, and where a
//     gap begins.
//
// Each metric's samples come in strictly increasing time, so a receiver
// that refuses out-of-order samples (Prometheus) takes them.
type seriesSamples struct {
	every int64 // ms, > 0

	powerLabels, energyLabels []prompb.Label

	power, energy []prompb.Sample // of the current window

	energyUJ int64 // the counter at the end of what was added
	// live says the series had a value just before end: the next step
	// that starts there continues it.
	live   bool
	end    int64
	from   int64 // the window's start
	lastMW int64 // the value of the last power sample, while live
}

// begin starts the window that begins at from, after the state at from
// (energy counter, whether the series had a value just before it, and
// then the value of its last power sample).
func (s *seriesSamples) begin(from, energyUJ int64, live bool, lastMW int64) {
	s.power, s.energy = s.power[:0], s.energy[:0]
	s.energyUJ, s.live, s.end, s.from = energyUJ, live, from, from
	s.lastMW = lastMW
}

// add takes the next step of the window: [st.From, st.To) at mw.
func (s *seriesSamples) add(st query.Interval, mw int64) {
	if s.live && st.From != s.end {
		s.gap()
	}
	starting := !s.live
	// Every step begins at a reading (or a session's start), except
	// perhaps the window's first, which may go on from the last window:
	// that one needs a sample only if its value is not the last sent.
	sample := starting || st.From != s.from || mw != s.lastMW
	if sample {
		s.power = append(s.power, prompb.Sample{Timestamp: st.From, Value: watts(mw)})
	}
	if starting {
		s.energy = append(s.energy, prompb.Sample{Timestamp: st.From, Value: joules(s.energyUJ)})
	}
	// The held value again on the grid, and the counter, where the
	// samples just added at st.From do not stand already.
	for t := ceilTo(st.From, s.every); t < st.To; t += s.every {
		if t != st.From || !sample {
			s.power = append(s.power, prompb.Sample{Timestamp: t, Value: watts(mw)})
		}
		if t != st.From || !starting {
			s.energy = append(s.energy, prompb.Sample{Timestamp: t, Value: joules(s.energyUJ + mw*(t-st.From))})
		}
	}
	s.energyUJ += mw * (st.To - st.From)
	s.live, s.end, s.lastMW = true, st.To, mw
}

// finish ends the window at to: a series whose last step ended before
// to has a gap there.
func (s *seriesSamples) finish(to int64) {
	if s.live && s.end < to {
		s.gap()
	}
	s.end = to
}

// gap ends the series at s.end: the counter's value there, and a
// staleness marker for the power.
func (s *seriesSamples) gap() {
	s.power = append(s.power, prompb.Sample{Timestamp: s.end, Value: staleNaN})
	s.energy = append(s.energy, prompb.Sample{Timestamp: s.end, Value: joules(s.energyUJ)})
	s.live, s.lastMW = false, 0
}

func watts(mw int64) float64 { return float64(mw) / 1e3 }

// joules converts µJ, exactly up to 2^53 µJ (about 9 GJ: a 700 W GPU
// for five months).
func joules(uj int64) float64 { return float64(uj) / 1e6 }

// ceilTo is the least multiple of every at or after t.
func ceilTo(t, every int64) int64 {
	r := t % every
	switch {
	case r == 0:
		return t
	case r < 0:
		return t - r
	}
	return t - r + every
}
