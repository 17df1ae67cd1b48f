package simulator_test

import (
	"math"
	"testing"
	"time"

	"github.com/wattrec/wattrec/simulator"
)

// TestServer_ClockDrift: with ClockDriftPPM the daemon clock gains ppm
// microseconds a second on the true clock, on top of ClockOffset, and
// TrueTime inverts it.
func TestServer_ClockDrift(t *testing.T) {
	for _, ppm := range []float64{1000, -250, 0} {
		start := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
		clock := &fakeClock{t: start}
		cfg := fastConfig()
		cfg.ClockOffset, cfg.ClockDriftPPM, cfg.Now = -3*time.Second, ppm, clock.Now
		ts := MustServe(t, cfg, "tcp")
		for _, after := range []time.Duration{0, 10 * time.Second, time.Hour} {
			now := clock.Add(after)
			var got struct {
				TimestampMS int64 `json:"timestamp_ms"`
			}
			ts.getJSON(t, "/time", "", &got)
			el := now.Sub(start).Seconds()
			want := now.Add(cfg.ClockOffset).UnixMilli() + int64(math.Floor(el*ppm*1e-3))
			if d := got.TimestampMS - want; d < -1 || d > 1 {
				t.Fatalf("%v ppm, %v in: timestamp_ms=%d, want %d±1", ppm, now.Sub(start), got.TimestampMS, want)
			}
			if d := ts.TrueTime(got.TimestampMS).Sub(now); d < -time.Millisecond || d > time.Millisecond {
				t.Fatalf("%v ppm, %v in: TrueTime(%d) is %v from the true time", ppm, now.Sub(start), got.TimestampMS, d)
			}
		}
	}
	cfg := fastConfig()
	cfg.ClockDriftPPM = 2 * simulator.MaxClockDriftPPM
	if _, err := simulator.New(cfg); err == nil {
		t.Fatalf("New accepted a drift of %v ppm", cfg.ClockDriftPPM)
	}
}
