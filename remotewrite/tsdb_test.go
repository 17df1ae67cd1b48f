package remotewrite_test

import (
	"context"
	"fmt"
	"io"
	"math"
	"testing"
	"time"

	"github.com/wattrec/wattrec/internal/tsdbtest"
	"github.com/wattrec/wattrec/query"
	"github.com/wattrec/wattrec/store"
)

// wattrecJoules is what `wattrec query` reports for the total over
// [from, to).
func wattrecJoules(t *testing.T, db *store.DB, from, to int64) float64 {
	t.Helper()
	rep, err := query.Energy(context.Background(), db, query.Options{Filter: query.Filter{Range: query.Between(from, to)}, By: query.ByTotal})
	if err != nil {
		t.Fatal(err)
	}
	return rep.Rows[len(rep.Rows)-1].Joules()
}

// TestTSDB_Push pushes a finished recording, with a GPU flat for six
// minutes and a gap, into a real VictoriaMetrics and a real Prometheus,
// and reads it back with PromQL: energy over windows is what wattrec
// reports within 1e-6, and no series goes stale while covered.
func TestTSDB_Push(t *testing.T) {
	t.Parallel()
	vm := tsdbtest.VictoriaMetrics(t)
	prom := tsdbtest.Prometheus(t)

	start := time.Now().Add(-11 * time.Minute).Truncate(time.Second).UnixMilli()
	path, end := fixtureAt(t, start)
	db, err := store.Open(path, store.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, srv := range []*tsdbtest.Server{vm, prom} {
		s := newSender(db, srv.WriteURL, io.Discard)
		s.Receiver.Header = nil
		s.Receiver.BearerToken = ""
		if err := s.Push(context.Background(), query.TimeRange{}); err != nil {
			t.Fatal(err)
		}
		if st := s.Stats(); st.SkippedRequests > 0 || st.Retries > 0 {
			t.Fatalf("%s: %+v\n%s", srv.Name, st, srv.Log())
		}
		srv.Flush(t)
	}

	// Windows with edges on the 15 s grid, inside the recording: one of a
	// minute, one across the GPU's gap, one over the flat six minutes,
	// and nearly all of it.
	grid := int64(15_000)
	at := func(ms int64) int64 { return (ms + grid - 1) / grid * grid }
	// VictoriaMetrics' integrate() drops staleness markers and carries
	// the last value across a gap (the README says so): it is compared
	// only over windows without one.
	windows := []struct {
		query.Interval
		gap bool
	}{
		{query.Interval{From: at(start + 20_000), To: at(start+20_000) + 60_000}, false},
		{query.Interval{From: at(start + 60_000), To: at(start+60_000) + 60_000}, true},
		{query.Interval{From: at(start + 100_000), To: at(start+100_000) + 360_000}, false},
		{query.Interval{From: at(start + 20_000), To: at(end-30_000) - grid}, true},
	}
	for _, w := range windows {
		want := wattrecJoules(t, db, w.From, w.To)
		rng := fmt.Sprintf("[%ds]", (w.To-w.From)/1000)
		for _, q := range []struct {
			srv  *tsdbtest.Server
			expr string
			skip bool
		}{
			{vm, `sum(increase(wattrec_energy_joules_total{job="train"}` + rng + `))`, false},
			{prom, `sum(increase(wattrec_energy_joules_total{job="train"}` + rng + `))`, false},
			{vm, `sum(integrate(wattrec_power_watts{job="train"}` + rng + `))`, w.gap},
		} {
			if q.skip {
				continue
			}
			got, ok := q.srv.Scalar(t, q.expr, time.UnixMilli(w.To))
			if !ok || math.Abs(got-want) > 1e-6*want {
				t.Errorf("%s: %s at %s: %.6f J (%v), wattrec %.6f J (%.2g relative)", q.srv.Name, q.expr, query.FormatTime(w.To), got, ok, want, (got-want)/want)
			} else {
				t.Logf("%s: %s: %.6f J, wattrec %.6f J", q.srv.Name, q.expr, got, want)
			}
		}
	}

	// Every series has a value at any time it is covered (the flat GPU
	// too), and the GPU none in its gap.
	for _, srv := range []*tsdbtest.Server{vm, prom} {
		for ms := start + 1_000; ms < end; ms += 10_000 {
			want := 3.0
			if ms >= start+95_000 && ms < start+97_500 {
				want = 2
			}
			got, _ := srv.Scalar(t, `count(wattrec_power_watts{job="train"})`, time.UnixMilli(ms))
			if got != want {
				t.Errorf("%s: %v series at %s, want %v", srv.Name, got, query.FormatTime(ms), want)
			}
		}
		got, _ := srv.Scalar(t, `count(wattrec_power_watts{job="train",kind="gpu"})`, time.UnixMilli(start+96_000))
		if got != 0 {
			t.Errorf("%s: the GPU has a value in its gap", srv.Name)
		}
	}
}
