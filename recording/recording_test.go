package recording_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wattrec/wattrec/control"
	"github.com/wattrec/wattrec/export"
	"github.com/wattrec/wattrec/internal/simtest"
	"github.com/wattrec/wattrec/query"
	"github.com/wattrec/wattrec/recorder"
	"github.com/wattrec/wattrec/recording"
	"github.com/wattrec/wattrec/simulator"
	"github.com/wattrec/wattrec/store"
)

// daemon is a recording.Daemon running on a simulator, in a test.
type daemon struct {
	*recording.Daemon
	path    string
	sent    *simtest.Ledger
	srv     recorder.Server
	stopSim func()
	stop    func() error // stops the daemon and returns Run's error
}

// startDaemon records a fast simulator into a fresh file (prepared by
// fill, if set) and waits for 100 events.
func startDaemon(t *testing.T, fill func(*store.DB)) *daemon {
	t.Helper()
	x := &daemon{sent: simtest.NewLedger()}
	cfg := simtest.FastConfig(simulator.FormatSample)
	cfg.OnEvent = x.sent.OnEvent(t)
	_, x.srv, x.stopSim = simtest.Start(t, cfg, "unix")
	x.path = filepath.Join(t.TempDir(), "run.db")
	db, err := store.Open(x.path, store.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	if fill != nil {
		fill(db)
	}
	x.Daemon, x.stop = runDaemon(t, db, 0, x.srv)
	x.sent.WaitEvents(t, 100)
	return x
}

// runDaemon records servers into db (a counter interval of counterEvery,
// or the default) until stop, which returns Run's error; it returns once
// the recorder started.
func runDaemon(t *testing.T, db *store.DB, counterEvery time.Duration, servers ...recorder.Server) (*recording.Daemon, func() error) {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	client := recorder.NewClient(servers)
	client.Logger = log
	if counterEvery > 0 {
		client.CounterInterval = counterEvery
	}
	rec := recorder.New(client, db)
	rec.FlushInterval = 50 * time.Millisecond
	d := &recording.Daemon{Recorder: rec, DB: db, Logger: log}
	runCtx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(runCtx) }()
	t.Cleanup(stop)
	<-rec.Started()
	return d, func() error { stop(); return <-done }
}

