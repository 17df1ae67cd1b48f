package recorder

import (
	"errors"
	"fmt"
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
