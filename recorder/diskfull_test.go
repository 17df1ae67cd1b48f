package recorder_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/wattrec/wattrec/internal/simtest"
	"github.com/wattrec/wattrec/query"
	"github.com/wattrec/wattrec/recorder"
	"github.com/wattrec/wattrec/simulator"
	"github.com/wattrec/wattrec/store"
)

// Log messages the disk-full tests wait for.
const (
	logDiskFull  = "disk full: keeping readings in memory, retrying"
	logDropping  = "disk full: backlog limit reached"
	logRecovered = "disk has space again"
)

// fullDisk is a store whose disk fills up on demand: while full, Write
// fails the way bbolt's write of a page does, and writes nothing.
type fullDisk struct {
	db *store.DB
	// failures is how many more writes fail: 0 is a disk with space.
	failures atomic.Int64
	failed   atomic.Int64 // writes that failed so far
}

func (d *fullDisk) Write(ctx context.Context, b *store.Batch) error {
	for {
		n := d.failures.Load()
		if n == 0 {
			return d.db.Write(ctx, b)
		}
		if d.failures.CompareAndSwap(n, n-1) {
			d.failed.Add(1)
			return &fs.PathError{Op: "write", Path: d.db.Path(), Err: syscall.ENOSPC}
		}
	}
}

// fill makes every write fail until empty.
func (d *fullDisk) fill()  { d.failures.Store(math.MaxInt64) }
func (d *fullDisk) empty() { d.failures.Store(0) }

// logCapture keeps every record logged through it, and passes it on.
type logCapture struct {
	next slog.Handler
	mu   *sync.Mutex
	recs *[]slog.Record
}

func newLogCapture(next slog.Handler) *logCapture {
	return &logCapture{next: next, mu: &sync.Mutex{}, recs: &[]slog.Record{}}
}

func (h *logCapture) Enabled(context.Context, slog.Level) bool { return true }

func (h *logCapture) Handle(ctx context.Context, r slog.Record) error {
	h.mu.Lock()
	*h.recs = append(*h.recs, r.Clone())
	h.mu.Unlock()
	if !h.next.Enabled(ctx, r.Level) {
		return nil
	}
	return h.next.Handle(ctx, r)
}

func (h *logCapture) WithAttrs(as []slog.Attr) slog.Handler {
	return &logCapture{next: h.next.WithAttrs(as), mu: h.mu, recs: h.recs}
}

func (h *logCapture) WithGroup(name string) slog.Handler {
	return &logCapture{next: h.next.WithGroup(name), mu: h.mu, recs: h.recs}
}

// count is the number of records whose message starts with prefix.
func (h *logCapture) count(prefix string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, r := range *h.recs {
		if strings.HasPrefix(r.Message, prefix) {
			n++
		}
	}
	return n
}

// int64Attr is attribute key of the last record whose message starts
// with prefix.
func (h *logCapture) int64Attr(tb testing.TB, prefix, key string) int64 {
	tb.Helper()
	h.mu.Lock()
	defer h.mu.Unlock()
	for i := len(*h.recs) - 1; i >= 0; i-- {
		r := (*h.recs)[i]
		if !strings.HasPrefix(r.Message, prefix) {
			continue
		}
		var v slog.Value
		r.Attrs(func(a slog.Attr) bool {
			if a.Key == key {
				v = a.Value
				return false
			}
			return true
		})
		if v.Kind() != slog.KindInt64 {
			tb.Fatalf("log %q has no integer %q: %v", prefix, key, v)
		}
		return v.Int64()
	}
	tb.Fatalf("nothing logged as %q", prefix)
	return 0
}

