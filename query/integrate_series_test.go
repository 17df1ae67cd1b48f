package query

import (
	"context"
	"math/rand/v2"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/wattrec/wattrec/store"
)

// integrateSeriesRef is the reference for integrateSeries: the same
// Integrator fed every reading, decoded one by one.
func integrateSeriesRef(ctx context.Context, db *store.DB, k store.SeriesKey, spec Spec, window Interval) (Result, error) {
	it := NewIntegrator(spec, window)
	carry, ok, err := db.Before(ctx, k, window.From)
	if err != nil {
		return Result{}, err
	}
	if ok {
		it.Add(Point{carry.TimeMs, carry.MilliWatts})
	}
	err = db.Scan(ctx, k, window.From, window.To+spec.reach(), func(r *store.Reading) error {
		it.Add(Point{r.TimeMs, r.MilliWatts})
		return nil
	})
	if err != nil {
		return Result{}, err
	}
	return it.Result(), nil
}

// TestIntegrateSeries checks that the chunk path gives exactly the
// reading-by-reading Result, for both rules, on random series with
// sessions, gaps, seeds stamped in gaps, ties and clock steps, over
// random windows.
func TestIntegrateSeries(t *testing.T) {
	ctx := context.Background()
	{
		db, err := store.Open(filepath.Join(t.TempDir(), "w.db"), store.Options{NoSync: true})
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		rng := rand.New(rand.NewPCG(5, 6))
		k := store.SeriesKey{Endpoint: "n1:4938", Kind: store.KindGPU}
		// Sessions with gaps, and readings on a 50 ms grid with
		// change-only skips, ties and seeds in the gaps.
		t0 := int64(1_700_000_000_000)
		sessions, _ := writeGPUSeries(t, db, rng, k, t0, gpuShape{sessions: 12, gapMs: 5_000, minMs: 10_000, spreadMs: 200_000, tieOdds: 200, joined: -1})
		at := sessions[len(sessions)-1].To
		span := Interval{t0 - 1000, at + 1000}
		windows := []Interval{span, {sessions[3].From, sessions[3].To}, {sessions[3].From + 1, sessions[3].To - 1}}
		for range 60 {
			a := span.From + rng.Int64N(span.Len())
			windows = append(windows, Interval{a, a + 1 + rng.Int64N(span.To-a)})
		}
		for _, w := range windows {
			for _, spec := range []Spec{
				{Rule: Rule{Kind: RuleHold}, Sessions: sessions},
				{Rule: Rule{Kind: RuleHold, PeriodMs: 50}, Sessions: sessions},
				{Rule: Rule{Kind: RuleHold, PeriodMs: 1 + rng.Int64N(500)}, Sessions: sessions},
				{Rule: Rule{Kind: RuleHold, PeriodMs: 50}, Sessions: sessions, TimeErrMs: 1 + rng.Int64N(20)},
				{Rule: Rule{Kind: RuleBackward, PeriodMs: 100}, Sessions: sessions, TimeErrMs: 1 + rng.Int64N(20)},
				{Rule: Rule{Kind: RuleBackward, PeriodMs: 100}, Sessions: sessions},
				{Rule: Rule{Kind: RuleBackward, PeriodMs: 1 + rng.Int64N(5000)}, Sessions: sessions},
			} {
				want, err := integrateSeriesRef(ctx, db, k, spec, w)
				if err != nil {
					t.Fatal(err)
				}
				got, err := integrateSeries(ctx, db, k, spec, w)
				if err != nil {
					t.Fatal(err)
				}
				// The trapezoid sums the same terms in another order.
				if d := got.TrapezoidUJ - want.TrapezoidUJ; d > 1e-9*want.TrapezoidUJ || -d > 1e-9*want.TrapezoidUJ {
					t.Fatalf("trapezoid %v, want %v", got.TrapezoidUJ, want.TrapezoidUJ)
				}
				got.TrapezoidUJ = want.TrapezoidUJ
				if !reflect.DeepEqual(got, want) {
					t.Fatalf("%s period %d window %v:\n got %+v\nwant %+v", spec.Rule.Kind, spec.Rule.PeriodMs, w, got, want)
				}

				// Cut at random times (as the counter anchors cut a row):
				// each piece is its own window's integral.
				var cuts []int64
				for range rng.IntN(8) {
					cuts = append(cuts, w.From+rng.Int64N(w.Len()))
				}
				cuts = sortedInside(cuts, w)
				var pieces []Interval
				err = integrateBins(ctx, db, k, spec, binner{at: w.From, to: w.To, cuts: cuts}, func(bin Interval, got Result) error {
					pieces = append(pieces, bin)
					want, err := integrateSeriesRef(ctx, db, k, spec, bin)
					if err != nil {
						return err
					}
					got.TrapezoidUJ = want.TrapezoidUJ
					if !reflect.DeepEqual(got, want) {
						t.Fatalf("%s period %d window %v cut at %v, piece %v:\n got %+v\nwant %+v", spec.Rule.Kind, spec.Rule.PeriodMs, w, cuts, bin, got, want)
					}
					return nil
				})
				if err != nil {
					t.Fatal(err)
				}
				if len(pieces) != len(cuts)+1 || pieces[0].From != w.From || pieces[len(pieces)-1].To != w.To {
					t.Fatalf("window %v cut at %v: pieces %v", w, cuts, pieces)
				}
			}
		}
	}
}
