package query_test

import (
	"fmt"
	"math/rand/v2"
	"sort"
	"testing"

	"github.com/wattrec/wattrec/query"
)

// truePower is a device's true power: a step function (mW) that takes
// value mw[i] from t[i] on, in ms; cumulative gives its exact energy.
type truePower struct {
	t  []float64
	mw []float64
}

// energy is the exact energy (µJ) over [a, b).
func (p truePower) energy(a, b float64) float64 {
	return p.cumulative(b) - p.cumulative(a)
}

func (p truePower) cumulative(x float64) float64 {
	var e float64
	for i := range p.t {
		if p.t[i] >= x {
			break
		}
		end := x
		if i+1 < len(p.t) && p.t[i+1] < x {
			end = p.t[i+1]
		}
		e += p.mw[i] * (end - p.t[i])
	}
	return e
}

func (p truePower) at(x float64) float64 {
	i := sort.SearchFloat64s(p.t, x+1e-9) - 1
	if i < 0 {
		return 0
	}
	return p.mw[i]
}

// TestBound_Hold checks the GPU error bound against a model of zeusd: the
// true power steps at random instants (at most once per poll period, as
// a change that reverts before the next poll is invisible to anyone), the
// daemon polls every period and sends a value only when it changed, and
// the hold integral over any window lies within its bound of the true
// energy of the window's valued time. The bound is also the tight one:
// with every step just after the poll before it, the error comes within
// a tenth of the bound (the window's edges can cut a step's period).
func TestBound_Hold(t *testing.T) {
	t.Parallel()
	for seed := range uint64(40) {
		rng := rand.New(rand.NewPCG(seed, 7))
		period := int64(1 + rng.IntN(100))
		late := seed%4 == 0 // every step just after a poll: the worst case
		// One session from 0 to 200 periods; the stream starts with a seed.
		end := 200 * period
		tp := truePower{t: []float64{0}, mw: []float64{float64(100_000 + rng.IntN(200_000))}}
		for k := int64(1); k < 200; k++ {
			if rng.IntN(3) != 0 {
				continue
			}
			at, mw := float64((k-1)*period)+rng.Float64()*float64(period), float64(50_000+rng.IntN(300_000))
			if late { // rising steps, so that their errors add up
				at, mw = float64((k-1)*period)+0.001, tp.mw[len(tp.mw)-1]+float64(1000+rng.IntN(10_000))
			}
			tp.t, tp.mw = append(tp.t, at), append(tp.mw, mw)
		}
		var pts []query.Point
		last := int64(-1)
		for k := int64(0); k < 200; k++ {
			mw := int64(tp.at(float64(k * period)))
			if mw != last {
				pts = append(pts, query.Point{T: k * period, MW: mw})
				last = mw
			}
		}
		spec := query.Spec{Rule: query.Rule{Kind: query.RuleHold, PeriodMs: period}, Sessions: []query.Interval{{0, end}}}
		var worst float64
		for range 50 {
			a := rng.Int64N(end)
			w := query.Interval{From: a, To: a + 1 + rng.Int64N(end-a)}
			res := integrate(spec, w, pts)
			err := float64(res.EnergyUJ) - tp.energy(float64(w.From), float64(w.To))
			if err < 0 {
				err = -err
			}
			if err > float64(res.BoundUJ)+1e-3 {
				t.Fatalf("seed %d period %d window %v: |error| %.0f µJ over the bound %d µJ", seed, period, w, err, res.BoundUJ)
			}
			if res.BoundUJ > 0 {
				worst = max(worst, err/float64(res.BoundUJ))
			}
		}
		if late {
			t.Logf("seed %d, period %d ms, every step just after a poll: the largest error is %.3f of its bound", seed, period, worst)
		}
		if late && worst < 0.9 {
			t.Errorf("seed %d: with every step just after a poll the error reaches only %.2f of the bound: not tight", seed, worst)
		}
	}
}

// TestBound_Backward checks the CPU/DRAM bound: each value is the exact
// average of its period, spread unevenly inside it, so only where a
// window edge cuts a period is the rule's share off, by at most the
// bound; a window of whole periods has no bound at all.
func TestBound_Backward(t *testing.T) {
	t.Parallel()
	for seed := range uint64(40) {
		rng := rand.New(rand.NewPCG(seed, 9))
		period := int64(10 + rng.IntN(200))
		n := int64(100)
		// Period k covers (k·period, (k+1)·period]: its energy lies in its
		// first part of random length, at a random power.
		var tp truePower
		var pts []query.Point
		for k := range n {
			avg := float64(20_000 + rng.IntN(100_000))
			split := 1 + rng.Float64()*float64(period-1)
			from := float64(k * period)
			tp.t = append(tp.t, from, from+split)
			tp.mw = append(tp.mw, avg*float64(period)/split, 0)
			pts = append(pts, query.Point{T: (k + 1) * period, MW: int64(avg)})
		}
		// Integer mW: the true average is what was sent.
		for k, p := range pts {
			split := tp.t[2*k+1] - tp.t[2*k]
			tp.mw[2*k] = float64(p.MW) * float64(period) / split
		}
		spec := query.Spec{Rule: query.Rule{Kind: query.RuleBackward, PeriodMs: period}, Sessions: []query.Interval{{0, n*period + 1}}}
		for i := range 50 {
			a := rng.Int64N(n * period)
			w := query.Interval{From: a, To: a + 1 + rng.Int64N(n*period-a)}
			if i == 0 {
				w = query.Interval{From: 3 * period, To: 9 * period}
			}
			res := integrate(spec, w, pts)
			err := float64(res.EnergyUJ) - tp.energy(float64(w.From), float64(w.To))
			if err < 0 {
				err = -err
			}
			if err > float64(res.BoundUJ)+1e-3*float64(w.Len()) {
				t.Fatalf("seed %d period %d window %v: |error| %.0f µJ over the bound %d µJ", seed, period, w, err, res.BoundUJ)
			}
			if i == 0 && res.BoundUJ != 0 {
				t.Errorf("window of whole periods: bound %d µJ, want 0", res.BoundUJ)
			}
		}
	}
}

