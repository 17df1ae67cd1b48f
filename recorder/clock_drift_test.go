package recorder_test

import (
	"context"
	"testing"
	"time"

	"github.com/wattrec/wattrec/internal/simtest"
	"github.com/wattrec/wattrec/recorder"
	"github.com/wattrec/wattrec/simulator"
	"github.com/wattrec/wattrec/store"
)

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
