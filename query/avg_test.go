package query_test

import (
	"context"
	"math"
	"testing"

	"github.com/wattrec/wattrec/internal/simtest"
	"github.com/wattrec/wattrec/query"
	"github.com/wattrec/wattrec/store"
)

// TestRow_AvgW: a group's average power is the sum of its devices'
// averages, each over its own observed time, also when their coverage
// differs (it used to be the group's joules over its observed
// device-time, times the device count: 2,751 W for devices averaging
// 1,100 W together).
func TestRow_AvgW(t *testing.T) {
	db := simtest.MustOpenDB(t)
	t0 := int64(1_795_881_600_000)
	// gpu:0 at 100 W the whole 10 s; gpu:1 at 400 W, but its stream was
	// only live for the last 2 s.
	b := &store.Batch{Sessions: []store.Session{
		{Endpoint: "a:1", Stream: store.StreamGPU, Start: t0, End: t0 + 10_000},
		{Endpoint: "b:1", Stream: store.StreamGPU, Start: t0 + 8_000, End: t0 + 10_000},
	}, Readings: []store.Reading{
		{Endpoint: "a:1", Kind: store.KindGPU, TimeMs: t0, DaemonMs: t0, MilliWatts: 100_000},
		{Endpoint: "b:1", Kind: store.KindGPU, TimeMs: t0 + 8_000, DaemonMs: t0 + 8_000, MilliWatts: 400_000},
	}}
	MustWrite(t, db, b)
	for _, by := range []string{query.ByDevice, query.ByKind, query.ByTotal} {
		rep, err := query.Energy(context.Background(), db, query.Options{By: by, Filter: query.Filter{Range: query.Between(t0, t0+10_000)}})
		if err != nil {
			t.Fatal(err)
		}
		last := rep.Rows[len(rep.Rows)-1] // the total row, or the one kind/total group
		if got := last.AvgW(); math.Abs(got-500) > 1e-9 {
			t.Errorf("by %s: %s avg %v W, want 100 + 400 = 500 W", by, last.Group, got)
		}
		if by == query.ByDevice {
			if a, b := rep.Rows[0].AvgW(), rep.Rows[1].AvgW(); a != 100 || b != 400 {
				t.Errorf("device averages %v and %v W, want 100 and 400", a, b)
			}
		}
	}
}
