package recorder_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/wattrec/wattrec/internal/simtest"
	"github.com/wattrec/wattrec/query"
	"github.com/wattrec/wattrec/recorder"
	"github.com/wattrec/wattrec/store"
)

// Stall thresholds the tests shrink the defaults to.
const (
	testStallMin   = 500 * time.Millisecond
	testProbeAfter = 300 * time.Millisecond
	testTick       = 20 * time.Millisecond // the fake's poll period
	// sessionSlack is how late a session may end after the last event
	// written to it: delivery, decoding and scheduling under -race.
	sessionSlack = 100 * time.Millisecond
)

// faultClient is a client of f with the test's thresholds.
func faultClient(t *testing.T, f *fakeDaemon, srv recorder.Server) (*recorder.Client, *logBuffer) {
	logs, logger := captureLogs(t)
	c := recorder.NewClient([]recorder.Server{srv})
	c.Logger = logger
	c.MaxBackoff = 200 * time.Millisecond
	c.StallMin, c.ProbeAfter = testStallMin, testProbeAfter
	c.CounterInterval = 50 * time.Millisecond
	return c, logs
}

// tick waits one poll period of the fake: the pace of its events, not a
// synchronisation.
func tick() { <-time.After(testTick) }

// waitStored waits until db holds every value f sent, then stops r and
// checks that the store holds exactly those. It returns how many values
// were sent and stored.
func waitStored(t *testing.T, f *fakeDaemon, db *store.DB, r *running) (sent, stored int) {
	t.Helper()
	want := f.values()
	stopWhenStored(t, db, r, want)
	got, _ := simtest.Stored(t, db)
	return simtest.Count(want), simtest.Count(got)
}

// sessions returns the endpoint's sessions of stream.
func sessions(t *testing.T, db *store.DB, endpoint string, stream store.Stream) []store.Session {
	t.Helper()
	all, err := db.Sessions(context.Background(), endpoint)
	if err != nil {
		t.Fatal(err)
	}
	var out []store.Session
	for _, s := range all {
		if s.Stream == stream {
			out = append(out, s)
		}
	}
	return out
}

// energyRow is query.Energy's row for one series over [from, to).
func energyRow(t *testing.T, db *store.DB, series string, from, to int64) query.Row {
	t.Helper()
	rep, err := query.Energy(context.Background(), db, query.Options{Filter: query.Filter{Range: query.Between(from, to)}})
	if err != nil {
		t.Fatal(err)
	}
	for _, row := range rep.Rows {
		if strings.HasSuffix(row.Group, " "+series) {
			return row
		}
	}
	t.Fatalf("no %s row in %+v", series, rep.Rows)
	return query.Row{}
}

// checkEnd fails unless a session ended at the last event written to it
// (at), give or take sessionSlack.
func checkEnd(t *testing.T, s store.Session, at time.Time) {
	t.Helper()
	if d := time.Duration(s.End-at.UnixMilli()) * time.Millisecond; d < -time.Millisecond || d > sessionSlack {
		t.Errorf("session %+v ends %v after its last event, want within [-1ms, %v]", s, d, sessionSlack)
	} else {
		t.Logf("stalled session ends %v after its last event", d)
	}
}

