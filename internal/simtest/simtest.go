// Package simtest runs wattrec's zeusd simulator for tests and keeps a
// ledger of every value it sent, to compare with what a store holds.
package simtest

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wattrec/wattrec/recorder"
	"github.com/wattrec/wattrec/simulator"
	"github.com/wattrec/wattrec/store"
)

// Value identifies one device value as the daemon sent it.
type Value struct {
	Kind     store.Kind
	Device   int32
	DaemonMs int64
	MW       int64
	// Seed marks a stored seed reading (Stored); a ledger's values are
	// never seeds.
	Seed bool
}

// Ledger records what a simulator wrote to its streams. Hook it up with
// Config.OnEvent = ledger.OnEvent(t).
type Ledger struct {
	mu     sync.Mutex
	values map[Value]int
	events atomic.Int64
	notify chan struct{}
}

// NewLedger returns an empty ledger.
func NewLedger() *Ledger {
	return &Ledger{values: map[Value]int{}, notify: make(chan struct{}, 1)}
}

// OnEvent returns a simulator.Config.OnEvent hook that decodes each event
// with the recorder's decoders and counts its values.
func (l *Ledger) OnEvent(tb testing.TB) func(simulator.Event) {
	return func(ev simulator.Event) {
		decode := recorder.DecodeGPU
		if ev.Stream == "cpu" {
			decode = recorder.DecodeCPU
		}
		vals, err := decode(nil, ev.Data)
		if err != nil {
			tb.Errorf("simulator sent an event the decoder rejects: %s: %v", ev.Data, err)
		}
		l.mu.Lock()
		for _, v := range vals {
			l.values[Value{Kind: v.Kind, Device: v.Device, DaemonMs: v.DaemonMs, MW: v.MilliWatts}]++
		}
		l.mu.Unlock()
		l.events.Add(1)
		select {
		case l.notify <- struct{}{}:
		default:
		}
	}
}

// Events is the number of events sent so far.
func (l *Ledger) Events() int64 { return l.events.Load() }

// WaitEvents blocks until at least n events were sent, or fails tb after
// 30 s.
func (l *Ledger) WaitEvents(tb testing.TB, n int64) {
	tb.Helper()
	deadline := time.After(30 * time.Second)
	for l.events.Load() < n {
		select {
		case <-l.notify:
		case <-deadline:
			tb.Fatalf("simulator sent %d events, want %d", l.events.Load(), n)
		}
	}
}

// Values returns a copy of the multiset of values sent.
func (l *Ledger) Values() map[Value]int {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make(map[Value]int, len(l.values))
	for k, n := range l.values {
		out[k] = n
	}
	return out
}

// Stored returns the multiset of the readings in db, seeds marked, and
// the number of seed readings. The store keeps a seed and the first
// streamed event that repeats it as one reading, the seed: Diff counts a
// stored seed as that event.
func Stored(tb testing.TB, db *store.DB) (map[Value]int, int) {
	tb.Helper()
	ctx := context.Background()
	series, err := db.Series(ctx, "", false)
	if err != nil {
		tb.Fatal(err)
	}
	m, seeds := map[Value]int{}, 0
	for _, s := range series {
		err := db.Scan(ctx, s.SeriesKey, -1<<62, 1<<62, func(r *store.Reading) error {
			if r.Seed {
				seeds++
			}
			m[Value{Kind: r.Kind, Device: r.Device, DaemonMs: r.DaemonMs, MW: r.MilliWatts, Seed: r.Seed}]++
			return nil
		})
		if err != nil {
			tb.Fatal(err)
		}
	}
	return m, seeds
}

// Count is the size of a multiset.
func Count(m map[Value]int) int {
	n := 0
	for _, c := range m {
		n += c
	}
	return n
}

// Covers reports whether got holds every value of want, a stored seed
// standing for the one event that repeats it (see Diff).
func Covers(got, want map[Value]int) bool { return len(Missing(got, want)) == 0 }

