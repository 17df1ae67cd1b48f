package recorder_test

import (
	"context"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/wattrec/wattrec/internal/simtest"
	"github.com/wattrec/wattrec/recorder"
	"github.com/wattrec/wattrec/simulator"
	"github.com/wattrec/wattrec/store"
)

// driftDaemon is a daemon clock that runs at (1 + ppm·1e-6) times the
// true rate from clockBase, offset by skew, and steps by step at stepAt.
type driftDaemon struct {
	skew         time.Duration
	ppm          float64
	stepAt, step time.Duration // step: 0 for none
}

// ns returns the daemon clock, Unix ns, at el after clockBase.
func (d driftDaemon) ns(el time.Duration) int64 {
	n := clockBase.UnixNano() + int64(d.skew) + int64(el) + int64(math.Round(float64(el)*d.ppm*1e-6))
	if d.step != 0 && el >= d.stepAt {
		n += int64(d.step)
	}
	return n
}

// trueAt returns when, after clockBase, the daemon clock read daemonMs,
// the earlier time if it did twice (a step back); ok is false if it
// never did (a step forward skipped it).
func (d driftDaemon) trueAt(daemonMs int64) (el time.Duration, ok bool) {
	inverse := func(step time.Duration) time.Duration {
		n := daemonMs*1e6 - clockBase.UnixNano() - int64(d.skew) - int64(step)
		return time.Duration(math.Round(float64(n) / (1 + d.ppm*1e-6)))
	}
	if el = inverse(0); d.step == 0 || el < d.stepAt {
		return el, true
	}
	el = inverse(d.step)
	return el, el >= d.stepAt
}

// estimateAt does ClockSamples round trips from el on, with RTT jitter
// (and now and then a slow one), and returns the estimate and the true
// time after clockBase when it was complete.
func (d driftDaemon) estimateAt(t *testing.T, rng *rand.Rand, el time.Duration) (recorder.ClockEstimate, time.Duration) {
	t.Helper()
	var samples []recorder.ClockSample
	for range recorder.DefaultClockSamples {
		rtt := 80*time.Microsecond + time.Duration(rng.ExpFloat64()*float64(150*time.Microsecond))
		if rng.IntN(20) == 0 {
			rtt += time.Duration(rng.IntN(20)) * time.Millisecond
		}
		at := el + time.Duration((0.2+0.6*rng.Float64())*float64(rtt)) // where the daemon reads its clock
		samples = append(samples, recorder.ClockSample{
			Sent: clockBase.Add(el), Received: clockBase.Add(el + rtt),
			DaemonMs: int64(math.Floor(float64(d.ns(at)) / 1e6)),
		})
		el += rtt + 300*time.Microsecond
	}
	est, err := recorder.EstimateClock(samples)
	if err != nil {
		t.Fatal(err)
	}
	return est, el
}

// clockErrors are corrected-time errors (corrected − true, ms) of the
// readings from 30 s on, by model and by the constant latest offset.
type clockErrors struct{ model, constant []float64 }

// runDrift records the daemon for dur: estimates on the client's
// schedule (after 5, 10, 20, 40 s, then every interval), a reading every
// 50 ms of daemon time arriving 2 ms later, each corrected with the line
// in force at its arrival. It returns the errors and how many estimates
// the model took for a step.
func runDrift(t *testing.T, d driftDaemon, seed uint64, dur, interval time.Duration) (errs clockErrors, steps int) {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 1))
	var m recorder.ClockModel
	est, el := d.estimateAt(t, rng, 0)
	line, _ := m.Add(clockBase.Add(el).UnixMicro(), est)
	constant := est.OffsetUs
	wait := 5 * time.Second
	next := el + wait
	period := int64(50) // ms
	k := d.ns(el)/1e6/period + 1
	for {
		daemonMs := k * period
		k++
		trueEl, ok := d.trueAt(daemonMs)
		if trueEl >= dur {
			return errs, steps
		}
		if !ok {
			continue
		}
		if arrive := trueEl + 2*time.Millisecond; arrive >= next {
			est, el := d.estimateAt(t, rng, next)
			var stepped bool
			line, stepped = m.Add(clockBase.Add(el).UnixMicro(), est)
			if stepped {
				steps++
			}
			constant = est.OffsetUs
			wait = min(2*wait, interval)
			next += wait
		}
		if trueEl < 30*time.Second || (d.step != 0 && trueEl >= d.stepAt && trueEl < d.stepAt+interval) {
			continue // before the targets hold, or a step not yet measured
		}
		trueMs := float64(clockBase.Add(trueEl).UnixNano()) / 1e6
		errs.model = append(errs.model, float64(line.Correct(daemonMs))-trueMs)
		errs.constant = append(errs.constant, float64(recorder.Correct(daemonMs, constant))-trueMs)
	}
}

