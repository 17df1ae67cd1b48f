package query_test

import (
	"math/rand/v2"
	"testing"

	"github.com/wattrec/wattrec/query"
)

func integrate(s query.Spec, w query.Interval, pts []query.Point) query.Result {
	it := query.NewIntegrator(s, w)
	for _, p := range pts {
		it.Add(p)
	}
	return it.Result()
}

const sec = 1000

func TestIntegrator(t *testing.T) {
	forever := []query.Interval{{-1 << 40, 1 << 40}}
	for _, tc := range []struct {
		name       string
		s          query.Spec
		window     query.Interval
		pts        []query.Point
		wantJ      float64 // joules
		wantValued int64
		wantGaps   int
		wantLong   int64
		wantPeakMW int64
		wantN      int
	}{
		{
			// DESIGN.md's worked example: 100 W at 0 s, 300 W at 2 s,
			// disconnect at 6 s, reconnect at 8 s with a 200 W seed, 250 W
			// at 9 s; window [1 s, 10 s) = 1,750 J, coverage 7/9, one 2 s gap.
			name:   "DesignExample",
			s:      query.Spec{Rule: query.Rule{Kind: query.RuleHold}, Sessions: []query.Interval{{-10 * sec, 6 * sec}, {8 * sec, 20 * sec}}},
			window: query.Interval{1 * sec, 10 * sec},
			pts:    []query.Point{{0, 100_000}, {2 * sec, 300_000}, {8 * sec, 200_000}, {9 * sec, 250_000}},
			wantJ:  1750, wantValued: 7 * sec, wantGaps: 1, wantLong: 2 * sec, wantPeakMW: 300_000, wantN: 3,
		},
		{
			name:   "EdgesInsideOneSegment",
			s:      query.Spec{Rule: query.Rule{Kind: query.RuleHold}, Sessions: forever},
			window: query.Interval{1500, 1750},
			pts:    []query.Point{{1000, 80_000}, {2000, 90_000}},
			wantJ:  80 * 0.25, wantValued: 250, wantPeakMW: 80_000,
		},
		{
			name:   "CarryInFromBeforeWindow",
			s:      query.Spec{Rule: query.Rule{Kind: query.RuleHold}, Sessions: forever},
			window: query.Interval{10 * sec, 20 * sec},
			pts:    []query.Point{{0, 50_000}, {15 * sec, 70_000}},
			wantJ:  50*5 + 70*5, wantValued: 10 * sec, wantPeakMW: 70_000, wantN: 1,
		},
		{
			name:   "NoCarryAcrossDisconnect",
			s:      query.Spec{Rule: query.Rule{Kind: query.RuleHold}, Sessions: []query.Interval{{0, 5 * sec}, {8 * sec, 30 * sec}}},
			window: query.Interval{10 * sec, 20 * sec},
			pts:    []query.Point{{1 * sec, 50_000}, {12 * sec, 70_000}},
			// The 50 W value belongs to the first session; the second has
			// no value until 12 s.
			wantJ: 70 * 8, wantValued: 8 * sec, wantGaps: 1, wantLong: 2 * sec, wantPeakMW: 70_000, wantN: 1,
		},
		{
			name:   "SeedStampedInGapBelongsToNextSession",
			s:      query.Spec{Rule: query.Rule{Kind: query.RuleHold}, Sessions: []query.Interval{{0, 5 * sec}, {8 * sec, 10 * sec}}},
			window: query.Interval{0, 10 * sec},
			pts:    []query.Point{{0, 10_000}, {7900, 20_000}},
			wantJ:  10*5 + 20*2, wantValued: 7 * sec, wantGaps: 1, wantLong: 3 * sec, wantPeakMW: 20_000, wantN: 2,
		},
		{
			name:   "GapInsideWindow",
			s:      query.Spec{Rule: query.Rule{Kind: query.RuleHold}, Sessions: []query.Interval{{0, 4 * sec}, {6 * sec, 10 * sec}}},
			window: query.Interval{0, 10 * sec},
			pts:    []query.Point{{0, 100_000}, {6 * sec, 100_000}},
			wantJ:  800, wantValued: 8 * sec, wantGaps: 1, wantLong: 2 * sec, wantPeakMW: 100_000, wantN: 2,
		},
		{
			name:   "OneSample",
			s:      query.Spec{Rule: query.Rule{Kind: query.RuleHold}, Sessions: []query.Interval{{0, 10 * sec}}},
			window: query.Interval{0, 10 * sec},
			pts:    []query.Point{{2 * sec, 60_000}},
			wantJ:  60 * 8, wantValued: 8 * sec, wantGaps: 1, wantLong: 2 * sec, wantPeakMW: 60_000, wantN: 1,
		},
		{
			name:   "EmptyWindow",
			s:      query.Spec{Rule: query.Rule{Kind: query.RuleHold}, Sessions: forever},
			window: query.Interval{5 * sec, 5 * sec},
			pts:    []query.Point{{0, 60_000}},
		},
		{
			name:     "NoPoints",
			s:        query.Spec{Rule: query.Rule{Kind: query.RuleHold}, Sessions: forever},
			window:   query.Interval{0, 5 * sec},
			wantGaps: 1, wantLong: 5 * sec,
		},
		{
			// DESIGN.md's CPU example at 10 Hz: 50 W at 1.0 s covers
			// (0.9, 1.4], 60 W at 1.5 s covers (1.4, ...].
			name:   "CPUBackward",
			s:      query.Spec{Rule: query.Rule{Kind: query.RuleBackward, PeriodMs: 100}, Sessions: forever},
			window: query.Interval{900, 2000},
			pts:    []query.Point{{1000, 50_000}, {1500, 60_000}},
			wantJ:  50*0.5 + 60*0.6, wantValued: 1100, wantPeakMW: 60_000, wantN: 2,
		},
		{
			name:   "CPUNextReadingJustAfterWindow",
			s:      query.Spec{Rule: query.Rule{Kind: query.RuleBackward, PeriodMs: 100}, Sessions: forever},
			window: query.Interval{0, 1000},
			pts:    []query.Point{{500, 10_000}, {1050, 30_000}},
			// 10 W covers [400, 950), 30 W covers [950, ...): the reading
			// after the window still counts for its last 50 ms.
			wantJ: 10*0.55 + 30*0.05, wantValued: 600, wantGaps: 1, wantLong: 400, wantPeakMW: 30_000, wantN: 1,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := integrate(tc.s, tc.window, tc.pts)
			if want := int64(tc.wantJ * 1e6); got.EnergyUJ != want {
				t.Errorf("energy = %d µJ, want %d", got.EnergyUJ, want)
			}
			if got.ValuedMs != tc.wantValued || got.Gaps != tc.wantGaps || got.LongestGapMs != tc.wantLong ||
				got.PeakMW != tc.wantPeakMW || got.Samples != tc.wantN {
				t.Errorf("got valued=%d gaps=%d longest=%d peak=%d samples=%d, want %d %d %d %d %d",
					got.ValuedMs, got.Gaps, got.LongestGapMs, got.PeakMW, got.Samples,
					tc.wantValued, tc.wantGaps, tc.wantLong, tc.wantPeakMW, tc.wantN)
			}
		})
	}
}

