package recorder_test

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wattrec/wattrec/recorder"
)

// clockBase is the recorder's (true) clock at the first /time request.
var clockBase = time.Date(2025, 11, 1, 12, 0, 0, 123_456_789, time.UTC)

// clockSim simulates GET /time against a daemon whose clock reads
// true time + skew and has 1 ms resolution (timestamp_ms is truncated).
type clockSim struct {
	skew time.Duration
	now  time.Time // true time of the next request
}

// roundTrip sends at s.now, the daemon reads its clock after up, and the
// answer takes down to come back.
func (s *clockSim) roundTrip(up, down time.Duration) recorder.ClockSample {
	sent := s.now
	daemon := sent.Add(up).Add(s.skew)
	received := sent.Add(up + down)
	s.now = received.Add(3 * time.Millisecond) // the next request
	return recorder.ClockSample{Sent: sent, Received: received, DaemonMs: daemon.UnixMilli()}
}

// trueOffsetUs is what the estimate should find: recorder − daemon.
func (s *clockSim) trueOffsetUs() int64 { return -s.skew.Microseconds() }

// checkClockBound requires est to be within RTTUs/2 + 1 ms of the true
// offset. Each sample's midpoint error lies in [−RTT/2, RTT/2 + 1 ms) (the
// daemon's clock read happens somewhere within the round trip and is
// truncated to the ms); a mean of such samples stays within the largest
// RTT used. 3 µs of slack cover the microsecond truncations.
func checkClockBound(t *testing.T, est recorder.ClockEstimate, trueUs int64) {
	t.Helper()
	bound := est.RTTUs/2 + 1000 + 3
	if diff := est.OffsetUs - trueUs; diff < -bound || diff > bound {
		t.Fatalf("offset %d µs is %d µs from the true %d µs; bound %d µs (RTT %d µs)",
			est.OffsetUs, diff, trueUs, bound, est.RTTUs)
	}
}

func TestEstimateClock_Simulated(t *testing.T) {
	skews := []time.Duration{
		-5 * time.Second,
		3200 * time.Millisecond,
		3200*time.Millisecond + 400*time.Microsecond,
		-5*time.Second - 999*time.Microsecond,
		0,
		-17 * time.Hour,
	}
	for _, skew := range skews {
		t.Run(fmt.Sprint(skew), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(uint64(skew), 1))
			delay := func() time.Duration { // 50 µs .. 2 ms, ns resolution
				return 50*time.Microsecond + time.Duration(rng.Int64N(int64(1950*time.Microsecond)))
			}
			for trial := range 500 {
				sim := &clockSim{skew: skew, now: clockBase.Add(time.Duration(rng.Int64N(int64(time.Hour))))}
				n := 1 + rng.IntN(10)
				samples := make([]recorder.ClockSample, n)
				for i := range samples {
					up, down := delay(), delay()
					// Some round trips are slow in one direction only
					// (a queued request or a delayed answer).
					if rng.IntN(4) == 0 {
						if rng.IntN(2) == 0 {
							up += 10*time.Millisecond + time.Duration(rng.Int64N(int64(50*time.Millisecond)))
						} else {
							down += 10*time.Millisecond + time.Duration(rng.Int64N(int64(50*time.Millisecond)))
						}
					}
					samples[i] = sim.roundTrip(up, down)
				}
				in := slices.Clone(samples)

				est, err := recorder.EstimateClock(samples)
				if err != nil {
					t.Fatalf("trial %d: %v", trial, err)
				}
				if !slices.Equal(samples, in) {
					t.Fatalf("trial %d: EstimateClock reordered its input", trial)
				}
				if got, want := est.Used, min(3, n); got != want {
					t.Fatalf("trial %d: Used=%d, want %d", trial, got, want)
				}
				// RTTUs is the largest RTT among the lowest-RTT samples used.
				rtts := make([]time.Duration, n)
				for i, s := range samples {
					rtts[i] = s.RTT()
				}
				slices.Sort(rtts)
				if got, want := est.RTTUs, rtts[est.Used-1].Microseconds(); got != want {
					t.Fatalf("trial %d: RTTUs=%d, want %d (sorted RTTs %v)", trial, got, want, rtts)
				}
				checkClockBound(t, est, sim.trueOffsetUs())

				// Corrected daemon timestamps land on the recorder's clock.
				// The daemon read its clock within [Sent, Received] and
				// truncated it to the ms; allow the estimate's bound and
				// the rounding on top.
				s := samples[0]
				got := recorder.Correct(s.DaemonMs, est.OffsetUs)
				slack := (est.RTTUs/2+1000+3)/1000 + 2
				lo, hi := s.Sent.UnixMilli()-slack, s.Received.UnixMilli()+slack
				if got < lo || got > hi {
					t.Fatalf("trial %d: Correct(%d, %d)=%d, want within [%d, %d]", trial, s.DaemonMs, est.OffsetUs, got, lo, hi)
				}
			}
		})
	}
}