// absQuantiles returns the maximum and the 99th percentile of |e|.
func absQuantiles(e []float64) (maxAbs, p99 float64) {
	a := make([]float64, len(e))
	for i, v := range e {
		a[i] = math.Abs(v)
	}
	slices.Sort(a)
	return a[len(a)-1], a[len(a)*99/100]
}

// TestClockModel_Drift: under 100 ppm and 1000 ppm drift, with RTT
// jitter and the daemon's 1 ms resolution, every reading from 30 s on is
// corrected to within 2 ms (100 ppm) or 5 ms (1000 ppm) of true time with
// the default settings; the constant latest offset is not.
func TestClockModel_Drift(t *testing.T) {
	for _, tt := range []struct {
		name  string
		ppm   float64
		bound float64 // ms
	}{
		{"100ppm", 100, 2}, {"-100ppm", -100, 2},
		{"1000ppm", 1000, 5}, {"-1000ppm", -1000, 5},
		{"0ppm", 0, 2},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var all clockErrors
			for seed := range uint64(5) {
				d := driftDaemon{skew: -3*time.Second + 417*time.Microsecond, ppm: tt.ppm}
				errs, steps := runDrift(t, d, seed, 15*time.Minute, recorder.DefaultClockInterval)
				if steps != 0 {
					t.Errorf("seed %d: %d steps on a steady clock", seed, steps)
				}
				all.model = append(all.model, errs.model...)
				all.constant = append(all.constant, errs.constant...)
			}
			mx, p99 := absQuantiles(all.model)
			cmx, cp99 := absQuantiles(all.constant)
			t.Logf("%d readings: model max %.1f ms p99 %.1f ms; constant offset max %.1f ms p99 %.1f ms", len(all.model), mx, p99, cmx, cp99)
			if mx > tt.bound {
				t.Errorf("model error up to %.1f ms, want ≤ %v ms", mx, tt.bound)
			}
		})
	}
}

// TestClockModel_Step: a daemon clock stepped by NTP is taken as a step
// at the next estimate, which the line then follows at once.
func TestClockModel_Step(t *testing.T) {
	for _, step := range []time.Duration{250 * time.Millisecond, -40 * time.Millisecond, 2 * time.Second} {
		d := driftDaemon{skew: 5 * time.Second, ppm: 1000, stepAt: 7*time.Minute + 13*time.Second, step: step}
		errs, steps := runDrift(t, d, 7, 15*time.Minute, recorder.DefaultClockInterval)
		if steps != 1 {
			t.Errorf("step %v: %d steps, want 1", step, steps)
		}
		if mx, p99 := absQuantiles(errs.model); mx > 5 {
			t.Errorf("step %v: model error up to %.1f ms (p99 %.1f), want ≤ 5 ms", step, mx, p99)
		}
	}
}

