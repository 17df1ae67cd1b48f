package recorder

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"time"
)

// ClockSample is one GET /time round trip: the recorder's clock when the
// request left and when the answer arrived, and the daemon's timestamp.
type ClockSample struct {
	Sent, Received time.Time
	DaemonMs       int64
}

// RTT is the sample's round-trip time.
func (s ClockSample) RTT() time.Duration { return s.Received.Sub(s.Sent) }

// OffsetUs is the midpoint estimate of (recorder clock − daemon clock) in
// microseconds: (sent + received)/2 − daemon time.
func (s ClockSample) OffsetUs() int64 {
	mid := s.Sent.UnixMicro() + s.Received.Sub(s.Sent).Microseconds()/2
	return mid - s.DaemonMs*1000
}

// ClockEstimate is the offset to add to daemon timestamps.
type ClockEstimate struct {
	OffsetUs int64
	// RTTUs is the largest round trip among the samples used; the offset's
	// error is at most RTT/2 plus the daemon's 1 ms resolution.
	RTTUs int64
	Used  int // samples averaged
}

// bestSamples is how many of the lowest-RTT samples are averaged.
const bestSamples = 3

// EstimateClock combines round trips by the midpoint method. A sample's
// error is bounded by half its RTT, so only the lowest-RTT samples count;
// averaging a few of them smooths the daemon's 1 ms resolution.
func EstimateClock(samples []ClockSample) (ClockEstimate, error) {
	if len(samples) == 0 {
		return ClockEstimate{}, errors.New("no clock samples")
	}
	sorted := slices.Clone(samples)
	for _, s := range sorted {
		if s.RTT() < 0 {
			return ClockEstimate{}, fmt.Errorf("negative round trip %v: the local clock stepped", s.RTT())
		}
	}
	slices.SortStableFunc(sorted, func(a, b ClockSample) int { return int(a.RTT() - b.RTT()) })
	used := sorted[:min(bestSamples, len(sorted))]
	var sum int64
	for _, s := range used {
		sum += s.OffsetUs()
	}
	n := int64(len(used))
	// Round half away from zero so a symmetric error stays symmetric.
	mean := sum / n
	if r := sum % n; 2*r >= n {
		mean++
	} else if 2*r <= -n {
		mean--
	}
	return ClockEstimate{OffsetUs: mean, RTTUs: used[len(used)-1].RTT().Microseconds(), Used: len(used)}, nil
}

// Correct applies an offset to a daemon timestamp, rounding to the
// nearest millisecond.
func Correct(daemonMs, offsetUs int64) int64 {
	us := daemonMs*1000 + offsetUs
	ms := us / 1000
	if r := us % 1000; r >= 500 {
		ms++
	} else if r < -500 {
		ms--
	}
	return ms
}

// MaxClockDrift bounds the drift a ClockModel fits, as a rate (2000 ppm):
// ten times a quartz oscillator's tolerance, so a steeper line is noise.
const MaxClockDrift = 2000e-6

// Clock model settings.
const (
	// clockFitPoints is how many recent estimates the line is fitted to:
	// 8 minutes at the default ClockInterval.
	clockFitPoints = 8
	// clockResolutionUs is the daemon's timestamp resolution, 1 ms: with
	// half the RTT, an estimate's error bound.
	clockResolutionUs = 1000
	// clockStepUs is the least residual that counts as a clock step,
	// beyond the estimate's error bound and the drift allowance.
	clockStepUs = 5000
	// fittedDriftSlack is the drift error a fitted line is allowed when
	// an estimate is tested for a step; an unfitted line is allowed
	// MaxClockDrift.
	fittedDriftSlack = MaxClockDrift / 10
)

// ClockLine is a daemon's clock offset as a function of recorder time:
// offset(t) = OffsetUs + Drift·(t − AtUs), t in Unix µs.
type ClockLine struct {
	AtUs     int64 // recorder time the line is anchored at (the latest estimate)
	OffsetUs int64 // offset (recorder − daemon clock) at AtUs
	// Drift is the offset's change per unit of recorder time: −1e-6 when
	// the daemon clock gains 1 µs a second (runs 1 ppm fast). It is
	// within ±MaxClockDrift.
	Drift float64
}

// OffsetAt returns the offset at recorder time recorderUs (Unix µs).
func (l ClockLine) OffsetAt(recorderUs int64) int64 {
	return l.OffsetUs + int64(math.Round(l.Drift*float64(recorderUs-l.AtUs)))
}

