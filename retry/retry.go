// Package retry holds the one retry schedule of wattrec's network
// clients: the recorder's reconnections to zeusd and the remote-write
// sender's retries.
package retry

import (
	"context"
	"math/rand/v2"
	"time"
)

// MinLimit is the shortest a limit on the waits can be: whatever limit
// Backoff is given, it waits at least this much (jittered).
const MinLimit = 100 * time.Millisecond

// Backoff is the wait before attempt n (from 1): quadratic from 100 ms
// up to limit (at least MinLimit), with ±50% jitter. n is capped so that
// its square cannot overflow.
func Backoff(n int, limit time.Duration) time.Duration {
	n = min(max(n, 1), 1000)
	d := min(time.Duration(n*n)*100*time.Millisecond, max(limit, MinLimit))
	return time.Duration(float64(d) * (0.5 + rand.Float64()))
}

// Sleep waits d or until ctx is done; it reports whether d elapsed.
func Sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