// TestEstimateClock_Outliers checks that slow round trips do not move the
// estimate once there are enough fast ones.
func TestEstimateClock_Outliers(t *testing.T) {
	for _, skew := range []time.Duration{-5 * time.Second, 3200 * time.Millisecond} {
		t.Run(fmt.Sprint(skew), func(t *testing.T) {
			sim := &clockSim{skew: skew, now: clockBase}
			var good, all []recorder.ClockSample
			add := func(up, down time.Duration, outlier bool) {
				s := sim.roundTrip(up, down)
				all = append(all, s)
				if !outlier {
					good = append(good, s)
				}
			}
			add(50*time.Millisecond, 300*time.Microsecond, true) // request queued 50 ms
			add(400*time.Microsecond, 500*time.Microsecond, false)
			add(600*time.Microsecond, 450*time.Microsecond, false)
			add(80*time.Millisecond, 200*time.Microsecond, true) // request queued 80 ms
			add(350*time.Microsecond, 380*time.Microsecond, false)
			add(500*time.Microsecond, 500*time.Microsecond, false)
			add(45*time.Millisecond, 45*time.Millisecond, true) // slow both ways
			add(300*time.Microsecond, 700*time.Microsecond, false)
			add(60*time.Millisecond, 100*time.Microsecond, true)

			want, err := recorder.EstimateClock(good)
			if err != nil {
				t.Fatal(err)
			}
			got, err := recorder.EstimateClock(all)
			if err != nil {
				t.Fatal(err)
			}
			if got != want {
				t.Fatalf("with outliers %+v, without %+v", got, want)
			}
			if got.RTTUs > 1100 {
				t.Errorf("RTTUs=%d, want the fast samples' RTT (≤ 1100 µs)", got.RTTUs)
			}
			checkClockBound(t, got, sim.trueOffsetUs())

			// The outliers matter: a plain mean of all samples is far off,
			// so the test would catch an estimator that used them.
			var sum int64
			for _, s := range all {
				sum += s.OffsetUs()
			}
			if d := sum/int64(len(all)) - sim.trueOffsetUs(); d > -5000 && d < 5000 {
				t.Fatalf("plain mean is only %d µs off; the outliers do not test anything", d)
			}
		})
	}
}

// offsetSample returns a zero-RTT sample whose OffsetUs is off.
func offsetSample(off int64) recorder.ClockSample {
	at := clockBase.Truncate(time.Millisecond).Add(time.Duration(off) * time.Microsecond)
	return recorder.ClockSample{Sent: at, Received: at, DaemonMs: clockBase.UnixMilli()}
}

func TestEstimateClock_Mean(t *testing.T) {
	tests := []struct {
		offsets []int64
		want    int64
	}{
		{[]int64{7}, 7},
		{[]int64{-7}, -7},
		{[]int64{0, 0, 1}, 0},    // 1/3
		{[]int64{0, 1, 1}, 1},    // 2/3
		{[]int64{0, 0, -1}, 0},   // -1/3
		{[]int64{0, -1, -1}, -1}, // -2/3
		{[]int64{0, 1}, 1},       // 0.5: half away from zero
		{[]int64{0, -1}, -1},     // -0.5
		{[]int64{1, 2}, 2},       // 1.5
		{[]int64{-1, -2}, -2},    // -1.5
		{[]int64{5_000_000, 5_000_001, 5_000_001}, 5_000_001},
		{[]int64{-3_200_000, -3_200_001, -3_200_002}, -3_200_001},
		{[]int64{-1, 0, 1}, 0},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.offsets), func(t *testing.T) {
			samples := make([]recorder.ClockSample, len(tt.offsets))
			for i, off := range tt.offsets {
				samples[i] = offsetSample(off)
				if got, want := samples[i].OffsetUs(), off; got != want {
					t.Fatalf("sample OffsetUs=%d, want %d", got, want)
				}
			}
			est, err := recorder.EstimateClock(samples)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := est.OffsetUs, tt.want; got != want {
				t.Errorf("OffsetUs=%d, want %d", got, want)
			}
			if got, want := est.RTTUs, int64(0); got != want {
				t.Errorf("RTTUs=%d, want %d", got, want)
			}
			if got, want := est.Used, len(tt.offsets); got != want {
				t.Errorf("Used=%d, want %d", got, want)
			}
		})
	}
}

func TestEstimateClock_Errors(t *testing.T) {
	ok := recorder.ClockSample{Sent: clockBase, Received: clockBase.Add(time.Millisecond), DaemonMs: clockBase.UnixMilli()}
	stepped := recorder.ClockSample{Sent: clockBase, Received: clockBase.Add(-time.Second), DaemonMs: clockBase.UnixMilli()}
	tests := []struct {
		name    string
		samples []recorder.ClockSample
		want    string
	}{
		{"Nil", nil, "no clock samples"},
		{"Empty", []recorder.ClockSample{}, "no clock samples"},
		{"NegativeRTT", []recorder.ClockSample{stepped}, "negative round trip"},
		{"NegativeRTTAmongGood", []recorder.ClockSample{ok, ok, stepped, ok, ok}, "negative round trip -1s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			est, err := recorder.EstimateClock(tt.samples)
			if err == nil {
				t.Fatalf("got %+v, want an error", est)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
			if est != (recorder.ClockEstimate{}) {
				t.Errorf("got %+v with the error, want the zero estimate", est)
			}
		})
	}
}