// TestClockModel_Guards: no drift is fitted from estimates too close in
// time to tell it from their error bounds; a steep line is clamped to
// MaxClockDrift; an estimate earlier than the last is a step.
func TestClockModel_Guards(t *testing.T) {
	base := clockBase.UnixMicro()
	est := func(offUs int64) recorder.ClockEstimate {
		return recorder.ClockEstimate{OffsetUs: offUs, RTTUs: 200, Used: 3}
	}
	t.Run("TooClose", func(t *testing.T) {
		var m recorder.ClockModel
		m.Add(base, est(1000))
		line, stepped := m.Add(base+1_000_000, est(3000)) // 2 ms in 1 s: within the bounds
		if stepped || line.Drift != 0 || line.OffsetUs != 3000 {
			t.Fatalf("got %+v stepped=%v, want the latest offset, no drift", line, stepped)
		}
	})
	t.Run("Clamped", func(t *testing.T) {
		var m recorder.ClockModel
		var line recorder.ClockLine
		for i := range int64(4) {
			line, _ = m.Add(base+i*5_000_000, est(i*5_000*3)) // 3000 ppm
		}
		if got, want := line.Drift, recorder.MaxClockDrift; got != want {
			t.Fatalf("drift %v, want %v", got, want)
		}
	})
	t.Run("Fitted", func(t *testing.T) {
		var m recorder.ClockModel
		var line recorder.ClockLine
		for i := range int64(4) {
			line, _ = m.Add(base+i*10_000_000, est(-i*5_000)) // −500 ppm
		}
		if got, want := line.Drift, -500e-6; math.Abs(got-want) > 1e-9 {
			t.Fatalf("drift %v, want %v", got, want)
		}
		if got, want := line.OffsetAt(base+40_000_000), int64(-20_000); got != want {
			t.Fatalf("OffsetAt=%d, want %d", got, want)
		}
		// A reading is corrected with the offset at its own time: at
		// daemon time base+40 s+20 ms, the offset is −20 ms there.
		daemonMs := (base+40_000_000+20_000)/1000 + 20
		if got, want := line.Correct(daemonMs), daemonMs-20; got != want {
			t.Fatalf("Correct(%d)=%d, want %d", daemonMs, got, want)
		}
	})
	t.Run("RecorderBack", func(t *testing.T) {
		var m recorder.ClockModel
		m.Add(base, est(1000))
		if _, stepped := m.Add(base-1, est(1000)); !stepped {
			t.Fatal("an estimate before the last is not a step")
		}
	})
}

// TestRecorder_ClockDrift records a simulator whose clock runs 1000 ppm
// fast, over a real socket, with a short ClockInterval, and checks every
// stored reading's corrected time against the true time the simulator
// produced it at: within 5 ms once the drift is fitted. It logs the
// errors beside those of the constant latest offset (the stored
// estimate in force at each reading).
func TestRecorder_ClockDrift(t *testing.T) {
	const (
		interval = 400 * time.Millisecond
		settle   = 3 * time.Second // fit span ≥ 2.2 s: the drift is fitted
		bound    = 5.0             // ms
	)
	sent := simtest.NewLedger()
	cfg := simtest.FastConfig(simulator.FormatSample)
	cfg.ClockDriftPPM, cfg.OnEvent = 1000, sent.OnEvent(t)
	sim, srv, stopSim := simtest.Start(t, cfg, "tcp")
	db := simtest.MustOpenDB(t)
	client := recorder.NewClient([]recorder.Server{srv})
	client.Logger, client.MaxBackoff, client.ClockInterval = testLogger(t), 200*time.Millisecond, interval
	start := time.Now()
	r := runRecorder(t, client, db)

	ctx := context.Background()
	var clocks []store.ClockEstimate
	simtest.WaitFor(t, func() bool {
		clocks, _ = db.ClockEstimates(ctx, srv.Endpoint()) // not found until the endpoint is stored
		return len(clocks) > 0 && time.UnixMilli(clocks[len(clocks)-1].TakenMs).Sub(start) >= settle+2*time.Second
	})
	stopSim()
	stopWhenStored(t, db, r, sent.Values())
	clocks, err := db.ClockEstimates(ctx, srv.Endpoint())
	if err != nil {
		t.Fatal(err)
	}

	series, err := db.Series(ctx, srv.Endpoint(), false)
	if err != nil {
		t.Fatal(err)
	}
	var model, constant []float64
	for _, s := range series {
		err := db.Scan(ctx, s.SeriesKey, -1<<62, 1<<62, func(rd *store.Reading) error {
			trueT := sim.TrueTime(rd.DaemonMs)
			if trueT.Sub(start) < settle {
				return nil
			}
			trueMs := float64(trueT.UnixNano()) / 1e6
			model = append(model, float64(rd.TimeMs)-trueMs)
			in := clocks[0] // the estimate in force when it arrived, about its corrected time
			for _, c := range clocks {
				if c.TakenMs <= rd.TimeMs {
					in = c
				}
			}
			constant = append(constant, float64(recorder.Correct(rd.DaemonMs, in.OffsetUs))-trueMs)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if len(model) == 0 {
		t.Fatal("no readings after the drift was fitted")
	}
	mx, p99 := absQuantiles(model)
	cmx, cp99 := absQuantiles(constant)
	t.Logf("%d readings, %d estimates: model max %.1f ms p99 %.1f ms; constant offset max %.1f ms p99 %.1f ms",
		len(model), len(clocks), mx, p99, cmx, cp99)
	if mx > bound {
		t.Errorf("corrected times up to %.1f ms from true time, want ≤ %v ms", mx, bound)
	}
}
