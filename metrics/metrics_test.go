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