// Missing is the multiset of want's values that got lacks, a stored seed
// standing for the one event that repeats it.
func Missing(got, want map[Value]int) map[Value]int {
	out := map[Value]int{}
	for k, n := range want {
		seed := k
		seed.Seed = true
		if have := got[k] + min(got[seed], 1); have < n {
			out[k] = n - have
		}
	}
	return out
}

// Extra is the multiset of got's streamed (non-seed) values that want
// lacks.
func Extra(got, want map[Value]int) map[Value]int {
	out := map[Value]int{}
	for k, n := range got {
		if !k.Seed && want[k] < n {
			out[k] = n - want[k]
		}
	}
	return out
}

// Diff fails tb unless got and want are the same multiset.
func Diff(tb testing.TB, got, want map[Value]int) {
	tb.Helper()
	missing, extra := Missing(got, want), Extra(got, want)
	if len(missing) > 0 || len(extra) > 0 {
		tb.Fatalf("store differs from what the daemon sent (%d values): %d missing %v, %d extra %v",
			Count(want), len(missing), examples(missing), len(extra), examples(extra))
	}
}

// examples formats up to 5 values of m.
func examples(m map[Value]int) []string {
	var out []string
	for k, n := range m {
		if len(out) == 5 {
			break
		}
		out = append(out, fmt.Sprintf("%+v×%d", k, n))
	}
	return out
}

// Start serves a simulator on network ("tcp" on 127.0.0.1, or "unix" in
// a temp dir) and returns it, the recorder.Server that reaches it, and a
// stop function that shuts it down and waits (also run on cleanup).
func Start(tb testing.TB, cfg simulator.Config, network string) (*simulator.Server, recorder.Server, func()) {
	tb.Helper()
	s, err := simulator.New(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	var ln net.Listener
	if network == "unix" {
		ln, err = net.Listen("unix", filepath.Join(tb.TempDir(), "zeusd.sock"))
	} else {
		ln, err = net.Listen("tcp", "127.0.0.1:0")
	}
	if err != nil {
		tb.Fatal(err)
	}
	srv := recorder.Server{Network: network, Address: ln.Addr().String()}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				tb.Errorf("simulator: %v", err)
			}
		})
	}
	tb.Cleanup(stop)
	return s, srv, stop
}

// FastConfig is a small, quick node: 2 GPUs at 200 Hz, 1 CPU with DRAM at
// 100 Hz, the daemon clock 5 s behind.
func FastConfig(format string) simulator.Config {
	cfg := simulator.DefaultConfig()
	cfg.GPUs, cfg.CPUs = 2, 1
	cfg.GPUPollHz, cfg.CPUPollHz = 200, 100
	cfg.Format = format
	cfg.ClockOffset = -5 * time.Second
	return cfg
}

// MustOpenDB opens a fresh store in a temp dir (without fsync: tests do
// not survive power loss). On cleanup it checks the file's B+tree and
// chunks for consistency, then closes it.
func MustOpenDB(tb testing.TB) *store.DB {
	tb.Helper()
	db, err := store.Open(filepath.Join(tb.TempDir(), "w.db"), store.Options{NoSync: true})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := db.Check(); err != nil {
			tb.Errorf("consistency check: %v", err)
		}
		if err := db.Close(); err != nil {
			tb.Error(err)
		}
	})
	return db
}

// OpenStored opens the recording at path read-only, as a reader after
// the recorder, and closes it on cleanup.
func OpenStored(tb testing.TB, path string) *store.DB {
	tb.Helper()
	db, err := store.Open(path, store.Options{ReadOnly: true})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	return db
}

// WaitFor polls cond until it holds, failing tb after 30 s.
func WaitFor(tb testing.TB, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatal("condition not met in 30 s")
		}
		<-time.After(5 * time.Millisecond) // poll spacing, not synchronisation
	}
}