// startDiskFull records srv into app with fast retries; set adjusts the
// Recorder before Run.
func startDiskFull(t *testing.T, app recorder.Appender, srv recorder.Server, set func(*recorder.Recorder)) (*running, *recorder.Recorder, *logCapture) {
	t.Helper()
	client := recorder.NewClient([]recorder.Server{srv})
	client.Logger = testLogger(t)
	rec := recorder.New(client, app)
	rec.FlushInterval = 20 * time.Millisecond
	rec.MaxRetryBackoff = 20 * time.Millisecond
	logs := newLogCapture(testLogger(t).Handler())
	rec.Logger = slog.New(logs)
	if set != nil {
		set(rec)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{cancel: cancel, done: make(chan error, 1), client: client}
	go func() { r.done <- rec.Run(ctx) }()
	t.Cleanup(func() { r.stop(t) })
	return r, rec, logs
}

// simDiskFull is a simulator recorded through a fullDisk.
type simDiskFull struct {
	sent    *simtest.Ledger
	srv     recorder.Server
	stopSim func()
	db      *store.DB
	disk    *fullDisk
	r       *running
	rec     *recorder.Recorder
	logs    *logCapture
}

func startSimDiskFull(t *testing.T, set func(*recorder.Recorder)) *simDiskFull {
	t.Helper()
	x := &simDiskFull{sent: simtest.NewLedger(), db: simtest.MustOpenDB(t)}
	cfg := simtest.FastConfig(simulator.FormatSample)
	cfg.OnEvent = x.sent.OnEvent(t)
	_, x.srv, x.stopSim = simtest.Start(t, cfg, "tcp")
	x.disk = &fullDisk{db: x.db}
	x.r, x.rec, x.logs = startDiskFull(t, x.disk, x.srv, set)
	return x
}

// checkFlushDiskFull: Flush on a full disk answers at once, with
// ErrDiskFull.
func checkFlushDiskFull(t *testing.T, rec *recorder.Recorder) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := rec.Flush(ctx); !errors.Is(err, recorder.ErrDiskFull) || ctx.Err() != nil {
		t.Fatalf("Flush on a full disk = %v, want ErrDiskFull before the deadline", err)
	}
}

// checkSessionsWhole: one session per stream, none cut.
func checkSessionsWhole(t *testing.T, db *store.DB, endpoint string) {
	t.Helper()
	sessions, err := db.Sessions(context.Background(), endpoint)
	if err != nil {
		t.Fatal(err)
	}
	perStream := map[store.Stream]int{}
	for _, s := range sessions {
		perStream[s.Stream]++
		if s.Reason == recorder.DiskFullReason {
			t.Errorf("session %+v was cut, but nothing was dropped", s)
		}
	}
	if perStream[store.StreamGPU] != 1 || perStream[store.StreamCPU] != 1 {
		t.Errorf("sessions per stream = %v, want one each: %+v", perStream, sessions)
	}
}

// TestRecorder_DiskFull: while the disk is full the streams go on, the
// readings wait in memory and Flush says so; once space is back every
// reading is stored, and the sessions are as if nothing had happened.
func TestRecorder_DiskFull(t *testing.T) {
	t.Parallel()
	x := startSimDiskFull(t, nil)
	x.sent.WaitEvents(t, 100)
	x.disk.fill()
	full := x.sent.Events()
	simtest.WaitFor(t, func() bool { return x.disk.failed.Load() >= 5 })
	x.sent.WaitEvents(t, full+1000) // about 2 s of readings wait
	checkFlushDiskFull(t, x.rec)
	x.disk.empty()
	simtest.WaitFor(t, func() bool { return x.logs.count(logRecovered) > 0 })

	x.stopSim()
	stopWhenStored(t, x.db, x.r, x.sent.Values())
	checkSessionsWhole(t, x.db, x.srv.Endpoint())
	if n := x.logs.count(logDiskFull); n != 1 {
		t.Errorf("%q logged %d times, want once", logDiskFull, n)
	}
	if n := x.logs.count(logRecovered); n != 1 {
		t.Errorf("%q logged %d times, want once", logRecovered, n)
	}
	if n := x.logs.int64Attr(t, logRecovered, "dropped"); n != 0 {
		t.Errorf("dropped %d readings with the default backlog limit", n)
	}
	t.Logf("sent %d values, %d failed writes, backlog of %d readings stored after the disk had space again",
		simtest.Count(x.sent.Values()), x.disk.failed.Load(), x.logs.int64Attr(t, logRecovered, "readings"))
}

