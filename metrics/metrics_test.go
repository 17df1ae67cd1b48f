package metrics_test

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/wattrec/wattrec/internal/simtest"
	"github.com/wattrec/wattrec/metrics"
	"github.com/wattrec/wattrec/query"
	"github.com/wattrec/wattrec/recorder"
	"github.com/wattrec/wattrec/simulator"
	"github.com/wattrec/wattrec/store"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// scrape reads srv's /metrics in the text format: each sample's line
// (name and labels as written) to its value.
func scrape(t *testing.T, url string) map[string]float64 {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("%q: %v", line, err)
		}
		out[line[:i]] = v
	}
	return out
}

// TestCollector records a simulator with a Collector observing, stops
// the simulator, and compares the scraped metrics with the file: the
// energy counter is the query's energy since the recorder started, the
// power gauges vanish in the gap, the streams say they are down.
func TestCollector(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	cfg := simtest.FastConfig(simulator.FormatSample)
	ledger := simtest.NewLedger()
	cfg.OnEvent = ledger.OnEvent(t)
	_, srv, stopSim := simtest.Start(t, cfg, "unix")
	db := simtest.MustOpenDB(t)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	client := recorder.NewClient([]recorder.Server{srv})
	client.Logger = log
	rec := recorder.New(client, db)
	rec.FlushInterval = 50 * time.Millisecond
	since := time.Now()
	c := metrics.New(since)
	c.Size = db.Size
	rec.Observer = c
	web := httptest.NewServer(c.Handler())
	defer web.Close()

	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- rec.Run(runCtx) }()
	defer func() {
		stop()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	<-rec.Started()
	ledger.WaitEvents(t, 600)

	ep := srv.Endpoint()
	label := func(kind, device string) string {
		return `device="` + device + `",endpoint="` + ep + `",kind="` + kind + `"`
	}
	series := []string{label("gpu", "0"), label("gpu", "1"), label("cpu", "0"), label("dram", "0")}
	simtest.WaitFor(t, func() bool {
		m := scrape(t, web.URL)
		for _, s := range series {
			if _, ok := m["wattrec_power_watts{"+s+"}"]; !ok || m["wattrec_energy_joules_total{"+s+"}"] <= 0 {
				return false
			}
		}
		return true
	})
	m := scrape(t, web.URL)
	for _, want := range []string{
		`wattrec_stream_up{endpoint="` + ep + `",stream="gpu"}`, `wattrec_stream_up{endpoint="` + ep + `",stream="cpu"}`,
		`wattrec_stream_sessions_total{endpoint="` + ep + `",stream="gpu"}`,
	} {
		if m[want] != 1 {
			t.Errorf("%s = %v, want 1", want, m[want])
		}
	}
	if off := m[`wattrec_clock_offset_seconds{endpoint="`+ep+`"}`]; math.Abs(off-5) > 0.1 {
		t.Errorf("clock offset %v s, want about 5 (the daemon is 5 s behind)", off)
	}
	for _, want := range []string{"wattrec_store_bytes", "wattrec_store_commit_seconds_count", "go_goroutines", "process_resident_memory_bytes"} {
		if m[want] <= 0 {
			t.Errorf("%s = %v", want, m[want])
		}
	}
	if m[`wattrec_stream_events_total{endpoint="`+ep+`",stream="gpu"}`] <= 0 {
		t.Error("no GPU events counted")
	}

	// The daemon goes away: a gap begins, and nothing holds in it.
	stopSim()
	simtest.WaitFor(t, func() bool {
		m := scrape(t, web.URL)
		return m[`wattrec_stream_up{endpoint="`+ep+`",stream="gpu"}`] == 0 && m[`wattrec_stream_up{endpoint="`+ep+`",stream="cpu"}`] == 0
	})
	if err := rec.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	m = scrape(t, web.URL)
	rep, err := query.Energy(ctx, db, query.Options{Filter: query.Filter{Range: query.Between(since.UnixMilli(), time.Now().UnixMilli()+1)}})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range series {
		if v, ok := m["wattrec_power_watts{"+s+"}"]; ok {
			t.Errorf("%s: power %v W in a gap", s, v)
		}
		k := strings.Split(s, `"`)
		name := k[3] + " " + k[5] + ":" + k[1]
		var want float64
		for _, r := range rep.Rows {
			if r.Group == name {
				want = r.Joules()
			}
		}
		if got := m["wattrec_energy_joules_total{"+s+"}"]; want == 0 || math.Abs(got-want) > 1e-9*want {
			t.Errorf("%s: counter %.6f J, wattrec query %.6f J", name, got, want)
		}
	}
}