// TestIntegrator_Nested: overlapping and nested windows are independent
// integrals of the same points.
func TestIntegrator_Nested(t *testing.T) {
	s := query.Spec{Rule: query.Rule{Kind: query.RuleHold}, Sessions: []query.Interval{{0, 100 * sec}}}
	pts := []query.Point{{0, 100_000}, {10 * sec, 200_000}, {20 * sec, 50_000}}
	outer := integrate(s, query.Interval{0, 30 * sec}, pts)
	inner := integrate(s, query.Interval{5 * sec, 15 * sec}, pts)
	overlap := integrate(s, query.Interval{12 * sec, 25 * sec}, pts)
	if outer.Joules() != 100*10+200*10+50*10 || inner.Joules() != 100*5+200*5 || overlap.Joules() != 200*8+50*5 {
		t.Fatalf("outer %v inner %v overlap %v", outer.Joules(), inner.Joules(), overlap.Joules())
	}
}

// randomSeries makes a step series with sessions and gaps.
func randomSeries(rng *rand.Rand) (query.Spec, []query.Point) {
	s := query.Spec{Rule: query.Rule{Kind: query.RuleHold}}
	if rng.IntN(2) == 0 {
		s.Rule = query.Rule{Kind: query.RuleBackward, PeriodMs: 1 + rng.Int64N(200)}
	}
	var pts []query.Point
	t := rng.Int64N(1000)
	for range 1 + rng.IntN(5) {
		start := t + rng.Int64N(500)
		end := start + 1 + rng.Int64N(5000)
		s.Sessions = append(s.Sessions, query.Interval{start, end})
		for pt := start - rng.Int64N(3); pt < end; pt += 1 + rng.Int64N(300) {
			pts = append(pts, query.Point{pt, rng.Int64N(400_000)})
		}
		t = end
	}
	return s, pts
}

// TestIntegrator_Additive is the property: ∫[a,c] = ∫[a,b] + ∫[b,c] for
// any b, for energy, valued time, live time and samples.
func TestIntegrator_Additive(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	for i := 0; i < 2000; i++ {
		s, pts := randomSeries(rng)
		a := rng.Int64N(3000) - 500
		c := a + rng.Int64N(30000)
		b := a + rng.Int64N(c-a+1)
		ac := integrate(s, query.Interval{a, c}, pts)
		ab := integrate(s, query.Interval{a, b}, pts)
		bc := integrate(s, query.Interval{b, c}, pts)
		if ac.EnergyUJ != ab.EnergyUJ+bc.EnergyUJ || ac.ValuedMs != ab.ValuedMs+bc.ValuedMs ||
			ac.LiveMs != ab.LiveMs+bc.LiveMs || ac.Samples != ab.Samples+bc.Samples ||
			ac.PeakMW != max(ab.PeakMW, bc.PeakMW) {
			t.Fatalf("case %d (%+v, a=%d b=%d c=%d): [a,c]=%+v\n[a,b]=%+v\n[b,c]=%+v", i, s, a, b, c, ac, ab, bc)
		}
		if ac.ValuedMs > ac.LiveMs || ac.LiveMs > ac.WindowMs {
			t.Fatalf("case %d: valued %d > live %d or live > window %d", i, ac.ValuedMs, ac.LiveMs, ac.WindowMs)
		}
	}
}

func FuzzIntegrator_Additive(f *testing.F) {
	f.Add(uint64(1), uint64(2))
	f.Fuzz(func(t *testing.T, s1, s2 uint64) {
		rng := rand.New(rand.NewPCG(s1, s2))
		s, pts := randomSeries(rng)
		a := rng.Int64N(3000) - 500
		c := a + rng.Int64N(30000)
		b := a + rng.Int64N(c-a+1)
		ac := integrate(s, query.Interval{a, c}, pts)
		ab := integrate(s, query.Interval{a, b}, pts)
		bc := integrate(s, query.Interval{b, c}, pts)
		if ac.EnergyUJ != ab.EnergyUJ+bc.EnergyUJ || ac.ValuedMs != ab.ValuedMs+bc.ValuedMs {
			t.Fatalf("not additive: %+v vs %+v + %+v", ac, ab, bc)
		}
	})
}
