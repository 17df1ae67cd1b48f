package retry

import (
	"context"
	"testing"
	"time"
)

// TestBackoff_Floor: whatever the limit and however many attempts, the
// wait is at least 50 ms (MinLimit, jittered) and never negative.
func TestBackoff_Floor(t *testing.T) {
	for _, limit := range []time.Duration{-time.Second, 0, time.Nanosecond, MinLimit, time.Minute} {
		for _, n := range []int{-1, 0, 1, 2, 1000, 1 << 20, 1 << 40} {
			if d := Backoff(n, limit); d < MinLimit/2 || d > 3*max(limit, MinLimit)/2 {
				t.Errorf("Backoff(%d, %v) = %v, want [%v, %v]", n, limit, d, MinLimit/2, 3*max(limit, MinLimit)/2)
			}
		}
	}
}

// TestSleep: a done context ends the wait early and says so.
func TestSleep(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if Sleep(ctx, time.Hour) {
		t.Error("Sleep on a done context reported the hour elapsed")
	}
	if !Sleep(context.Background(), time.Millisecond) {
		t.Error("Sleep of 1 ms did not elapse")
	}
}