// TestDaemon records a simulator and reads the file through its control
// socket while it runs, then on the file once it stopped: the same
// answers, marks stamped by the recorder, and begin/end refused on a
// file no recorder holds.
func TestDaemon(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d := startDaemon(t, nil)
	sent, srv, path, db := d.sent, d.srv, d.path, d.DB
	sent.WaitEvents(t, 200)

	// While recording: Open reaches the recorder.
	rd, err := recording.Open(ctx, path, false)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := rd.(*control.Client); !ok {
		t.Fatalf("Open while recording gave %T, want the control client", rd)
	}
	begin, err := rd.Mark(ctx, control.MarkRequest{Action: control.MarkBegin, Name: "epoch", Source: "test"})
	if err != nil || !begin.Open {
		t.Fatalf("mark begin: %+v, %v", begin, err)
	}
	sent.WaitEvents(t, sent.Events()+100)
	end, err := rd.Mark(ctx, control.MarkRequest{Action: control.MarkEnd, Name: "epoch"})
	if err != nil || end.Open || end.ID != begin.ID || end.EndMs < end.BeginMs {
		t.Fatalf("mark end: %+v, %v", end, err)
	}
	if _, err := rd.Mark(ctx, control.MarkRequest{Action: control.MarkEnd, Name: "epoch"}); !errors.Is(err, store.ErrNoOpenMark) {
		t.Fatalf("second end: %v, want store.ErrNoOpenMark through the socket", err)
	}
	// The mark stands at its counter readings (stored before the answer),
	// so they bracket its window exactly. (The mark used to be stamped
	// first, the counters read after: the begin reading fell inside.)
	for _, k := range []store.SeriesKey{{Endpoint: srv.Endpoint(), Kind: store.KindGPU}, {Endpoint: srv.Endpoint(), Kind: store.KindCPU}} {
		rs, err := db.Counters(ctx, k, end.BeginMs-1000, end.EndMs+1001)
		var begins, ends int
		for _, r := range rs {
			if r.Trigger == store.TriggerMark && r.TakenMs <= end.BeginMs {
				begins++
			}
			if r.Trigger == store.TriggerMark && r.TakenMs >= end.EndMs {
				ends++
			}
		}
		// (The refused second end reads the counters too.)
		if err != nil || begins != 1 || ends < 1 {
			t.Errorf("%s: counter readings around the mark %d → %d: %+v, %v; want one mark reading at or before its begin, one at or after its end", k, end.BeginMs, end.EndMs, rs, err)
		}
	}
	// A window that lies in the past (the readings that cover its end
	// arrived) reads the same through the socket and from the recorder
	// itself.
	sent.WaitEvents(t, sent.Events()+200)
	opt := query.Options{Window: "epoch", Format: query.FormatCSV}
	var remote, local bytes.Buffer
	if err := rd.Query(ctx, &remote, opt); err != nil {
		t.Fatal(err)
	}
	if err := d.Query(ctx, &local, opt); err != nil {
		t.Fatal(err)
	}
	if remote.String() != local.String() || !strings.Contains(remote.String(), "epoch #1") {
		t.Fatalf("remote:\n%s\nlocal:\n%s", remote.String(), local.String())
	}
	var csv bytes.Buffer
	req := export.Request{Filter: query.Filter{Range: query.Between(begin.BeginMs, end.EndMs)}, Format: export.FormatCSV}
	if err := rd.Export(ctx, &csv, req); err != nil || strings.Count(csv.String(), "\n") < 10 {
		t.Fatalf("export through the socket: %v\n%s", err, csv.String())
	}
	rd.Close()

	if err := d.stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	// Stopped: Open reads the file itself, with the same answer.
	rd, err = recording.Open(ctx, path, false)
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	if _, ok := rd.(*recording.File); !ok {
		t.Fatalf("Open of a closed file gave %T, want *recording.File", rd)
	}
	var after bytes.Buffer
	if err := rd.Query(ctx, &after, opt); err != nil || after.String() != remote.String() {
		t.Fatalf("after the recorder stopped: %v\n%s\nwant\n%s", err, after.String(), remote.String())
	}
	if _, err := rd.Mark(ctx, control.MarkRequest{Action: control.MarkBegin, Name: "late"}); !errors.Is(err, recording.ErrNeedsRecorder) {
		t.Fatalf("begin on a file: %v, want ErrNeedsRecorder", err)
	}
}

// TestFile_MarkAdd adds windows to a closed file opened writable.
func TestFile_MarkAdd(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "w.db")
	db, err := store.Open(path, store.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	rd, err := recording.Open(ctx, path, true)
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	m, err := rd.Mark(ctx, control.MarkRequest{Action: control.MarkAdd, Name: "warmup", FromMs: 1000, ToMs: 5000})
	if err != nil || m.Open || m.BeginMs != 1000 || m.EndMs != 5000 || m.ID == 0 {
		t.Fatalf("add: %+v, %v", m, err)
	}
	if _, err := rd.Mark(ctx, control.MarkRequest{Action: control.MarkAdd, Name: "bad", FromMs: 5000, ToMs: 5000}); !errors.Is(err, store.ErrInvalidMark) {
		t.Fatalf("an empty window: %v, want store.ErrInvalidMark", err)
	}
	if _, err := rd.Mark(ctx, control.MarkRequest{Action: "pause", Name: "x"}); !errors.Is(err, query.ErrInvalid) {
		t.Fatalf("an unknown action: %v, want query.ErrInvalid", err)
	}
	marks, err := rd.Marks(ctx, "")
	if err != nil || len(marks) != 1 || marks[0].Name != "warmup" {
		t.Fatalf("marks = %+v, %v", marks, err)
	}
}