// TestBound_Sessions checks that the bound, like the energy, ends at a
// disconnection: the seed after a reconnect is no change from the value
// before the gap.
func TestBound_Sessions(t *testing.T) {
	t.Parallel()
	spec := query.Spec{Rule: query.Rule{Kind: query.RuleHold, PeriodMs: 50}, Sessions: []query.Interval{{0, 1000}, {2000, 3000}}}
	pts := []query.Point{{0, 100_000}, {500, 150_000}, {2000, 300_000}, {2500, 310_000}}
	res := integrate(spec, query.Interval{From: 0, To: 3000}, pts)
	// 50 W × 50 ms at 500, 10 W × 50 ms at 2500; nothing at the seed.
	if want := int64(50_000*50 + 10_000*50); res.BoundUJ != want {
		t.Errorf("bound %d µJ, want %d", res.BoundUJ, want)
	}
	// A window ending 20 ms after a step's poll sees 20 ms of its bound;
	// one ending just before it sees 30 ms of the next step's.
	for _, tc := range []struct {
		w    query.Interval
		want int64
	}{
		{query.Interval{From: 0, To: 520}, 50_000 * 50},
		{query.Interval{From: 0, To: 480}, 50_000 * 30},
		{query.Interval{From: 470, To: 1000}, 50_000 * 30},
	} {
		t.Run(fmt.Sprint(tc.w), func(t *testing.T) {
			if got := integrate(spec, tc.w, pts).BoundUJ; got != tc.want {
				t.Errorf("bound %d µJ, want %d", got, tc.want)
			}
		})
	}
}

// TestBound_TimeUncertainty: readings whose corrected times are off by up
// to TimeErrMs (the daemon's ms resolution, the clock correction) stay
// inside the bound, also where a window edge falls between a reading's
// true and recorded time: the GPU's change and the CPU's period may lie
// on either side of it.
func TestBound_TimeUncertainty(t *testing.T) {
	t.Parallel()
	for seed := range uint64(30) {
		rng := rand.New(rand.NewPCG(seed, 11))
		period, dt := int64(10+rng.IntN(90)), int64(1+rng.IntN(5))
		n := int64(150)
		// Steps exactly at the polls (no lag), recorded up to dt off.
		var tp truePower
		var hold, back []query.Point
		last := int64(-1)
		for k := range n {
			mw := int64(50_000 + rng.IntN(250_000))
			if rng.IntN(3) == 0 && last >= 0 {
				mw = last
			}
			at := k * period
			tp.t, tp.mw = append(tp.t, float64(at)), append(tp.mw, float64(mw))
			off := rng.Int64N(2*dt+1) - dt
			if mw != last {
				hold = append(hold, query.Point{T: at + off, MW: mw})
			}
			// The CPU value of the period (at, at+period], recorded at its end.
			back = append(back, query.Point{T: at + period + off, MW: mw})
			last = mw
		}
		ses := []query.Interval{{From: -1000, To: n*period + 1000}}
		for _, tc := range []struct {
			name string
			spec query.Spec
			pts  []query.Point
		}{
			{"hold", query.Spec{Rule: query.Rule{Kind: query.RuleHold, PeriodMs: period}, Sessions: ses, TimeErrMs: dt}, hold},
			{"backward", query.Spec{Rule: query.Rule{Kind: query.RuleBackward, PeriodMs: period}, Sessions: ses, TimeErrMs: dt}, back},
		} {
			for range 40 {
				a := period + rng.Int64N((n-3)*period)
				w := query.Interval{From: a, To: a + 1 + rng.Int64N((n-1)*period-a)}
				res := integrate(tc.spec, w, tc.pts)
				err := float64(res.EnergyUJ) - tp.energy(float64(w.From), float64(w.To))
				if err < 0 {
					err = -err
				}
				if err > float64(res.BoundUJ)+1e-3 {
					t.Fatalf("seed %d %s period %d δ %d window %v: |error| %.0f µJ over the bound %d µJ", seed, tc.name, period, dt, w, err, res.BoundUJ)
				}
			}
		}
	}
}