func TestClockSample_OffsetUs(t *testing.T) {
	base := time.Unix(1762000000, 0)
	baseMs := base.UnixMilli()
	tests := []struct {
		name     string
		sent     time.Duration // after base
		rtt      time.Duration
		daemonMs int64
		want     int64
	}{
		{"InSync", 0, 2 * time.Millisecond, baseMs + 1, 0},
		{"DaemonBehind5s", 0, 2 * time.Millisecond, baseMs + 1 - 5000, 5_000_000},
		{"DaemonAhead3.2s", 0, 2 * time.Millisecond, baseMs + 1 + 3200, -3_200_000},
		{"ZeroRTT", 250 * time.Microsecond, 0, baseMs, 250},
		{"MidpointNotSent", 0, 10 * time.Millisecond, baseMs, 5000},
		{"SubMillisecond", 100 * time.Microsecond, 600 * time.Microsecond, baseMs - 3, 3400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := recorder.ClockSample{Sent: base.Add(tt.sent), Received: base.Add(tt.sent + tt.rtt), DaemonMs: tt.daemonMs}
			if got, want := s.RTT(), tt.rtt; got != want {
				t.Errorf("RTT()=%v, want %v", got, want)
			}
			if got, want := s.OffsetUs(), tt.want; got != want {
				t.Errorf("OffsetUs()=%d, want %d", got, want)
			}
		})
	}
}

func TestCorrect(t *testing.T) {
	const d = 1762000000000
	tests := []struct {
		name     string
		daemonMs int64
		offsetUs int64
		want     int64
	}{
		{"Zero", d, 0, d},
		{"WholeMs", d, 5_000_000, d + 5000},
		{"NegativeWholeMs", d, -3_200_000, d - 3200},
		{"Below.5", d, 499, d},
		{"At.5", d, 500, d + 1},
		{"Above.5", d, 501, d + 1},
		{"1.499", d, 1499, d + 1},
		{"1.5", d, 1500, d + 2},
		{"5s+0.4ms", d, 5_000_400, d + 5000},
		{"5s+0.6ms", d, 5_000_600, d + 5001},
		{"Negative-0.499", d, -499, d},
		// Halves round up (towards +∞), the same on both sides of zero,
		// so the rounding does not depend on the sign of the offset.
		{"Negative-0.5", d, -500, d},
		{"Negative-0.501", d, -501, d - 1},
		{"Negative-1.5", d, -1500, d - 1},
		{"Negative-1.501", d, -1501, d - 2},
		{"Negative-3.2004s", d, -3_200_400, d - 3200},
		{"Negative-3.2006s", d, -3_200_600, d - 3201},
		{"ZeroDaemon", 0, 0, 0},
		{"ZeroDaemon.5", 0, 500, 1},
		{"ZeroDaemon-0.5", 0, -500, 0},
		{"ZeroDaemon-0.501", 0, -501, -1},
		{"ZeroDaemon-1.5", 0, -1500, -1},
		{"SmallDaemonLargeNegative", 2, -5_000_000, -4998},
		{"SmallDaemonLargeNegative.5", 2, -5_000_500, -4998},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got, want := recorder.Correct(tt.daemonMs, tt.offsetUs), tt.want; got != want {
				t.Errorf("Correct(%d, %d)=%d, want %d", tt.daemonMs, tt.offsetUs, got, want)
			}
		})
	}

	t.Run("Property", func(t *testing.T) {
		rng := rand.New(rand.NewPCG(4938, 1))
		for range 100_000 {
			daemonMs := rng.Int64N(1 << 53)
			if rng.IntN(8) == 0 {
				daemonMs = rng.Int64N(10_000) // near zero, where the sum can be negative
			}
			offsetUs := rng.Int64N(2*86_400_000_000) - 86_400_000_000 // ±1 day
			got := recorder.Correct(daemonMs, offsetUs)
			// Nearest millisecond.
			if diff := got*1000 - (daemonMs*1000 + offsetUs); diff <= -500 || diff > 500 {
				t.Fatalf("Correct(%d, %d)=%d is %d µs from the exact time", daemonMs, offsetUs, got, diff)
			}
			// Rounding does not depend on the daemon timestamp.
			if got, want := got, daemonMs+recorder.Correct(0, offsetUs); got != want {
				t.Fatalf("Correct(%d, %d)=%d, want %d", daemonMs, offsetUs, got, want)
			}
		}
	})
}
