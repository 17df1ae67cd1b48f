package recorder_test

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/wattrec/wattrec/internal/simtest"
	"github.com/wattrec/wattrec/recorder"
	"github.com/wattrec/wattrec/simulator"
	"github.com/wattrec/wattrec/store"
)

// TestClient_SetServers changes the server list of a running recorder:
// a new server starts and is recorded, a removed one ends its sessions
// with its own reason after a last counter reading, and everything both
// sent is stored.
func TestClient_SetServers(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	sentA, sentB := simtest.NewLedger(), simtest.NewLedger()
	cfgA := simtest.FastConfig(simulator.FormatSample)
	cfgA.OnEvent = sentA.OnEvent(t)
	_, a, _ := simtest.Start(t, cfgA, "unix")
	cfgB := simtest.FastConfig(simulator.FormatSample)
	cfgB.OnEvent = sentB.OnEvent(t)
	cfgB.Seed = 2
	_, b, stopB := simtest.Start(t, cfgB, "tcp")
	db := simtest.MustOpenDB(t)
	r := startRecorder(t, db, a)
	simtest.WaitFor(t, func() bool { _, ok := r.client.Info(a.Endpoint()); return ok })
	sentA.WaitEvents(t, 100)

	if _, _, err := r.client.SetServers(ctx, nil); !errors.Is(err, recorder.ErrNoServers) {
		t.Fatalf("SetServers(none): %v, want ErrNoServers", err)
	}
	started, ended, err := r.client.SetServers(ctx, []recorder.Server{a, b})
	if err != nil || !slices.Equal(started, []string{b.Endpoint()}) || len(ended) != 0 {
		t.Fatalf("adding B: started %v, ended %v, %v", started, ended, err)
	}
	sentB.WaitEvents(t, 100)
	started, ended, err = r.client.SetServers(ctx, []recorder.Server{b})
	if err != nil || len(started) != 0 || !slices.Equal(ended, []string{a.Endpoint()}) {
		t.Fatalf("removing A: started %v, ended %v, %v", started, ended, err)
	}
	// A's sessions end: what A sent before is stored, and nothing after.
	simtest.WaitFor(t, func() bool {
		ss, err := db.Sessions(ctx, a.Endpoint())
		return err == nil && len(ss) > 0 && !slices.ContainsFunc(ss, func(s store.Session) bool { return s.Open })
	})
	ss, err := db.Sessions(ctx, a.Endpoint())
	if err != nil {
		t.Fatal(err)
	}
	end := ss[len(ss)-1].End
	// B goes on until its daemon stops; then all it sent is stored.
	sentB.WaitEvents(t, sentB.Events()+100)
	stopB()
	want := sentB.Values()
	for v, n := range sentA.Values() {
		if v.DaemonMs+5000 < end-50 { // sent well before A's session ended (the daemon clock is 5 s behind)
			want[v] += n
		}
	}
	simtest.WaitFor(t, func() bool { got, _ := simtest.Stored(t, db); return simtest.Covers(got, want) })
	if err := r.stop(t); err != nil {
		t.Fatalf("Run: %v", err)
	}
	got, _ := simtest.Stored(t, db)
	all := sentB.Values()
	for v, n := range sentA.Values() {
		all[v] += n
	}
	if extra := simtest.Extra(got, all); len(extra) > 0 {
		t.Errorf("stored values nobody sent: %v", extra)
	}
	if last := ss[len(ss)-1]; last.Reason != "removed from the server list" {
		t.Errorf("A's last session %+v: want it ended by the removal", last)
	}
	cs, err := db.Counters(ctx, store.SeriesKey{Endpoint: a.Endpoint(), Kind: store.KindGPU}, -1<<62, 1<<62)
	if err != nil || len(cs) < 2 || cs[len(cs)-1].Trigger != store.TriggerStop {
		t.Errorf("A's GPU counter readings %+v, %v: want a last one at the removal", cs, err)
	}
	series, err := db.Series(ctx, b.Endpoint(), false)
	if err != nil || len(series) == 0 {
		t.Errorf("B's series: %v, %v", series, err)
	}
}
