package recorder_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wattrec/wattrec/internal/simtest"
	"github.com/wattrec/wattrec/recorder"
	"github.com/wattrec/wattrec/simulator"
	"github.com/wattrec/wattrec/store"
)

// startCounting runs a recorder that reads counters every interval.
func startCounting(t *testing.T, db *store.DB, interval time.Duration, srv recorder.Server) *running {
	t.Helper()
	client := recorder.NewClient([]recorder.Server{srv})
	client.Logger = testLogger(t)
	client.MaxBackoff = 200 * time.Millisecond
	client.CounterInterval = interval
	rec := recorder.New(client, db)
	rec.FlushInterval = 20 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{cancel: cancel, done: make(chan error, 1), client: client}
	go func() { r.done <- rec.Run(ctx) }()
	t.Cleanup(func() { r.stop(t) })
	return r
}

// storedCounters returns the counter readings of k, failing t on error.
func storedCounters(t *testing.T, db *store.DB, k store.SeriesKey) []store.CounterReading {
	t.Helper()
	rs, err := db.Counters(context.Background(), k, math.MinInt64, math.MaxInt64)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		t.Fatal(err)
	}
	return rs
}

func countTrigger(rs []store.CounterReading, trig store.CounterTrigger) int {
	n := 0
	for _, r := range rs {
		if r.Trigger == trig {
			n++
		}
	}
	return n
}

// checkPower checks that the counter delta between the first and the last
// reading of rs is an average power in [loW, hiW], with the times widened
// or narrowed by each reading's RTT/2 and 1 ms of rounding.
func checkPower(t *testing.T, k store.SeriesKey, rs []store.CounterReading, loW, hiW float64) {
	t.Helper()
	a, b := rs[0], rs[len(rs)-1]
	slack := float64(a.RTTUs+b.RTTUs)/2000 + 2 // ms
	elapsed := float64(b.TakenMs - a.TakenMs)
	if elapsed <= 2*slack {
		t.Fatalf("%s: readings %v ms apart with %v ms of slack: too close to check", k, elapsed, slack)
	}
	mj := float64(b.EnergyUJ-a.EnergyUJ) / 1000 // mJ / ms = W
	if lo, hi := mj/(elapsed+slack), mj/(elapsed-slack); lo > hiW || hi < loW {
		t.Errorf("%s: %.0f mJ in %.0f±%.1f ms = [%.1f, %.1f] W, want within [%v, %v] W", k, mj, elapsed, slack, lo, hi, loW, hiW)
	}
}

// TestRecorder_Counters records from a simulator whose GPU 1 has no energy
// counter: counters are stored at start, periodically and at stop, GPU 1
// gets none and nothing fails, and counter deltas are plausible powers.
func TestRecorder_Counters(t *testing.T) {
	cfg := simtest.FastConfig(simulator.FormatSample)
	cfg.CumulativeEnergy = []bool{true, false}
	_, srv, _ := simtest.Start(t, cfg, "tcp")
	db := simtest.MustOpenDB(t)
	r := startCounting(t, db, 50*time.Millisecond, srv)

	ep := srv.Endpoint()
	gpu0 := store.SeriesKey{Endpoint: ep, Kind: store.KindGPU, Device: 0}
	cpu0 := store.SeriesKey{Endpoint: ep, Kind: store.KindCPU, Device: 0}
	dram0 := store.SeriesKey{Endpoint: ep, Kind: store.KindDRAM, Device: 0}
	all := []store.SeriesKey{gpu0, cpu0, dram0}
	// Wait for a few periodic reads spanning enough time for the power
	// check, with the simulator still up so the stop read succeeds.
	simtest.WaitFor(t, func() bool {
		for _, k := range all {
			rs := storedCounters(t, db, k)
			if countTrigger(rs, store.TriggerPeriodic) < 5 || rs[len(rs)-1].TakenMs-rs[0].TakenMs < 400 {
				return false
			}
		}
		return true
	})
	// A mark read while recording.
	rs, err := r.client.ReadCounters(context.Background(), store.TriggerMark)
	if err != nil {
		t.Fatalf("ReadCounters: %v", err)
	}
	if len(rs) != 3 { // gpu:0, cpu:0, dram:0 (gpu:1 has no counter)
		t.Errorf("ReadCounters returned %d readings, want 3: %+v", len(rs), rs)
	}
	for _, c := range rs {
		if c.Trigger != store.TriggerMark || c.TakenMs == 0 {
			t.Errorf("returned reading %+v", c)
		}
	}
	if err := r.stop(t); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if _, err := r.client.ReadCounters(context.Background(), store.TriggerMark); !errors.Is(err, recorder.ErrNotRunning) {
		t.Errorf("ReadCounters after Stop = %v, want ErrNotRunning", err)
	}

	for _, k := range all {
		rs := storedCounters(t, db, k)
		if got := rs[0].Trigger; got != store.TriggerStart {
			t.Errorf("%s: first counter reading is %s, want start", k, got)
		}
		if got := rs[len(rs)-1].Trigger; got != store.TriggerStop {
			t.Errorf("%s: last counter reading is %s, want stop", k, got)
		}
		if got := countTrigger(rs, store.TriggerMark); got != 1 {
			t.Errorf("%s: %d mark readings, want 1", k, got)
		}
		for i := 1; i < len(rs); i++ {
			if rs[i].EnergyUJ < rs[i-1].EnergyUJ {
				t.Errorf("%s: counter went back from %d to %d µJ", k, rs[i-1].EnergyUJ, rs[i].EnergyUJ)
			}
		}
		if k.Kind == store.KindGPU && rs[0].EnergyUJ%1000 != 0 {
			t.Errorf("%s: %d µJ is not whole mJ", k, rs[0].EnergyUJ)
		}
	}
	// The simulator's traces: GPUs 60-300 W, CPU packages 20-150 W, DRAM
	// 3-20 W.
	checkPower(t, gpu0, storedCounters(t, db, gpu0), 20, 400)
	checkPower(t, cpu0, storedCounters(t, db, cpu0), 15, 200)
	checkPower(t, dram0, storedCounters(t, db, dram0), 1, 40)

	stats, err := db.CounterSeries(context.Background(), ep)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range stats {
		if s.Kind == store.KindGPU && s.Device == 1 {
			t.Errorf("GPU 1 has no energy counter, but %d counter readings were stored", s.Readings)
		}
	}
	if got, want := len(stats), 3; got != want {
		t.Errorf("counter series = %+v, want %d (gpu:0, cpu:0, dram:0)", stats, want)
	}
	// The recording opens with the start reading and closes with the stop
	// reading (a mark can share its millisecond).
	rs = storedCounters(t, db, gpu0)
	if rs[0].Trigger != store.TriggerStart || !slices.ContainsFunc(rs, func(r store.CounterReading) bool {
		return r.Trigger == store.TriggerStop && r.TakenMs == rs[len(rs)-1].TakenMs
	}) {
		t.Errorf("counter readings %+v: want the start reading first and the stop reading last", rs)
	}
}

