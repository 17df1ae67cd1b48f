package recorder

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"runtime/debug"
	"slices"
	"syscall"
	"testing"
	"time"

	berrors "go.etcd.io/bbolt/errors"

	"github.com/wattrec/wattrec/store"
)

func TestRetryable(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{&fs.PathError{Op: "write", Path: "/d/w.db", Err: syscall.ENOSPC}, true},
		{fmt.Errorf("store: %w", &fs.PathError{Op: "write", Path: "/d/w.db", Err: syscall.EDQUOT}), true},
		// bbolt's grow: fmt.Errorf("file resize error: %s", err).
		{fmt.Errorf("file resize error: %s", &fs.PathError{Op: "truncate", Path: "/d/w.db", Err: syscall.ENOSPC}), true},
		{&fs.PathError{Op: "write", Path: "/d/w.db", Err: syscall.EIO}, false},
		{berrors.ErrDatabaseNotOpen, false},
		{fmt.Errorf("series: %w", store.ErrCorrupt), false},
		{fmt.Errorf("endpoint %q gpu session: invalid stream 7", "n1"), false},
		{context.DeadlineExceeded, false},
		{errors.New("disk full"), false}, // not a full disk the errno knows
	} {
		if got := retryable(tc.err); got != tc.want {
			t.Errorf("retryable(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

func TestAppendCut(t *testing.T) {
	ses := func(start, end int64, open bool, reason string, events uint64) store.Session {
		return store.Session{Endpoint: "n1", Stream: store.StreamGPU, Start: start, End: end, Open: open, Reason: reason, Events: events}
	}
	cuts := []cut{{from: 100, to: 200}, {from: 300, to: 400}}
	for _, tc := range []struct {
		name string
		s    store.Session
		want []store.Session
	}{
		{"Before", ses(0, 100, false, "x", 3), []store.Session{ses(0, 100, false, "x", 3)}},
		{"Between", ses(200, 300, true, "", 3), []store.Session{ses(200, 300, true, "", 3)}},
		{"After", ses(400, 500, true, "", 3), []store.Session{ses(400, 500, true, "", 3)}},
		{"ZeroLengthAtCut", ses(100, 100, true, "", 0), []store.Session{ses(100, 100, true, "", 0)}},
		{"EndsInside", ses(0, 150, false, "x", 3), []store.Session{ses(0, 100, false, DiskFullReason, 3)}},
		{"OpenEndsInside", ses(0, 150, true, "", 3), []store.Session{ses(0, 100, false, DiskFullReason, 3)}},
		{"Across", ses(50, 250, true, "", 3), []store.Session{ses(50, 100, false, DiskFullReason, 0), ses(200, 250, true, "", 3)}},
		{"AcrossClosed", ses(50, 250, false, "x", 3), []store.Session{ses(50, 100, false, DiskFullReason, 0), ses(200, 250, false, "x", 3)}},
		{"StartsInside", ses(150, 250, true, "", 3), []store.Session{ses(150, 150, false, DiskFullReason, 0), ses(200, 250, true, "", 3)}},
		{"Inside", ses(120, 180, false, "x", 3), []store.Session{ses(120, 120, false, DiskFullReason, 3)}},
		{"BothCuts", ses(0, 500, true, "", 3), []store.Session{
			ses(0, 100, false, DiskFullReason, 0), ses(200, 300, false, DiskFullReason, 0), ses(400, 500, true, "", 3)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := appendCut(nil, tc.s, cuts)
			if !slices.Equal(got, tc.want) {
				t.Errorf("appendCut(%+v) =\n%+v, want\n%+v", tc.s, got, tc.want)
			}
		})
	}
}

func TestAddCut(t *testing.T) {
	var list []cut
	list = addCut(list, cut{from: 100, to: 200, outage: 1})
	list = addCut(list, cut{from: 250, to: 300, outage: 1}) // same outage: one cut
	list = addCut(list, cut{from: 500, to: 600, outage: 2})
	list = addCut(list, cut{from: 590, to: 700, outage: 3}) // overlaps
	want := []cut{{from: 100, to: 300, outage: 1}, {from: 500, to: 700, outage: 2}}
	if !slices.Equal(list, want) {
		t.Errorf("cuts = %+v, want %+v", list, want)
	}
}

// receive passes b through the writer's queue and merges it, as run
// does with what the client sends.
func (w *writer) receive(b store.Batch) {
	w.in.send(b)
	w.merge(<-w.in.ch)
}

// memStore is an Appender in memory whose disk fills on demand.
type memStore struct {
	full     bool
	readings []store.Reading
	sessions map[sessionID]store.Session
}

func (m *memStore) Write(_ context.Context, b *store.Batch) error {
	if m.full {
		return &fs.PathError{Op: "write", Path: "mem", Err: syscall.ENOSPC}
	}
	m.readings = append(m.readings, b.Readings...)
	for _, s := range b.Sessions {
		m.sessions[sessionID{s.Endpoint, s.Stream, s.Start}] = s
	}
	return nil
}

// TestWriter_Drop drives the writer by hand through an outage with a
// small backlog: exactly the oldest readings are dropped, a late reading
// stamped among them too, and the stored sessions leave out their time
// (for CPU values also the poll period before them).
func TestWriter_Drop(t *testing.T) {
	now := int64(1000)
	m := &memStore{sessions: map[sessionID]store.Session{}}
	r := &Recorder{Client: &Client{Now: func() time.Time { return time.UnixMilli(now) }}, DB: m,
		BatchSize: 1000, MaxBacklog: 100 * readingBytes, MaxRetryBackoff: time.Millisecond,
		FinalFlushTimeout: time.Second, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	w := newWriter(r, newQueue(1, 1<<30), make(chan struct{}))
	defer w.stopRetry()

	const ep = "n1:4938"
	gpuSession := store.Session{Endpoint: ep, Stream: store.StreamGPU, Start: 1000, End: 1000, Open: true, Events: 5}
	cpuSession := store.Session{Endpoint: ep, Stream: store.StreamCPU, Start: 1000, End: 1000, Open: true, Events: 5}
	w.receive(store.Batch{Sessions: []store.Session{gpuSession, cpuSession}})
	var sent []store.Reading
	tick := func(ms int64) { // one GPU and one CPU batch every 10 ms
		gpu := []store.Reading{{Endpoint: ep, Kind: store.KindGPU, Device: 0, TimeMs: ms}, {Endpoint: ep, Kind: store.KindGPU, Device: 1, TimeMs: ms}}
		cpu := []store.Reading{{Endpoint: ep, Kind: store.KindCPU, Device: 0, TimeMs: ms}, {Endpoint: ep, Kind: store.KindDRAM, Device: 0, TimeMs: ms}}
		w.receive(store.Batch{Readings: gpu})
		w.receive(store.Batch{Readings: cpu})
		sent = append(append(sent, gpu...), cpu...)
		now = ms
	}
	for ms := int64(1000); ms < 2000; ms += 10 {
		tick(ms)
	}
	if err := w.flush(context.Background()); err != nil {
		t.Fatal(err)
	}

	// The disk fills: 100 readings' worth waits, the rest is dropped.
	m.full = true
	for ms := int64(2000); ms < 4000; ms += 10 {
		tick(ms)
		if ms == 2000 {
			if err := w.flush(context.Background()); !errors.Is(err, ErrDiskFull) {
				t.Fatalf("flush on a full disk = %v, want ErrDiskFull", err)
			}
		}
		for _, seg := range w.sealed { // emptied segments are folded into the next
			if len(seg.Readings) == 0 {
				t.Fatalf("at %d ms a segment without readings waits: %+v", ms, seg)
			}
		}
		if ms == 3000 { // a late GPU reading, stamped among the dropped ones
			late := store.Reading{Endpoint: ep, Kind: store.KindGPU, Device: 0, TimeMs: 2005, MilliWatts: 1}
			w.receive(store.Batch{Readings: []store.Reading{late}})
			sent = append(sent, late)
		}
	}
	m.full = false
	now = 4000
	if err := w.flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if w.full || w.dropped == 0 || len(m.readings)+w.dropped != len(sent) {
		t.Fatalf("full=%v, stored %d + dropped %d, sent %d", w.full, len(m.readings), w.dropped, len(sent))
	}

	// Per stream, the dropped readings are one stretch from the outage's
	// start, and nothing in it is stored.
	stored := map[store.Reading]bool{}
	for _, rd := range m.readings {
		stored[rd] = true
	}
	lo, hi := map[store.Stream]int64{}, map[store.Stream]int64{}
	for _, rd := range sent {
		if s := store.StreamOf(rd.Kind); !stored[rd] {
			if _, ok := lo[s]; !ok || rd.TimeMs < lo[s] {
				lo[s] = rd.TimeMs
			}
			hi[s] = max(hi[s], rd.TimeMs)
		}
	}
	for _, rd := range sent {
		s := store.StreamOf(rd.Kind)
		if in := lo[s] <= rd.TimeMs && rd.TimeMs <= hi[s]; in == stored[rd] {
			t.Errorf("%+v: stored=%v, dropped span of its stream %d…%d", rd, stored[rd], lo[s], hi[s])
		}
	}
	if lo[store.StreamGPU] != 2000 || lo[store.StreamCPU] != 2000 || hi[store.StreamGPU] < 3000 {
		t.Fatalf("dropped %v…%v, want from 2000 (the oldest) past 3000 (the late reading's arrival)", lo, hi)
	}

	// The sessions: cut at the first dropped GPU reading, at the last
	// stored CPU reading (1990: its value's period ends where the first
	// dropped one's begins), going on after the last dropped one.
	want := map[sessionID]store.Session{}
	for _, s := range []store.Session{
		{Endpoint: ep, Stream: store.StreamGPU, Start: 1000, End: 2000, Reason: DiskFullReason},
		{Endpoint: ep, Stream: store.StreamGPU, Start: hi[store.StreamGPU] + 1, End: 4000, Open: true, Events: 5},
		{Endpoint: ep, Stream: store.StreamCPU, Start: 1000, End: 1990, Reason: DiskFullReason},
		{Endpoint: ep, Stream: store.StreamCPU, Start: hi[store.StreamCPU] + 1, End: 4000, Open: true, Events: 5},
	} {
		want[sessionID{s.Endpoint, s.Stream, s.Start}] = s
	}
	checkSessions := func() {
		t.Helper()
		for id, s := range m.sessions {
			if want[id] != s {
				t.Errorf("stored session %+v, want %+v", s, want[id])
			}
		}
		if len(m.sessions) != len(want) {
			t.Errorf("stored %d sessions, want %d", len(m.sessions), len(want))
		}
	}
	checkSessions()

	// Closing the session later is cut the same way; a new one is not.
	gpuSession.End, gpuSession.Open, gpuSession.Reason, gpuSession.Events = 4500, false, "server closed", 7
	next := store.Session{Endpoint: ep, Stream: store.StreamGPU, Start: 5000, End: 5000, Open: true}
	w.receive(store.Batch{Sessions: []store.Session{gpuSession, next}})
	now = 5000
	if err := w.flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	want[sessionID{ep, store.StreamGPU, hi[store.StreamGPU] + 1}] = store.Session{Endpoint: ep, Stream: store.StreamGPU,
		Start: hi[store.StreamGPU] + 1, End: 4500, Reason: "server closed", Events: 7}
	want[sessionID{ep, store.StreamCPU, hi[store.StreamCPU] + 1}] = store.Session{Endpoint: ep, Stream: store.StreamCPU,
		Start: hi[store.StreamCPU] + 1, End: 5000, Open: true, Events: 5}
	want[sessionID{ep, store.StreamGPU, 5000}] = next
	checkSessions()
}

// sizedStore is an Appender in memory that keeps what each commit wrote.
type sizedStore struct {
	during   func() // runs in each Write: what arrives meanwhile
	readings []store.Reading
	commits  []int                   // readings per commit
	arrays   map[*store.Reading]bool // the backing arrays of the committed segments
}

func (m *sizedStore) Write(_ context.Context, b *store.Batch) error {
	if m.during != nil {
		m.during()
	}
	m.readings = append(m.readings, b.Readings...)
	m.commits = append(m.commits, len(b.Readings))
	if len(b.Readings) > 0 {
		m.arrays[&b.Readings[:1][0]] = true
	}
	return nil
}

// TestWriter_Segments feeds the writer full stream batches as under
// load, the queue filling up during every commit: each commit writes what
// arrived until then (at least BatchSize readings, at most that plus the
// queue), in order, nothing waits in memory after a flush, and the
// segments are reused rather than allocated per commit.
func TestWriter_Segments(t *testing.T) {
	m := &sizedStore{arrays: map[*store.Reading]bool{}}
	r := &Recorder{Client: &Client{Now: time.Now}, DB: m, BatchSize: 1000, MaxBacklog: DefaultMaxBacklog,
		FinalFlushTimeout: time.Second, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	q := newQueue(6, 1<<30) // 1536 readings queue during a commit
	w := newWriter(r, q, make(chan struct{}))
	defer w.stopRetry()

	var sent int64
	batch := func() store.Batch {
		rs := newPending(maxPendingReadings)
		for range maxPendingReadings {
			rs = append(rs, store.Reading{Endpoint: "n1:4938", Kind: store.KindGPU, TimeMs: sent})
			sent++
		}
		return store.Batch{Readings: rs}
	}
	fill := func() {
		for len(q.ch) < cap(q.ch) {
			q.send(batch())
		}
	}
	m.during = fill // the streams outpace the commits
	// What run does with each batch it receives.
	for range 300 {
		fill()
		w.merge(<-q.ch)
		if len(w.tail.Readings) >= r.BatchSize {
			if err := w.flush(context.Background()); err != nil { // takes in the queue after the commit
				t.Fatal(err)
			}
			if len(w.sealed) != 0 {
				t.Fatalf("%d segments wait after a flush", len(w.sealed))
			}
		}
	}
	m.during = nil
	w.drainQueued()
	if err := w.flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if int64(len(m.readings)) != sent {
		t.Fatalf("stored %d readings, sent %d", len(m.readings), sent)
	}
	for i, rd := range m.readings {
		if rd.TimeMs != int64(i) {
			t.Fatalf("reading %d stored with time %d: out of order", i, rd.TimeMs)
		}
	}
	most := r.BatchSize + (cap(q.ch)+1)*maxPendingReadings
	for i, n := range m.commits[:len(m.commits)-1] {
		if n < r.BatchSize || n > most {
			t.Fatalf("commit %d wrote %d readings, want %d to %d", i, n, r.BatchSize, most)
		}
	}
	// New backing arrays only until the spares are there, not one per commit.
	if len(m.arrays) > 2+maxSpares || len(m.commits) < 20 {
		t.Errorf("%d commits used %d distinct segments, want at most %d", len(m.commits), len(m.arrays), 2+maxSpares)
	}
}

// TestWriter_MemoryLimit: the writer sets MemoryLimit, raises it by the
// readings it holds (here the backlog while the disk is full), lowers it
// again once they are stored, and puts back the runtime's own limit at
// the end. (The limit is process-wide: the test's is far above what the
// tests use.)
func TestWriter_MemoryLimit(t *testing.T) {
	const base = 1 << 40
	m := &memStore{sessions: map[sessionID]store.Session{}}
	r := &Recorder{Client: &Client{Now: time.Now}, DB: m, BatchSize: 20_000, MaxBacklog: DefaultMaxBacklog,
		MemoryLimit: base, MaxRetryBackoff: time.Millisecond, FinalFlushTimeout: time.Second,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	w := newWriter(r, newQueue(1, 1<<30), make(chan struct{}))
	defer w.stopRetry()
	prior := debug.SetMemoryLimit(-1)
	w.priorLimit = prior
	limit := func() int64 { return debug.SetMemoryLimit(-1) }

	w.applyMemoryLimit()
	if got := limit(); got != base {
		t.Fatalf("limit while recording = %d, want MemoryLimit %d", got, base)
	}
	feed := func(n int) {
		for i := range n {
			w.receive(store.Batch{Readings: []store.Reading{{Endpoint: "n1:4938", Kind: store.KindGPU, TimeMs: int64(i)}}})
		}
	}
	m.full = true
	feed(10)
	if err := w.flush(context.Background()); !errors.Is(err, ErrDiskFull) {
		t.Fatalf("flush on a full disk = %v, want ErrDiskFull", err)
	}
	feed(5 * w.segmentSize()) // seals five segments: 5.6 MB
	backlogLimit := limit()
	if want := base + w.held()>>20<<20; backlogLimit != want || w.held() < int64(5*w.segmentSize())*readingBytes {
		t.Fatalf("limit with a backlog of %d bytes = %d, want %d", w.held(), backlogLimit, want)
	}
	m.full = false
	if err := w.flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got, want := limit(), base+w.held()>>20<<20; got != want || got > backlogLimit-4<<20 {
		t.Fatalf("limit after the backlog was stored = %d, want %d (%d with the backlog)", got, want, backlogLimit)
	}
	w.restoreMemoryLimit()
	if got := limit(); got != prior {
		t.Fatalf("limit after the recording = %d, want the runtime's own %d", got, prior)
	}
}