// TestOpen_NeverCreates: Open, writable (for mark add) or not, refuses a
// file that does not exist and creates none.
func TestOpen_NeverCreates(t *testing.T) {
	for _, writable := range []bool{false, true} {
		path := filepath.Join(t.TempDir(), "typo.db")
		rd, err := recording.Open(context.Background(), path, writable)
		if err == nil {
			rd.Close()
		}
		if !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("writable %v: err = %v, want fs.ErrNotExist", writable, err)
		}
		if _, err := os.Stat(path); err == nil {
			t.Errorf("writable %v: Open created the file", writable)
		}
	}
}

// TestDaemon_TwoEndpoints records two daemons into one file; the query
// of the whole recording compares the stream with the counter and
// anchors the energy for every device of both, not only for the one
// whose session starts the recording (the whole-recording window used to
// start before the other's first counter reading only by chance).
func TestDaemon_TwoEndpoints(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	sent := simtest.NewLedger()
	cfg := simtest.FastConfig(simulator.FormatSample)
	cfg.OnEvent = sent.OnEvent(t)
	_, a, _ := simtest.Start(t, cfg, "unix")
	cfg.Seed = 2
	_, b, _ := simtest.Start(t, cfg, "tcp")
	db := simtest.MustOpenDB(t)
	_, stop := runDaemon(t, db, 200*time.Millisecond, a, b)
	sent.WaitEvents(t, 1500)
	if err := stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}

	rep, err := query.Energy(ctx, db, query.Options{})
	if err != nil {
		t.Fatal(err)
	}
	devices := 0
	for _, r := range rep.Rows {
		if r.Group == "total" {
			continue
		}
		devices++
		t.Logf("%s: integral/counter %.4f, anchored over %d of %d ms", r.Group, r.CounterRatio(), r.CounterMs, r.WindowMs)
		if r.CounterSeries != 1 || math.IsNaN(r.CounterRatio()) {
			t.Errorf("%s: %d series with counter intervals, integral/counter %.4f; want the check", r.Group, r.CounterSeries, r.CounterRatio())
		}
		// Anchoring itself is the query's choice (a 200 Hz stream's
		// bound can be tighter than the counter's timing on a loaded
		// machine; a simulator skipping values of a slow reader makes the
		// counter disagree, with a warning): what must hold is that every
		// device's counter readings were found in the window (above).
		if r.AnchoredSeries > 0 && r.CounterMs < r.WindowMs/2 {
			t.Errorf("%s: anchored over %d of %d ms, want most of the window", r.Group, r.CounterMs, r.WindowMs)
		}
	}
	if devices != 8 { // 2 GPUs, a CPU and its DRAM, twice
		t.Errorf("%d device rows, want 8: %+v", devices, rep.Rows)
	}
	for _, w := range rep.Warnings {
		t.Logf("warning: %s", w)
	}
}

// TestDaemon_LongPath: a recording whose file path is longer than a Unix
// socket path can be still answers live queries (through the link to its
// socket in a private directory).
func TestDaemon_LongPath(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	sent := simtest.NewLedger()
	cfg := simtest.FastConfig(simulator.FormatSample)
	cfg.OnEvent = sent.OnEvent(t)
	_, srv, _ := simtest.Start(t, cfg, "unix")
	dir := filepath.Join(t.TempDir(), strings.Repeat("long-name-", 10))
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "run.db")
	db, err := store.Open(path, store.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	_, stop := runDaemon(t, db, 0, srv)
	sent.WaitEvents(t, 100)

	rd, err := recording.Open(ctx, path, false)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := rd.(*control.Client); !ok {
		t.Errorf("Open of a live file with a %d-byte path gave %T, want the control client", len(path), rd)
	}
	var out bytes.Buffer
	if err := rd.Query(ctx, &out, query.Options{Format: query.FormatCSV, By: query.ByTotal}); err != nil || !strings.Contains(out.String(), ",total,") {
		t.Errorf("live query: %v\n%s", err, out.String())
	}
	rd.Close()
	if err := stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
}