// TestCollector_Commits feeds commits by hand: a session that ends and
// another that starts in one commit (a gap between), a seed that
// arrives before events stamped earlier, and counter readings.
func TestCollector_Commits(t *testing.T) {
	t.Parallel()
	const ep = "n1:4938"
	t0 := time.Now().UnixMilli()
	c := metrics.New(time.UnixMilli(t0))
	web := httptest.NewServer(c.Handler())
	defer web.Close()
	gpu := func(tm, mw int64, seed bool) store.Reading {
		return store.Reading{Endpoint: ep, Kind: store.KindGPU, TimeMs: tm, DaemonMs: tm, MilliWatts: mw, Seed: seed}
	}
	ses := func(start, end int64, open bool) store.Session {
		return store.Session{Endpoint: ep, Stream: store.StreamGPU, Start: start, End: end, Open: open, Events: 10}
	}
	counter := func(tm, uj int64) store.CounterReading {
		return store.CounterReading{Endpoint: ep, Kind: store.KindGPU, TakenMs: tm, EnergyUJ: uj, Trigger: store.TriggerPeriodic}
	}
	commit := func(b store.Batch) { c.Committed(recorder.Commit{Batch: &b, Took: time.Millisecond}) }

	// 100 W from t0; the seed (read at t0+20) arrives before an event
	// stamped t0+10 at 300 W, which holds 10 ms.
	commit(store.Batch{Sessions: []store.Session{ses(t0, t0+1000, true)},
		Readings: []store.Reading{gpu(t0, 100_000, false), gpu(t0+20, 200_000, true), gpu(t0+10, 300_000, false)},
		Counters: []store.CounterReading{counter(t0, 5_000_000)}})
	// The session ends at t0+3000; a new one starts at t0+5000 (a 2 s
	// gap) with 50 W.
	commit(store.Batch{Sessions: []store.Session{ses(t0, t0+3000, false), ses(t0+5000, t0+6000, true)},
		Readings: []store.Reading{gpu(t0+5000, 50_000, true)}})
	commit(store.Batch{Sessions: []store.Session{ses(t0+5000, t0+8000, false)},
		Counters: []store.CounterReading{counter(t0+8000, 5_000_000+2*1000*(100*10+300*10+200*2980+50*3000))}})

	m := scrape(t, web.URL)
	l := `{device="0",endpoint="` + ep + `",kind="gpu"}`
	s := `{endpoint="` + ep + `",stream="gpu"}`
	want := float64(100*10+300*10+200*2980+50*3000) / 1e3 // mW·ms → J
	for name, v := range map[string]float64{
		"wattrec_energy_joules_total" + l:      want,
		"wattrec_counter_integral_ratio" + l:   2,
		"wattrec_readings_total" + l:           4,
		"wattrec_stream_up" + s:                0,
		"wattrec_stream_sessions_total" + s:    2,
		"wattrec_stream_reconnects_total" + s:  1,
		"wattrec_stream_gaps_total" + s:        1,
		"wattrec_stream_gap_seconds_total" + s: 2,
		"wattrec_stream_events_total" + s:      20,
	} {
		if got, ok := m[name]; !ok || math.Abs(got-v) > 1e-9*math.Abs(v) {
			t.Errorf("%s = %v (%v), want %v", name, got, ok, v)
		}
	}
	if _, ok := m["wattrec_power_watts"+l]; ok {
		t.Error("a power value after the session ended")
	}
}
