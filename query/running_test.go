package query

import (
	"context"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/wattrec/wattrec/store"
)

// runningFixture is a GPU series with sessions, gaps, ties, seeds stamped
// before their session and readings after its end.
func runningFixture(t *testing.T) (*store.DB, store.SeriesKey, []Interval, []store.Reading) {
	t.Helper()
	db, err := store.Open(filepath.Join(t.TempDir(), "w.db"), store.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	rng := rand.New(rand.NewPCG(8, 9))
	k := store.SeriesKey{Endpoint: "n1:4938", Kind: store.KindGPU}
	// Session 4 starts where session 3 ended: no gap.
	sessions, readings := writeGPUSeries(t, db, rng, k, 1_700_000_000_000,
		gpuShape{sessions: 10, gapMs: 3_000, minMs: 2_000, spreadMs: 60_000, tieOdds: 100, joined: 4})
	return db, k, sessions, readings
}

// TestRunning: fed the sessions and readings in arrival order, with
// Through calls that never claim more than the next reading shows, the
// running energy is the integral; a late reading never makes it go back.
func TestRunning(t *testing.T) {
	ctx := context.Background()
	db, k, sessions, readings := runningFixture(t)
	rng := rand.New(rand.NewPCG(3, 4))
	for _, rule := range []Rule{{Kind: RuleHold}, {Kind: RuleBackward, PeriodMs: 100}} {
		spec := Spec{Rule: rule, Sessions: sessions}
		span := Interval{sessions[0].From - 1000, sessions[len(sessions)-1].To + 1000}
		want, err := integrateSeriesRef(ctx, db, k, spec, span)
		if err != nil {
			t.Fatal(err)
		}
		r := Running{Rule: rule}
		it := Integrator{s: spec}
		sess := -1
		for i, rd := range readings {
			s := it.sessionOf(rd.TimeMs)
			if s < 0 {
				continue
			}
			for sess < s {
				if sess >= 0 {
					r.End(sessions[sess].To)
				}
				sess++
				r.Start(sessions[sess].From)
			}
			r.Add(rd.TimeMs, rd.MilliWatts)
			if i+1 < len(readings) && rng.IntN(10) == 0 {
				next := readings[i+1].TimeMs
				if next > rd.TimeMs {
					r.Through(min(next, sessions[sess].To))
				}
			}
		}
		r.End(sessions[sess].To)
		if got := r.EnergyUJ(); got != want.EnergyUJ {
			t.Errorf("%s: running %d µJ, want %d", rule.Kind, got, want.EnergyUJ)
		}
	}

	t.Run("Late", func(t *testing.T) {
		r := Running{Rule: Rule{Kind: RuleHold}}
		r.Start(0)
		r.Add(0, 100)
		r.Through(1000) // 100 mW × 1 s
		before := r.EnergyUJ()
		r.Add(500, 10) // stamped inside the time already counted
		if got := r.EnergyUJ(); got != before || before != 100_000 {
			t.Fatalf("after a late reading %d µJ, want %d = 100000", got, before)
		}
		r.End(2000)
		if got, want := r.EnergyUJ(), int64(100_000+10*1000); got != want {
			t.Fatalf("energy %d µJ, want %d", got, want)
		}
		if _, ok := r.Power(); ok {
			t.Fatal("a value after the session's end")
		}
	})
}
