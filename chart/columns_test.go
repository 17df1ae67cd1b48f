package chart

import (
	"math/rand/v2"
	"slices"
	"testing"

	"gonum.org/v1/plot/vg"

	"github.com/wattrec/wattrec/query"
)

// TestGrid: columns partition the window, each at least a millisecond,
// and col is the inverse of start.
func TestGrid(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for range 200 {
		from := rng.Int64N(1<<41) - 1<<40
		g := newGrid(query.Interval{From: from, To: from + 1 + rng.Int64N(100_000)}, 1+rng.IntN(3000))
		if g.start(0) != g.from || g.start(g.n) != g.to {
			t.Fatalf("%+v: columns span %d..%d", g, g.start(0), g.start(g.n))
		}
		for c := range g.n {
			a, b := g.start(c), g.start(c+1)
			if b <= a {
				t.Fatalf("%+v: column %d is [%d, %d)", g, c, a, b)
			}
			if g.col(a) != c || g.col(b-1) != c {
				t.Fatalf("%+v: col(%d) = %d, col(%d) = %d, want %d", g, a, g.col(a), b-1, g.col(b-1), c)
			}
		}
	}
}

// TestColumns: the bins hold each column's exact energy and value range,
// however the steps fall across columns, and the gaps are where no step
// is, those closer than half a column merged.
func TestColumns(t *testing.T) {
	g := newGrid(query.Interval{From: 0, To: 1000}, 10) // 100 ms columns
	s := newColumns(g)
	for _, st := range []struct {
		iv query.Interval
		mw int64
	}{{query.Interval{From: 0, To: 150}, 10}, {query.Interval{From: 150, To: 160}, 500}, {query.Interval{From: 160, To: 400}, 20},
		{query.Interval{From: 420, To: 700}, 30}, // a 20 ms gap before
		{query.Interval{From: 720, To: 730}, 40}, // a 20 ms gap, 20 ms after the last: merged with it
		{query.Interval{From: 900, To: 950}, 50}, // a gap to 900, and one at the end
	} {
		s.add(st.iv, st.mw)
	}
	s.finish()
	want := []bin{
		{100, 1000, 10, 10},
		{100, 50*10 + 10*500 + 40*20, 10, 500}, // the burst sets the max
		{100, 2000, 20, 20},
		{100, 2000, 20, 20},
		{80, 2400, 30, 30}, // from the end of the gap
		{100, 3000, 30, 30},
		{100, 3000, 30, 30},
		{10, 400, 40, 40},
		{0, 0, 0, 0},
		{50, 2500, 50, 50},
	}
	if !slices.Equal(s.bins, want) {
		t.Errorf("bins:\n%v\nwant\n%v", s.bins, want)
	}
	wantGaps := []query.Interval{{From: 400, To: 420}, {From: 700, To: 900}, {From: 950, To: 1000}}
	if !slices.Equal(s.gaps, wantGaps) {
		t.Errorf("gaps %v, want %v", s.gaps, wantGaps)
	}
}

// TestTraceOf: a line of two series breaks wherever either has no
// value, its mean is the sum of theirs and its envelope the sums of
// their ranges.
func TestTraceOf(t *testing.T) {
	g := newGrid(query.Interval{From: 0, To: 1000}, 10)
	a, b := newColumns(g), newColumns(g)
	a.add(query.Interval{From: 0, To: 1000}, 10_000)
	b.add(query.Interval{From: 0, To: 300}, 5_000)
	b.add(query.Interval{From: 300, To: 350}, 25_000) // a burst in column 3
	b.add(query.Interval{From: 350, To: 500}, 5_000)
	b.add(query.Interval{From: 700, To: 1000}, 5_000)
	a.finish()
	b.finish()
	tr := traceOf(g, []*columns{a, b})
	if len(tr.pieces) != 2 {
		t.Fatalf("%d pieces, want 2 (broken at [500, 700))", len(tr.pieces))
	}
	first, second := tr.pieces[0], tr.pieces[1]
	if first.from != 0 || first.to != 500 || second.from != 700 || second.to != 1000 {
		t.Errorf("pieces [%v, %v) and [%v, %v), want [0, 500) and [700, 1000)", first.from, first.to, second.from, second.to)
	}
	if got, want := first.x, []float64{50, 150, 250, 350, 450}; !slices.Equal(got, want) {
		t.Errorf("first piece's columns at %v, want %v", got, want)
	}
	if got, want := first.mean, []float64{15, 15, 15, 25, 15}; !slices.Equal(got, want) { // the burst: 10 + (50×25 + 50×5)/100 W
		t.Errorf("first piece's means %v, want %v", got, want)
	}
	if tr.peakW != 35 || first.max[3] != 35 || first.min[3] != 15 || !first.spread || second.spread {
		t.Errorf("peak %v W, column 3 %v..%v W, spread %v %v; want 35 W, 15..35 W in the first piece only", tr.peakW, first.min[3], first.max[3], first.spread, second.spread)
	}
	for _, m := range second.mean {
		if m != 15 {
			t.Errorf("second piece at %v W, want 10 + 5", m)
		}
	}
}

// TestOutlier: a reach far beyond its neighbours' is a whisker; a
// steady spread, a small one, or one beside others like it is not.
func TestOutlier(t *testing.T) {
	steady := []vg.Length{6, 7, 6, 5, 7, 6, 6, 7, 5, 6, 6, 7, 6, 6, 5, 6, 7}
	burst := slices.Clone(steady)
	burst[8] = 80
	for _, tc := range []struct {
		reach []vg.Length
		i     int
		want  bool
	}{{steady, 8, false}, {burst, 8, true}, {burst, 7, false}, {[]vg.Length{0, 0, 3, 0, 0}, 2, false}, {[]vg.Length{1, 1, 9, 1}, 2, true}} {
		if got := outlier(tc.reach, tc.i); got != tc.want {
			t.Errorf("outlier(%v, %d) = %v, want %v", tc.reach, tc.i, got, tc.want)
		}
	}
}

func TestJoulesAndPercent(t *testing.T) {
	for j, want := range map[float64]string{0: "0 J", 0.5: "0.500 J", 90: "90.00 J", 500: "500.0 J", 1750: "1750 J", 9999.4: "9999 J",
		12_345: "12.35 kJ", 999_999: "1000 kJ", 16.61e6: "16.61 MJ", 132.8e6: "132.8 MJ", 2.5e10: "25.00 GJ"} {
		if got := Joules(j); got != want {
			t.Errorf("Joules(%v) = %q, want %q", j, got, want)
		}
	}
	for f, want := range map[float64]string{1: "100 %", 0.99996: "99.99 %", 7.0 / 9: "77.77 %", 0: "0.00 %"} {
		if got := percent(f); got != want {
			t.Errorf("percent(%v) = %q, want %q", f, got, want)
		}
	}
}