// TestRecorder_CountersStartStopOnly: with CounterInterval ≤ 0 only the
// start and stop reads happen; a CPU package without DRAM gets no DRAM
// counter.
func TestRecorder_CountersStartStopOnly(t *testing.T) {
	cfg := simtest.FastConfig(simulator.FormatSample)
	cfg.DRAM = []bool{false}
	_, srv, _ := simtest.Start(t, cfg, "unix")
	db := simtest.MustOpenDB(t)
	r := startCounting(t, db, 0, srv)
	gpu1 := store.SeriesKey{Endpoint: srv.Endpoint(), Kind: store.KindGPU, Device: 1}
	simtest.WaitFor(t, func() bool { return len(storedCounters(t, db, gpu1)) > 0 })
	if err := r.stop(t); err != nil {
		t.Fatalf("Run: %v", err)
	}
	stats, err := db.CounterSeries(context.Background(), srv.Endpoint())
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range stats {
		names = append(names, fmt.Sprintf("%s:%d", s.Kind, s.Device))
		rs := storedCounters(t, db, s.SeriesKey)
		if len(rs) != 2 || rs[0].Trigger != store.TriggerStart || rs[1].Trigger != store.TriggerStop {
			t.Errorf("%s: %+v, want one start and one stop reading", s.SeriesKey, rs)
		}
	}
	if got, want := strings.Join(names, " "), "gpu:0 gpu:1 cpu:0"; got != want {
		t.Errorf("counter series %q, want %q", got, want)
	}
}

// TestRecorder_CounterRefused: a daemon that lists a counter in /discover
// but answers 400 for it. The refused GPU is asked about once, in the
// first read, and never again; the other GPU is still read.
func TestRecorder_CounterRefused(t *testing.T) {
	cfg := simtest.FastConfig(simulator.FormatSample)
	cfg.CumulativeEnergy = []bool{true, false}
	sim, err := simulator.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	api := sim.Handler()
	var asked1, reads atomic.Int64
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/discover":
			// Claim a counter on every GPU.
			rec := httptest.NewRecorder()
			api.ServeHTTP(rec, r)
			w.Header().Set("Content-Type", "application/json")
			w.Write(bytes.ReplaceAll(rec.Body.Bytes(), []byte(`"cumulative_energy_available":false`), []byte(`"cumulative_energy_available":true`)))
			return
		case "/gpu/get_cumulative_energy":
			reads.Add(1)
			if strings.Contains(r.URL.Query().Get("gpu_ids"), "1") {
				asked1.Add(1)
			}
		}
		api.ServeHTTP(w, r)
	}))
	t.Cleanup(func() { sim.Close(); ts.Close() }) // after the recorder's cleanup
	srv := recorder.Server{Network: "tcp", Address: strings.TrimPrefix(ts.URL, "http://")}

	db := simtest.MustOpenDB(t)
	r := startCounting(t, db, 20*time.Millisecond, srv)
	gpu0 := store.SeriesKey{Endpoint: srv.Endpoint(), Kind: store.KindGPU, Device: 0}
	simtest.WaitFor(t, func() bool { return countTrigger(storedCounters(t, db, gpu0), store.TriggerPeriodic) >= 5 })
	if err := r.stop(t); err != nil {
		t.Fatalf("Run: %v", err)
	}
	// The first read asks for 0,1 (400), then 0 and 1 alone: GPU 1 twice.
	if got := asked1.Load(); got != 2 {
		t.Errorf("GPU 1 asked for %d times, want 2 (together, then alone)", got)
	}
	if got := reads.Load(); got < 8 {
		t.Errorf("%d GPU counter requests, want the periodic reads to go on", got)
	}
	gpu1 := store.SeriesKey{Endpoint: srv.Endpoint(), Kind: store.KindGPU, Device: 1}
	if rs := storedCounters(t, db, gpu1); len(rs) != 0 {
		t.Errorf("GPU 1: %d counter readings stored, want none", len(rs))
	}
	if rs := storedCounters(t, db, gpu0); rs[0].Trigger != store.TriggerStart || rs[len(rs)-1].Trigger != store.TriggerStop {
		t.Errorf("GPU 0: first %s, last %s; want start and stop", rs[0].Trigger, rs[len(rs)-1].Trigger)
	}
}