// Correct maps a daemon timestamp to the recorder clock, rounded to the
// millisecond: daemonMs plus the offset at the recorder time the reading
// was taken (daemonMs + offset; the offset's own error there is second
// order), not at its arrival, so a reading that arrives late (a seed, a
// slow connection) is corrected as one that came at once.
func (l ClockLine) Correct(daemonMs int64) int64 {
	return Correct(daemonMs, l.OffsetAt(daemonMs*1000+l.OffsetUs))
}

// ClockModel follows a drifting daemon clock: it fits a line to the
// latest estimates (weighted least squares, weights 1/bound², where an
// estimate's error bound is RTT/2 plus the daemon's 1 ms resolution), so
// readings between estimates are corrected with the offset predicted for
// their time, not the last one measured. The line's drift is used only
// once the estimates span long enough that their error bounds alone
// cannot fake half of MaxClockDrift, and it is clamped to
// ±MaxClockDrift. An estimate far off the line (a clock step on either
// side, by NTP or by hand) restarts the fit from that estimate, keeping
// the last fitted drift until a new one is fitted.
//
// The zero value is ready to use. A ClockModel is not safe for concurrent
// use.
type ClockModel struct {
	pts    []clockPoint // the current fit's estimates, oldest first
	line   ClockLine
	fitted bool    // line's drift was fitted to pts
	drift  float64 // the last fitted drift, kept across a step
}

// clockPoint is one estimate the model fits.
type clockPoint struct {
	atUs, offsetUs int64
	boundUs        int64 // error bound: RTT/2 + resolution
}

// Line returns the current line; before the first Add, the zero line.
func (m *ClockModel) Line() ClockLine { return m.line }

// Add adds est, measured at recorder time atUs (Unix µs), and returns the
// new line. stepped reports that est was off the line by more than its
// error bound and the drift allowance (at least 5 ms more), or earlier
// than the previous estimate (the recorder clock went back), so the fit
// restarted from est.
func (m *ClockModel) Add(atUs int64, est ClockEstimate) (line ClockLine, stepped bool) {
	p := clockPoint{atUs: atUs, offsetUs: est.OffsetUs, boundUs: est.RTTUs/2 + clockResolutionUs}
	if n := len(m.pts); n > 0 {
		dt := atUs - m.pts[n-1].atUs
		slack := MaxClockDrift
		if m.fitted {
			slack = fittedDriftSlack
		}
		tol := float64(clockStepUs+2*p.boundUs) + slack*float64(dt)
		if dt <= 0 || math.Abs(float64(p.offsetUs-m.line.OffsetAt(atUs))) > tol {
			m.pts, stepped = m.pts[:0], true
		}
	}
	if len(m.pts) == clockFitPoints {
		m.pts = append(m.pts[:0], m.pts[1:]...)
	}
	m.pts = append(m.pts, p)
	m.fit()
	return m.line, stepped
}

// fit sets line from pts: the latest offset with the last fitted drift
// until the estimates span enough time, then the weighted least-squares
// line.
func (m *ClockModel) fit() {
	first, last := m.pts[0], m.pts[len(m.pts)-1]
	m.line, m.fitted = ClockLine{AtUs: last.atUs, OffsetUs: last.offsetUs, Drift: m.drift}, false
	if span := float64(last.atUs - first.atUs); span*MaxClockDrift/2 < float64(first.boundUs+last.boundUs) {
		return // the error bounds could fake a drift of MaxClockDrift/2
	}
	// x and y are relative to the latest estimate, so the sums stay
	// small whatever the clocks read.
	var sw, sx, sy float64
	for _, p := range m.pts {
		w := 1 / float64(p.boundUs*p.boundUs)
		sw += w
		sx += w * float64(p.atUs-last.atUs)
		sy += w * float64(p.offsetUs-last.offsetUs)
	}
	xm, ym := sx/sw, sy/sw
	var sxx, sxy float64
	for _, p := range m.pts {
		w := 1 / float64(p.boundUs*p.boundUs)
		dx, dy := float64(p.atUs-last.atUs)-xm, float64(p.offsetUs-last.offsetUs)-ym
		sxx += w * dx * dx
		sxy += w * dx * dy
	}
	b := max(-MaxClockDrift, min(MaxClockDrift, sxy/sxx))
	m.line.OffsetUs = last.offsetUs + int64(math.Round(ym-b*xm))
	m.line.Drift, m.fitted, m.drift = b, true, b
}
