package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wattrec/wattrec/internal/simtest"
	"github.com/wattrec/wattrec/internal/tsdbtest"
	"github.com/wattrec/wattrec/query"
	"github.com/wattrec/wattrec/simulator"
)

// TestTSDB_Record records a simulator for 65 s with --remote-write into
// a real VictoriaMetrics and a real Prometheus, and --metrics-listen
// scraped by that Prometheus. VictoriaMetrics is stopped for 30 s in the
// middle. Afterwards both answer PromQL with wattrec's joules (within
// 1e-6) over windows of the recording, the outage included, every
// series has a value whenever it was covered, and the counter
// Prometheus scraped from /metrics is `wattrec query` since the start.
func TestTSDB_Record(t *testing.T) {
	if testing.Short() {
		t.Skip("slow: records for 65 s")
	}
	t.Parallel()
	ctx := context.Background()
	vm := tsdbtest.VictoriaMetrics(t)
	metricsAddr := tsdbtest.FreePort(t)
	prom := tsdbtest.Prometheus(t, metricsAddr)
	_, srv, stopSim := simtest.Start(t, simtest.FastConfig(simulator.FormatSample), "unix")
	path := filepath.Join(t.TempDir(), "run.db")
	const every = 5 * time.Second
	cmd, out := child(t, nil, "record", "--db", path, "--server", "unix://"+srv.Address, "--flush-interval", "200ms", "--max-backoff", "1s",
		"--remote-write", vm.WriteURL, "--remote-write", prom.WriteURL, "--remote-write-interval", every.String(),
		"--label", "job=e2e", "--metrics-listen", metricsAddr)
	exited := make(chan struct{})
	var exitErr error
	go func() { // owned by the test: it waits on exited below
		exitErr = cmd.Wait()
		close(exited)
	}()
	defer func() { cmd.Process.Kill(); <-exited }()
	began := time.Now()
	// The scenario runs on the wall clock; what it checks waits on
	// conditions.
	at := func(d time.Duration) {
		t.Helper()
		select {
		case <-time.After(time.Until(began.Add(d))):
		case <-exited:
			t.Fatalf("wattrec record exited: %v\n%s", exitErr, out)
		}
	}
	at(20 * time.Second)
	vm.Stop(t)
	downFrom := time.Now().UnixMilli()
	at(50 * time.Second)
	vm.Start(t)
	downTo := time.Now().UnixMilli()
	at(65 * time.Second)
	stopSim()

	// The streams end; once Prometheus has scraped that, the counters it
	// has are final.
	var scrapedAt time.Time
	simtest.WaitFor(t, func() bool {
		now := time.Now()
		up, ok := prom.Scalar(t, `max(wattrec_stream_up{job="wattrec"})`, now)
		if ok && up == 0 {
			scrapedAt = now
			return true
		}
		return false
	})
	scraped := map[string]float64{}
	for _, s := range prom.Query(t, `wattrec_energy_joules_total{job="wattrec"}`, scrapedAt) {
		scraped[s.Metric["kind"]+":"+s.Metric["device"]] = s.Value
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-exited:
	case <-time.After(30 * time.Second):
		t.Fatalf("wattrec record did not exit within 30 s of SIGTERM:\n%s", out)
	}
	if exitErr != nil {
		t.Fatalf("wattrec record: %v\n%s", exitErr, out)
	}
	if strings.Contains(out.String(), "receiver refused a request") {
		t.Errorf("a receiver refused samples:\n%s", out)
	}
	vm.Flush(t)

	db := simtest.OpenStored(t, path)
	sessions, err := db.Sessions(ctx, srv.Address)
	if err != nil {
		t.Fatal(err)
	}
	covered := query.Interval{From: math.MinInt64, To: math.MaxInt64}
	for _, s := range sessions {
		covered = query.Interval{From: max(covered.From, s.Start), To: min(covered.To, s.End)}
	}
	if len(sessions) != 2 || covered.Len() < 60_000 {
		t.Fatalf("sessions %+v: want one per stream, over 60 s", sessions)
	}
	for _, rcv := range []string{vm.WriteURL, prom.WriteURL} {
		p, ok, err := db.PushPosition(ctx, rcv)
		if err != nil || !ok || p.ThroughMs <= covered.To {
			t.Errorf("%s: push position %d (%v, %v), want past the end %d", rcv, p.ThroughMs, ok, err, covered.To)
		}
	}

	energy := func(w query.Interval, by string) map[string]float64 {
		t.Helper()
		rep, err := query.Energy(ctx, db, query.Options{Filter: query.Filter{Range: query.Between(w.From, w.To)}, By: by})
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]float64{}
		for _, r := range rep.Rows {
			m[r.Group] = r.Joules()
		}
		return m
	}
	near := func(got, want float64) bool { return math.Abs(got-want) <= 1e-6*math.Abs(want) }

	// Energy over windows on the grid of the re-sent samples.
	grid := every.Milliseconds()
	up := func(ms int64) int64 { return (ms + grid - 1) / grid * grid }
	down := func(ms int64) int64 { return ms / grid * grid }
	windows := map[string]query.Interval{
		"outage":   {From: up(downFrom), To: down(downTo)},
		"all":      {From: up(covered.From) + grid, To: down(covered.To) - grid},
		"first 10": {From: up(covered.From) + grid, To: up(covered.From) + 3*grid},
		"last 10":  {From: down(covered.To) - 3*grid, To: down(covered.To) - grid},
	}
	for name, w := range windows {
		want := energy(w, query.ByTotal)["total"]
		rng := fmt.Sprintf("[%ds]", w.Len()/1000)
		for _, q := range []struct {
			srv  *tsdbtest.Server
			expr string
		}{
			{vm, `sum(increase(wattrec_energy_joules_total{job="e2e"}` + rng + `))`},
			{prom, `sum(increase(wattrec_energy_joules_total{job="e2e"}` + rng + `))`},
			{vm, `sum(integrate(wattrec_power_watts{job="e2e"}` + rng + `))`},
		} {
			got, ok := q.srv.Scalar(t, q.expr, time.UnixMilli(w.To))
			if !ok || !near(got, want) {
				t.Errorf("%s window %s: %s: %.6f J (%v), wattrec %.6f J", q.srv.Name, name, q.expr, got, ok, want)
			} else {
				t.Logf("%s window %s: %s = %.6f J, wattrec query %.6f J", q.srv.Name, name, q.expr, got, want)
			}
		}
	}

	// No series goes stale while covered, in either.
	for _, s := range []*tsdbtest.Server{vm, prom} {
		for ms := covered.From + 1000; ms < covered.To; ms += 2000 {
			if got, _ := s.Scalar(t, `count(wattrec_power_watts{job="e2e"})`, time.UnixMilli(ms)); got != 4 {
				t.Errorf("%s: %v series at %s, want 4", s.Name, got, query.FormatTime(ms))
			}
		}
	}

	// The dashboard's queries are PromQL that Prometheus answers, on
	// both the pushed and the scraped series.
	for _, expr := range dashboardQueries(t) {
		expr = strings.NewReplacer("$job", ".*", "$__range", "30s").Replace(expr)
		if vec := prom.Query(t, expr, time.UnixMilli(down(covered.To)-grid)); len(vec) == 0 && !strings.Contains(expr, "== 0") {
			t.Errorf("dashboard query %s: no result", expr)
		}
	}

	// The counters scraped from /metrics count since the recorder
	// started.
	runs, err := db.Runs(ctx)
	if err != nil || len(runs) != 1 {
		t.Fatalf("runs %v, %v", runs, err)
	}
	last := covered.To
	for _, s := range sessions {
		last = max(last, s.End)
	}
	since := energy(query.Interval{From: runs[0].StartedMs, To: last + 1}, query.ByDevice)
	if len(scraped) != 4 {
		t.Errorf("scraped counters %v, want 4", scraped)
	}
	for dev, got := range scraped {
		want := since[srv.Address+" "+dev]
		if !near(got, want) || want == 0 {
			t.Errorf("/metrics %s: %.6f J, wattrec query since the start %.6f J", dev, got, want)
		} else {
			t.Logf("/metrics %s: %.6f J, wattrec query since the start %.6f J", dev, got, want)
		}
	}
}

// dashboardQueries are the PromQL queries of the Grafana dashboard.
func dashboardQueries(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			out = append(out, tg.Expr)
		}
	}
	return out
}