// TestClient_ReadCounters: the library call before Start, with a bad
// trigger, and with a Sink that sees the readings before it returns.
func TestClient_ReadCounters(t *testing.T) {
	_, srv, _ := simtest.Start(t, simtest.FastConfig(simulator.FormatSample), "tcp")
	client := recorder.NewClient([]recorder.Server{srv})
	client.Logger = testLogger(t)
	client.CounterInterval = 0
	ctx := context.Background()
	if _, err := client.ReadCounters(ctx, store.TriggerMark); !errors.Is(err, recorder.ErrNotRunning) {
		t.Fatalf("before Start: %v, want ErrNotRunning", err)
	}
	var marks, stops atomic.Int64
	client.Sink = func(b store.Batch) {
		for _, r := range b.Counters {
			switch r.Trigger {
			case store.TriggerMark:
				marks.Add(1)
			case store.TriggerStop:
				stops.Add(1)
			}
		}
	}
	if err := client.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer client.Stop()
	if _, err := client.ReadCounters(ctx, 0); err == nil {
		t.Error("trigger 0 accepted")
	}
	// Start returned, but an endpoint becomes readable only once its
	// goroutine runs: poll until the mark reaches every counter.
	want := int64(4) // gpu:0, gpu:1, cpu:0, dram:0
	simtest.WaitFor(t, func() bool {
		marks.Store(0)
		rs, err := client.ReadCounters(ctx, store.TriggerMark)
		if err != nil {
			t.Fatal(err)
		}
		return marks.Load() == want && int64(len(rs)) == want
	})
	client.Stop()
	if got := stops.Load(); got != want {
		t.Errorf("%d stop readings reached the Sink before Stop returned, want %d", got, want)
	}
}

// TestRecorder_Counters050: released zeusd 0.5.0's /discover does not say
// whether a GPU has an energy counter. That is unknown, not "no": every
// GPU's counter is read, and one the daemon refuses is dropped. (It used
// to read as false, and no GPU counter was ever read from 0.5.0.)
func TestRecorder_Counters050(t *testing.T) {
	t.Parallel()
	cfg := simtest.FastConfig(simulator.FormatSample)
	cfg.Release = simulator.Release050
	cfg.CumulativeEnergy = []bool{true, false}
	_, srv, _ := simtest.Start(t, cfg, "unix")
	db := simtest.MustOpenDB(t)
	r := startCounting(t, db, 20*time.Millisecond, srv)
	gpu0 := store.SeriesKey{Endpoint: srv.Endpoint(), Kind: store.KindGPU, Device: 0}
	simtest.WaitFor(t, func() bool { return countTrigger(storedCounters(t, db, gpu0), store.TriggerPeriodic) >= 3 })
	if err := r.stop(t); err != nil {
		t.Fatalf("Run: %v", err)
	}
	infos, err := db.Endpoints(context.Background())
	if err != nil || len(infos) != 1 || bytes.Contains(infos[0].Discover, []byte("cumulative_energy_available")) {
		t.Fatalf("the daemon is not 0.5.0-like: %s, %v", infos[0].Discover, err)
	}
	rs := storedCounters(t, db, gpu0)
	if rs[0].Trigger != store.TriggerStart || rs[len(rs)-1].Trigger != store.TriggerStop {
		t.Errorf("GPU 0: first %s, last %s; want start and stop", rs[0].Trigger, rs[len(rs)-1].Trigger)
	}
	checkPower(t, gpu0, rs, 10, 1000)
	gpu1 := store.SeriesKey{Endpoint: srv.Endpoint(), Kind: store.KindGPU, Device: 1}
	if rs := storedCounters(t, db, gpu1); len(rs) != 0 {
		t.Errorf("GPU 1 (no counter): %d readings stored, want none", len(rs))
	}
}