// TestStream_CPUStall: a daemon that stops sending CPU events while the
// connection stays open (and whose get_power fails meanwhile: it hangs).
// The session is closed at its last event, the stream reconnects and
// records again when the daemon resumes, the stall is logged once, and
// the query reports the silence as a gap instead of coverage 1.
func TestStream_CPUStall(t *testing.T) {
	t.Parallel()
	f := newFakeDaemon(t, nil, []int{0})
	c, logs := faultClient(t, f, f.srv)
	db := simtest.MustOpenDB(t)
	r := runRecorder(t, c, db)

	f.nextStream("cpu")
	mw := int64(40_000)
	first := f.sendCPU(0, mw)
	var lastBefore time.Time
	for range 25 {
		tick()
		mw += 137
		lastBefore = f.sendCPU(0, mw)
	}

	// Silence: keep the connection open, send nothing, fail get_power,
	// until the recorder has given up on two more connections.
	f.setPowerStatus(http.StatusServiceUnavailable)
	for range 2 {
		f.nextStream("cpu")
	}
	// Resume on the next connection as soon as it opens.
	f.nextStream("cpu")
	f.setPowerStatus(0)
	var firstAfter, last time.Time
	for i := range 25 {
		mw += 211
		last = f.sendCPU(0, mw)
		if i == 0 {
			firstAfter = last
		}
		tick()
	}
	sent, stored := waitStored(t, f, db, r)

	ss := sessions(t, db, f.srv.Endpoint(), store.StreamCPU)
	if len(ss) != 4 {
		t.Fatalf("%d CPU sessions, want 4 (the stalled one, 2 silent ones, the resumed one): %+v", len(ss), ss)
	}
	if !strings.HasPrefix(ss[0].Reason, "stalled: no event for ") {
		t.Errorf("first session's reason %q, want a stall", ss[0].Reason)
	}
	checkEnd(t, ss[0], lastBefore)
	resumed := ss[len(ss)-1]
	if resumed.Events != 25 {
		t.Errorf("resumed session %+v, want the 25 events after the silence", resumed)
	}
	if n := len(logs.lines("level=WARN", "stream stalled", "endpoint="+f.srv.Endpoint(), "stream=cpu")); n != 1 {
		t.Errorf("stall logged %d times, want once:\n%s", n, strings.Join(logs.lines("stall"), "\n"))
	}

	silence := firstAfter.Sub(lastBefore)
	from, to := first.UnixMilli()+5, last.UnixMilli() // the session may start a ms after the first event
	row := energyRow(t, db, "cpu:0", from, to)
	trueCoverage := 1 - float64(silence.Milliseconds())/float64(to-from)
	gap := time.Duration(row.LongestGapMs) * time.Millisecond
	t.Logf("CPU stall: %d values sent, %d stored; silence %v, longest gap %v, %d gap(s); coverage %.3f (true %.3f)",
		sent, stored, silence, gap, row.Gaps, row.Coverage(), trueCoverage)
	if row.Gaps != 1 || gap < silence-testTick-sessionSlack || gap > silence+sessionSlack {
		t.Errorf("%d gaps, longest %v; want one of about the silence's %v", row.Gaps, gap, silence)

	}
	tolerance := float64((testTick + sessionSlack).Milliseconds()) / float64(to-from)
	if cov := row.Coverage(); cov >= 1 || cov < trueCoverage-tolerance || cov > trueCoverage+tolerance {
		t.Errorf("coverage %.4f, want %.4f ± %.4f (the silence is a gap)", cov, trueCoverage, tolerance)
	}
}

