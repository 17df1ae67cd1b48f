package query

import (
	"context"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"testing"

	"github.com/wattrec/wattrec/store"
)

type step struct {
	iv Interval
	mw int64
}

// stepsRef is the reference for Steps: the Integrator fed every
// reading, one by one, telling each segment it integrates.
func stepsRef(ctx context.Context, db *store.DB, k store.SeriesKey, spec Spec, window Interval) ([]step, error) {
	var out []step
	it := NewIntegrator(spec, window)
	it.step = func(iv Interval, mw int64) { out = append(out, step{iv, mw}) }
	carry, ok, err := db.Before(ctx, k, window.From)
	if err != nil {
		return nil, err
	}
	if ok {
		it.Add(Point{carry.TimeMs, carry.MilliWatts})
	}
	err = db.Scan(ctx, k, window.From, window.To+spec.Rule.Reach(), func(r *store.Reading) error {
		it.Add(Point{r.TimeMs, r.MilliWatts})
		return nil
	})
	it.Result()
	return out, err
}

// TestSteps: Steps tells exactly the segments the integrator integrates,
// reading by reading, for both rules, over random windows of a series
// with sessions, gaps, ties and seeds stamped in gaps (several chunks,
// so whole chunks take the fast path); the steps lie in the window, in
// order and disjoint, and add up to integrateSeries' energy.
func TestSteps(t *testing.T) {
	ctx := context.Background()
	db, err := store.Open(filepath.Join(t.TempDir(), "w.db"), store.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rng := rand.New(rand.NewPCG(8, 9))
	k := store.SeriesKey{Endpoint: "n1:4938", Kind: store.KindGPU}
	t0 := int64(1_700_000_000_000)
	sessions, _ := writeGPUSeries(t, db, rng, k, t0, gpuShape{sessions: 6, gapMs: 5_000, minMs: 10_000, spreadMs: 150_000, tieOdds: 200, joined: -1})
	at := sessions[len(sessions)-1].To
	span := Interval{t0 - 1000, at + 1000}
	windows := []Interval{span, sessions[2]}
	for range 30 {
		a := span.From + rng.Int64N(span.Len())
		windows = append(windows, Interval{a, a + 1 + rng.Int64N(span.To-a)})
	}
	for _, w := range windows {
		for _, spec := range []Spec{
			{Rule: Rule{Kind: RuleHold}, Sessions: sessions},
			{Rule: Rule{Kind: RuleBackward, PeriodMs: 100}, Sessions: sessions},
			{Rule: Rule{Kind: RuleBackward, PeriodMs: 1 + rng.Int64N(3000)}, Sessions: sessions},
		} {
			want, err := stepsRef(ctx, db, k, spec, w)
			if err != nil {
				t.Fatal(err)
			}
			var got []step
			if err := Steps(ctx, db, k, spec, w, func(iv Interval, mw int64) { got = append(got, step{iv, mw}) }); err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, want) {
				t.Fatalf("%s period %d window %v: %d steps, want %d", spec.Rule.Kind, spec.Rule.PeriodMs, w, len(got), len(want))
			}
			res, err := integrateSeries(ctx, db, k, spec, w)
			if err != nil {
				t.Fatal(err)
			}
			var uj, ms int64
			last := w.From
			for _, s := range got {
				if s.iv.From < last || s.iv.To <= s.iv.From || s.iv.To > w.To {
					t.Fatalf("step %v after %d in window %v", s.iv, last, w)
				}
				last = s.iv.To
				uj += s.iv.Len() * s.mw
				ms += s.iv.Len()
			}
			if uj != res.EnergyUJ || ms != res.ValuedMs {
				t.Fatalf("steps add up to %d µJ over %d ms, integrateSeries %d µJ over %d ms", uj, ms, res.EnergyUJ, res.ValuedMs)
			}
		}
	}
}