// TestRecorder_DiskFullDrops: with a small MaxBacklog the oldest
// readings of the outage are dropped, and their span is a gap: no stored
// session covers it, and the query reports it with coverage below 1.
// Everything else is stored.
func TestRecorder_DiskFullDrops(t *testing.T) {
	t.Parallel()
	const maxBacklog = 32 << 10 // about 580 readings, a second of the simulator's
	x := startSimDiskFull(t, func(rec *recorder.Recorder) { rec.MaxBacklog = maxBacklog })
	sent, srv, db, disk, logs := x.sent, x.srv, x.db, x.disk, x.logs

	sent.WaitEvents(t, 500)
	disk.fill()
	fullAt := time.Now().UnixMilli()
	simtest.WaitFor(t, func() bool { return logs.count(logDropping) > 0 })
	sent.WaitEvents(t, sent.Events()+1000) // keep dropping for a while
	emptyAt := time.Now().UnixMilli()
	disk.empty()
	simtest.WaitFor(t, func() bool { return logs.count(logRecovered) > 0 })
	recDropped := logs.int64Attr(t, logRecovered, "dropped")
	sent.WaitEvents(t, sent.Events()+500)

	x.stopSim()
	want := sent.Values()
	simtest.WaitFor(t, func() bool {
		got, _ := simtest.Stored(t, db)
		return int64(simtest.Count(got)) >= int64(simtest.Count(want))-recDropped
	})
	if err := x.r.stop(t); err != nil {
		t.Fatalf("Run: %v", err)
	}

	// What is stored was sent; what is missing is what the recorder says
	// it dropped.
	got, _ := simtest.Stored(t, db)
	dropped := simtest.Missing(got, want)
	for v, n := range simtest.Extra(got, want) {
		t.Errorf("stored %+v×%d that was not sent", v, n)
	}
	if n := simtest.Count(dropped); n == 0 || int64(n) != recDropped {
		t.Fatalf("%d sent values are missing, the recorder says it dropped %d", n, recDropped)
	}

	// Per stream, the dropped values are one stretch of daemon time.
	type stretch struct {
		lo, hi int64 // daemon ms
		n      int
	}
	stretches := map[store.Stream]*stretch{}
	for v, n := range dropped {
		s := store.StreamOf(v.Kind)
		if stretches[s] == nil {
			stretches[s] = &stretch{lo: v.DaemonMs, hi: v.DaemonMs}
		}
		st := stretches[s]
		st.lo, st.hi, st.n = min(st.lo, v.DaemonMs), max(st.hi, v.DaemonMs), st.n+n
	}
	stored := storedReadings(t, db)
	sessions, err := db.Sessions(context.Background(), srv.Endpoint())
	if err != nil {
		t.Fatal(err)
	}
	for stream, st := range stretches {
		// The offset in force, from the stored readings: lo and hi in the
		// recorder's clock.
		minD, maxD := int64(math.MaxInt64), int64(math.MinInt64)
		keptAfter := 0
		for _, rd := range stored {
			if store.StreamOf(rd.Kind) != stream {
				continue
			}
			if st.lo <= rd.DaemonMs && rd.DaemonMs <= st.hi {
				t.Errorf("%s stream: %+v is stored inside the dropped stretch %d…%d", stream, rd, st.lo, st.hi)
			}
			minD, maxD = min(minD, rd.TimeMs-rd.DaemonMs), max(maxD, rd.TimeMs-rd.DaemonMs)
			if rd.DaemonMs > st.hi && rd.TimeMs < emptyAt {
				keptAfter++
			}
		}
		lo, hi := st.lo+maxD, st.hi+minD
		if lo < fullAt-2000 || hi >= emptyAt {
			t.Errorf("%s stream: dropped %d…%d, not the oldest of the outage %d…%d", stream, lo, hi, fullAt, emptyAt)
		}
		if keptAfter == 0 {
			t.Errorf("%s stream: no reading newer than the dropped ones was kept", stream)
		}

		// No session covers the dropped span, nor, for CPU values, the
		// poll period before it (10 ms at 100 Hz).
		reach := int64(0)
		devices := []query.DeviceFilter{{Kind: store.KindGPU, AnyDevice: true}}
		if stream == store.StreamCPU {
			reach = 10
			devices = []query.DeviceFilter{{Kind: store.KindCPU, AnyDevice: true}}
		}
		cutOut := false
		for _, s := range sessions {
			if s.Stream != stream {
				continue
			}
			if s.Start < hi+1 && s.End > lo-reach {
				t.Errorf("%s stream: session %+v covers part of the dropped span %d…%d", stream, s, lo-reach, hi)
			}
			cutOut = cutOut || (s.Reason == recorder.DiskFullReason && s.End <= lo-reach)
		}
		if !cutOut {
			t.Errorf("%s stream: no session ends with %q before the dropped span: %+v", stream, recorder.DiskFullReason, sessions)
		}

		// The query: nothing known over the dropped span, and a gap at
		// least that long in a window around it.
		energy := func(from, to int64) []query.Row {
			rep, err := query.Energy(context.Background(), db, query.Options{Filter: query.Filter{Range: query.Between(from, to), Devices: devices}})
			if err != nil {
				t.Fatal(err)
			}
			var rows []query.Row
			for _, row := range rep.Rows {
				if row.Group != "total" {
					rows = append(rows, row)
				}
			}
			return rows
		}
		for _, row := range energy(lo-reach, hi+1) {
			if row.ValuedMs != 0 {
				t.Errorf("%s over the dropped span: %d ms with a value, want none", row.Group, row.ValuedMs)
			}
		}
		for _, row := range energy(lo-200, hi+200) {
			if row.Coverage() >= 1 || row.LongestGapMs < hi+1-lo {
				t.Errorf("%s around the dropped span: coverage %.3f, longest gap %d ms, want < 1 and ≥ %d ms", row.Group, row.Coverage(), row.LongestGapMs, hi+1-lo)
			}
			t.Logf("%s stream, %s: %d readings dropped over %d ms; coverage of the dropped span ±200 ms reported %.3f (%d gaps, longest %d ms); the simulator streamed throughout",
				stream, row.Group, st.n, hi+1-lo, row.Coverage(), row.Gaps, row.LongestGapMs)
		}
	}
	t.Logf("sent %d values, stored %d, dropped %d (backlog limit %d KiB)", simtest.Count(want), simtest.Count(got), simtest.Count(dropped), maxBacklog>>10)
}