// TestStream_GPUStall: a GPU stream that stops sending while get_power
// shows new values is stalled: the probe finds the difference, the
// session ends at its last event, and the stream reconnects and records
// the new values.
func TestStream_GPUStall(t *testing.T) {
	t.Parallel()
	f := newFakeDaemon(t, []int{0, 1}, nil)
	c, logs := faultClient(t, f, f.srv)
	db := simtest.MustOpenDB(t)
	r := runRecorder(t, c, db)

	f.nextStream("gpu")
	var first, lastBefore time.Time
	for i := range 20 {
		lastBefore = f.sendGPU(i%2, 100_000+int64(i)*500)
		if i == 0 {
			first = lastBefore
		}
		tick()
	}
	// The stream gets stuck; the GPU's power changes all the same.
	f.muteStreams("gpu")
	f.setGPU(0, 250_000)
	next := f.nextStream("gpu")
	var last time.Time
	for i := range 20 {
		last = f.sendGPU(i%2, 200_000+int64(i)*500)
		tick()
	}
	sent, stored := waitStored(t, f, db, r)

	ss := sessions(t, db, f.srv.Endpoint(), store.StreamGPU)
	if len(ss) != 2 {
		t.Fatalf("%d GPU sessions, want 2 (stalled, reconnected): %+v", len(ss), ss)
	}
	if want := "GPU 0 at 250000 mW, the stream's last 109000 mW"; !strings.HasPrefix(ss[0].Reason, "stalled: ") || !strings.Contains(ss[0].Reason, want) {
		t.Errorf("stalled session's reason %q, want a stall naming %q", ss[0].Reason, want)
	}
	checkEnd(t, ss[0], lastBefore)
	if ss[1].Events != 20 {
		t.Errorf("reconnected session %+v, want the 20 events after the stall", ss[1])
	}
	if n := len(logs.lines("level=WARN", "stream stalled", "stream=gpu")); n != 1 {
		t.Errorf("stall logged %d times, want once", n)
	}

	// Nothing is known from the last event before the stall until the
	// reconnected stream's seed.
	blind := next.at.Sub(lastBefore)
	from, to := first.UnixMilli()+5, last.UnixMilli() // the first event's corrected time may be a ms off
	row := energyRow(t, db, "gpu:0", from, to)
	gap := time.Duration(row.LongestGapMs) * time.Millisecond
	trueCoverage := 1 - float64(blind.Milliseconds())/float64(to-from)
	t.Logf("GPU stall: %d values sent, %d stored; stuck for %v until the reconnect, longest gap %v, %d gap(s); coverage %.3f (true %.3f)",
		sent, stored, blind, gap, row.Gaps, row.Coverage(), trueCoverage)
	if row.Gaps != 1 || gap < blind-sessionSlack || gap > blind+sessionSlack {
		t.Errorf("%d gaps, longest %v; want one of about %v", row.Gaps, gap, blind)
	}
	if row.Coverage() >= 1 {
		t.Errorf("coverage %.4f, want < 1", row.Coverage())
	}
}

// TestStream_GPUConstantIsNotStall: a GPU whose power does not change
// sends nothing; the probes find the value the stream delivered, so the
// session stays live and the whole window is covered.
func TestStream_GPUConstantIsNotStall(t *testing.T) {
	t.Parallel()
	f := newFakeDaemon(t, []int{0}, nil)
	f.setGPU(0, 120_000) // the seed's value too, whether it is read before the first event or after
	c, logs := faultClient(t, f, f.srv)
	c.ProbeAfter = 100 * time.Millisecond
	db := simtest.MustOpenDB(t)
	r := runRecorder(t, c, db)

	f.nextStream("gpu")
	first := f.sendGPU(0, 120_000)
	// Silent for at least five probes.
	f.waitRequests(func(f *fakeDaemon) bool { return f.requests["/gpu/get_power"] >= 6 })
	last := f.sendGPU(0, 130_000)
	sent, stored := waitStored(t, f, db, r)

	ss := sessions(t, db, f.srv.Endpoint(), store.StreamGPU)
	if len(ss) != 1 || ss[0].Reason != "recorder stopped" {
		t.Fatalf("GPU sessions %+v, want one, until the recorder stopped", ss)
	}
	if lines := logs.lines("stalled"); len(lines) > 0 {
		t.Errorf("a constant GPU was taken for a stall:\n%s", strings.Join(lines, "\n"))
	}
	// From just after the first event (its corrected time may be a ms
	// off) to the last.
	from, to := first.UnixMilli()+5, last.UnixMilli()
	row := energyRow(t, db, "gpu:0", from, to)
	t.Logf("GPU constant for %v: %d values sent, %d stored; coverage %.3f, %d gap(s)",
		last.Sub(first), sent, stored, row.Coverage(), row.Gaps)
	if row.Coverage() != 1 || row.Gaps != 0 {
		t.Errorf("coverage %v with %d gaps, want 1 and none", row.Coverage(), row.Gaps)
	}
	if want := (to - from) * 120_000; row.EnergyUJ < want-20_000 || row.EnergyUJ > want+20_000 {
		t.Errorf("energy %d mW·ms, want %d (120 W held)", row.EnergyUJ, want)
	}
}

