package query

import (
	"context"
	"math/rand/v2"
	"testing"

	"github.com/wattrec/wattrec/store"
)

// gpuShape says how writeGPUSeries draws a series: sessions sessions,
// each minMs plus up to spreadMs long, after a gap of up to gapMs (none
// before session joined, where joined ≥ 0), with a tie once in tieOdds
// readings.
type gpuShape struct {
	sessions               int
	gapMs, minMs, spreadMs int64
	tieOdds                int
	joined                 int
}

// writeGPUSeries writes a random GPU series of k to db, from t0 on:
// readings on a 50 ms grid with change-only skips, ties, seeds stamped up
// to 40 ms before their session and readings up to 100 ms after its end.
// It returns the sessions and the readings, in order.
func writeGPUSeries(t *testing.T, db *store.DB, rng *rand.Rand, k store.SeriesKey, t0 int64, shape gpuShape) ([]Interval, []store.Reading) {
	t.Helper()
	var sessions []Interval
	var b store.Batch
	at := t0
	for i := range shape.sessions {
		if i != shape.joined {
			at += rng.Int64N(shape.gapMs)
		}
		end := at + shape.minMs + rng.Int64N(shape.spreadMs)
		sessions = append(sessions, Interval{at, end})
		for tm := at - rng.Int64N(40); tm < end+rng.Int64N(100); {
			b.Readings = append(b.Readings, store.Reading{Endpoint: k.Endpoint, Kind: k.Kind, Device: k.Device, TimeMs: tm,
				DaemonMs: tm - 3, MilliWatts: 60_000 + rng.Int64N(240_000), Seed: tm < at})
			if rng.IntN(shape.tieOdds) != 0 { // else a tie
				tm += 50 * (1 + int64(rng.IntN(3)/2))
			}
		}
		at = end
	}
	if err := db.Write(context.Background(), &b); err != nil {
		t.Fatal(err)
	}
	return sessions, b.Readings
}