// storedReadings returns every streamed (non-seed) reading in db.
func storedReadings(t *testing.T, db *store.DB) []store.Reading {
	t.Helper()
	ctx := context.Background()
	series, err := db.Series(ctx, "", false)
	if err != nil {
		t.Fatal(err)
	}
	var out []store.Reading
	for _, s := range series {
		err := db.Scan(ctx, s.SeriesKey, math.MinInt64, math.MaxInt64, func(r *store.Reading) error {
			if !r.Seed {
				out = append(out, *r)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// waitBacklog polls Flush on a full disk until at least n readings wait
// in memory, the same number twice: everything sent has arrived. It
// returns that number.
func waitBacklog(t *testing.T, rec *recorder.Recorder, n int) int {
	t.Helper()
	waiting := regexp.MustCompile(`(\d+) readings wait in memory`)
	prev := -1
	simtest.WaitFor(t, func() bool {
		err := rec.Flush(context.Background())
		m := waiting.FindStringSubmatch(fmt.Sprint(err))
		if m == nil {
			t.Fatalf("Flush = %v, want how many readings wait", err)
		}
		got, _ := strconv.Atoi(m[1])
		same := got == prev && got >= n
		prev = got
		return same
	})
	return prev
}

// TestRecorder_DiskFullAtStop: at the end, Run retries within
// FinalFlushTimeout; if the disk stays full it says how many readings
// were not stored.
func TestRecorder_DiskFullAtStop(t *testing.T) {
	t.Parallel()
	t.Run("GivesUp", func(t *testing.T) {
		t.Parallel()
		x := startSimDiskFull(t, func(rec *recorder.Recorder) { rec.FinalFlushTimeout = 300 * time.Millisecond })
		x.disk.fill()
		x.sent.WaitEvents(t, 100)
		x.stopSim()
		n := waitBacklog(t, x.rec, simtest.Count(x.sent.Values()))
		err := x.r.stop(t)
		if !errors.Is(err, recorder.ErrDiskFull) || !strings.Contains(err.Error(), fmt.Sprintf(" %d readings not stored", n)) {
			t.Fatalf("Run = %v, want ErrDiskFull and %d readings not stored", err, n)
		}
		t.Logf("Run = %v", err)
	})
	t.Run("Recovers", func(t *testing.T) {
		t.Parallel()
		x := startSimDiskFull(t, nil)
		x.sent.WaitEvents(t, 100)
		x.disk.fill()
		x.stopSim()
		waitBacklog(t, x.rec, 1)
		x.r.cancel()
		x.disk.failures.Store(3) // space comes back while Run stops
		if err := x.r.stop(t); err != nil {
			t.Fatalf("Run = %v, want nil once the disk had space again", err)
		}
		got, _ := simtest.Stored(t, x.db)
		simtest.Diff(t, got, x.sent.Values())
		if n := x.logs.count(logRecovered); n != 1 {
			t.Errorf("%q logged %d times, want once", logRecovered, n)
		}
	})
}