// TestStream_GPUGoneAndBack: the daemon restarts without GPU 1 while it
// is streamed and refuses gpu_ids=0,1 with 400 for a while, then has it
// again. The recorder keeps running, logs the refusal once, records the
// refusal as a gap between sessions, reconnects when the GPU is back,
// and GPU 1's counter reads resume; nothing sent is lost.
func TestStream_GPUGoneAndBack(t *testing.T) {
	t.Parallel()
	f := newFakeDaemon(t, []int{0, 1}, nil)
	srv := f.srv
	srv.GPUs, srv.CPUs = recorder.Only(0, 1), recorder.None()
	c, logs := faultClient(t, f, srv)
	db := simtest.MustOpenDB(t)
	r := runRecorder(t, c, db)

	f.nextStream("gpu")
	var first, last time.Time
	for i := range 20 {
		if t := f.sendGPU(i%2, 100_000+int64(i)*500); i == 1 { // GPU 1's first value: the query starts after it
			first = t
		}
		tick()
	}
	f.restart([]int{0}, nil)
	gone := time.Now()
	// Refused while GPU 1 is gone: a few stream attempts, and counter
	// reads that ask for it.
	f.waitRequests(func(f *fakeDaemon) bool {
		return f.refusals >= 4 && f.requests["/gpu/get_cumulative_energy"] >= 8
	})
	back := time.Now()
	f.restart([]int{0, 1}, nil)
	f.nextStream("gpu")
	for i := range 20 {
		last = f.sendGPU(i%2, 200_000+int64(i)*500)
		tick()
	}
	f.mu.Lock()
	reads := f.requests["/gpu/get_cumulative_energy"]
	f.mu.Unlock()
	f.waitRequests(func(f *fakeDaemon) bool { return f.requests["/gpu/get_cumulative_energy"] >= reads+3 })
	select {
	case <-c.Done():
		t.Fatalf("Client.Done fired: %v", c.Err())
	default:
	}
	sent, stored := waitStored(t, f, db, r)

	ss := sessions(t, db, srv.Endpoint(), store.StreamGPU)
	if len(ss) != 2 {
		t.Fatalf("%d GPU sessions, want 2 (before and after the restart): %+v", len(ss), ss)
	}
	gap := time.Duration(ss[1].Start-ss[0].End) * time.Millisecond
	row := energyRow(t, db, "gpu:1", first.UnixMilli()+5, last.UnixMilli())
	t.Logf("GPU 1 gone for %v: %d values sent, %d stored; session gap %v, %d refusals; query: longest gap %v, %d gap(s), coverage %.3f",
		back.Sub(gone), sent, stored, gap, f.refusals, time.Duration(row.LongestGapMs)*time.Millisecond, row.Gaps, row.Coverage())
	if q := time.Duration(row.LongestGapMs) * time.Millisecond; row.Gaps != 1 || q < gap || q > gap+sessionSlack {
		t.Errorf("query: %d gaps, longest %v; want the sessions' gap of %v", row.Gaps, q, gap)
	}
	if ss[0].End > gone.UnixMilli()+sessionSlack.Milliseconds() || ss[1].Start < back.UnixMilli() {
		t.Errorf("sessions %+v: want the first to end when the daemon restarted and the next to start after GPU 1 was back", ss)
	}
	if n := len(logs.lines("daemon refuses a stream", "Unknown GPU indices: [1]. Available: [0]")); n != 1 {
		t.Errorf("refusal logged %d times, want once:\n%s", n, strings.Join(logs.lines("refuses"), "\n"))
	}
	ctrs, err := db.Counters(context.Background(), store.SeriesKey{Endpoint: srv.Endpoint(), Kind: store.KindGPU, Device: 1}, back.UnixMilli(), 1<<62)
	if err != nil || len(ctrs) == 0 {
		t.Errorf("GPU 1 counter readings after it was back: %d, %v; want its reads resumed", len(ctrs), err)
	}
}
