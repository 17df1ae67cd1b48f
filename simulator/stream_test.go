package simulator_test

import (
	"bufio"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"reflect"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/wattrec/wattrec/simulator"
)

// fakeClock is a true clock that moves only when told to.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Add moves the clock on by d and returns the new time.
func (c *fakeClock) Add(d time.Duration) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
	return c.t
}

// waitPolled waits until kind's poller has run its tick at daemon time t:
// get_power answers with the running poller's latest tick.
func (ts *testServer) waitPolled(tb testing.TB, kind string, t time.Time) {
	tb.Helper()
	waitFor(tb, kind+" poller at "+t.Format(time.StampMilli), func() bool {
		var p struct {
			TimestampMS int64          `json:"timestamp_ms"`
			PowerMW     map[string]any `json:"power_mw"`
		}
		ts.getJSON(tb, "/"+kind+"/get_power", "", &p)
		return p.TimestampMS == t.UnixMilli()
	})
}

// ledger keeps what the simulator wrote to each stream connection.
type ledger struct {
	mu     sync.Mutex
	events map[int64][]simulator.Event
}

func (l *ledger) OnEvent(e simulator.Event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.events == nil {
		l.events = map[int64][]simulator.Event{}
	}
	l.events[e.Conn] = append(l.events[e.Conn], e)
}

func (l *ledger) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, es := range l.events {
		n += len(es)
	}
	return n
}

// only returns the events of the one connection the ledger saw.
func (l *ledger) only(tb testing.TB) []simulator.Event {
	tb.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.events) != 1 {
		tb.Fatalf("events on %d connections, want 1", len(l.events))
	}
	for _, es := range l.events {
		return es
	}
	return nil
}

// smallBuffers accepts TCP connections with a small kernel send buffer,
// so that a client that stops reading blocks the server's writes soon.
type smallBuffers struct{ net.Listener }

func (l smallBuffers) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetWriteBuffer(4096)
	}
	return c, err
}

// openRawStream opens a stream over a plain TCP connection with a small
// receive buffer and reads it event by event (readStream with no buffer):
// while the test takes no event, the client reads nothing and the
// socket's buffers fill.
func openRawStream(tb testing.TB, addr, path string) *stream {
	tb.Helper()
	d := net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
		})
		return errors.Join(err, serr)
	}}
	conn, err := d.Dial("tcp", addr)
	if err != nil {
		tb.Fatal(err)
	}
	req, err := http.NewRequest(http.MethodGet, "http://"+addr+path, nil)
	if err != nil {
		tb.Fatal(err)
	}
	if err := req.Write(conn); err != nil {
		tb.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReaderSize(conn, 4096), req)
	if err != nil {
		tb.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		tb.Fatalf("GET %s: status %d", path, resp.StatusCode)
	}
	// Closing the connection ends the body; closing the body would read
	// it to its end.
	return readStream(tb, struct {
		io.Reader
		io.Closer
	}{resp.Body, conn}, 0)
}

// gpuValue is one GPU value of a stream event.
type gpuValue struct {
	ms  int64
	dev int
	mw  int64
}

// decodeGPUEvent returns the GPU values of an event in either format.
func decodeGPUEvent(tb testing.TB, format, data string) []gpuValue {
	tb.Helper()
	if format == simulator.FormatSample {
		ms, id, mw := decodeGPUSample(tb, data)
		return []gpuValue{{ms, id, mw}}
	}
	var ev struct {
		TimestampMS int64         `json:"timestamp_ms"`
		PowerMW     map[int]int64 `json:"power_mw"`
	}
	if err := json.Unmarshal([]byte(data), &ev); err != nil {
		tb.Fatalf("decode %s: %v", data, err)
	}
	var vs []gpuValue
	for d := range len(ev.PowerMW) {
		mw, ok := ev.PowerMW[d]
		if !ok {
			tb.Fatalf("snapshot %s lacks GPU %d", data, d)
		}
		vs = append(vs, gpuValue{ev.TimestampMS, d, mw})
	}
	return vs
}

// TestServer_SlowReader: a client that stops reading keeps its
// connection and, when it reads again, gets each device's latest value:
// the intermediate ones are gone, as with zeusd's watch channels (per
// device for per-device samples, per snapshot for snapshots). The
// ledger holds exactly what the connection carried, and it plus what the
// ledger says was skipped is every value the poller produced.
func TestServer_SlowReader(t *testing.T) {
	for _, format := range []string{simulator.FormatSample, simulator.FormatSnapshot} {
		t.Run(format, func(t *testing.T) {
			start := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
			clock := &fakeClock{t: start}
			var sent ledger
			cfg := fastConfig()
			cfg.GPUPollHz, cfg.Format, cfg.Now, cfg.OnEvent = 1000, format, clock.Now, sent.OnEvent
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			ts := MustServeOn(t, cfg, smallBuffers{ln})
			st := openRawStream(t, ln.Addr().String(), "/gpu/stream_power")
			next := func() []gpuValue {
				t.Helper()
				return decodeGPUEvent(t, format, st.next(t))
			}
			var got []gpuValue
			got = append(got, next()...) // the first tick

			// Stop reading while 10 s of daemon time pass (about 11000
			// values, far more than the sockets buffer), in steps the
			// poller catches up on at once. After the first 5 s the
			// writes block: hardly anything more is written (the kernel
			// frees a little buffer space now and then, by merging the
			// small segments it queued).
			now := start
			stall := func() int {
				for range 20 {
					now = clock.Add(250 * time.Millisecond)
					ts.waitPolled(t, "gpu", now)
				}
				return sent.count()
			}
			if n1, n2 := stall(), stall(); n2-n1 > 50 {
				t.Fatalf("%d events written to a client that reads nothing, %d more 5 s later: writes never blocked", n1, n2-n1)
			}
			if g, _ := ts.Subscribers(); g != 1 {
				t.Fatalf("%d GPU streams while the reader stalls, want it kept", g)
			}

			// Read again: the backlog the sockets held, then each device's
			// latest value.
			last := map[int]int64{}
			latest := func(until time.Time) map[int]int64 {
				r, err := simulator.NewReplay(cfg, start, until.Add(time.Millisecond))
				if err != nil {
					t.Fatal(err)
				}
				m := map[int]int64{}
				for v := range r.Values("gpu") {
					m[v.Device] = v.Power
				}
				return m
			}
			readUntil := func(want map[int]int64) {
				t.Helper()
				for !reflect.DeepEqual(last, want) {
					for _, v := range next() {
						got = append(got, v)
						last[v.dev] = v.mw
					}
				}
			}
			readUntil(latest(now))
			// The connection goes on.
			now = clock.Add(100 * time.Millisecond)
			readUntil(latest(now))
			if err := ts.stop(); err != nil {
				t.Fatal(err)
			}
			select {
			case data, ok := <-st.events:
				if ok {
					t.Fatalf("event %s after the last values", data)
				}
				if err := <-st.err; err != nil {
					t.Fatalf("stream ended with %v, want a clean end", err)
				}
			case <-time.After(waitTimeout):
				t.Fatal("stream did not end")
			}

			// What was sent is what was received.
			events := sent.only(t)
			var ledgerValues []gpuValue
			skipped := 0
			for _, e := range events {
				ledgerValues = append(ledgerValues, decodeGPUEvent(t, format, string(e.Data))...)
				skipped += e.Skipped
			}
			if !reflect.DeepEqual(got, ledgerValues) {
				t.Fatalf("client got %d values, the ledger holds %d others", len(got), len(ledgerValues))
			}
			// Every value is one the poller produced, in order; each value
			// produced was either sent or counted as skipped.
			r, err := simulator.NewReplay(cfg, start, now.Add(time.Millisecond))
			if err != nil {
				t.Fatal(err)
			}
			var produced []gpuValue
			for v := range r.Values("gpu") {
				produced = append(produced, gpuValue{v.DaemonMs, v.Device, v.Power})
			}
			i := 0
			for _, v := range got {
				for i < len(produced) && produced[i] != v {
					i++
				}
				if i == len(produced) {
					t.Fatalf("value %+v was not produced, or out of order", v)
				}
			}
			perEvent := 1
			if format == simulator.FormatSnapshot {
				perEvent = cfg.GPUs
			}
			t.Logf("%d events sent, %d skipped, of %d values produced", len(events), skipped, len(produced))
			if got, want := len(events)+skipped, len(produced)/perEvent; got != want {
				t.Errorf("%d events sent + %d skipped = %d, want the %d the poller produced", len(events), skipped, got, want)
			}
			if skipped < len(produced)/perEvent/2 {
				t.Errorf("only %d of %d events skipped: the stall lost too little", skipped, len(produced)/perEvent)
			}
		})
	}
}

// TestServer_NewSubscriber: a stream joining a running poller gets only
// what is polled after it subscribed, and a CPU poller sends on change
// and on its own first tick, not for each new stream.
func TestServer_NewSubscriber(t *testing.T) {
	// At 1000 Hz, ten ticks average the same 10 ms RAPL chunk: a CPU value
	// changes only on ticks 10c+1.
	start := time.Date(2026, 3, 1, 12, 0, 0, 3e6, time.UTC) // mid-chunk
	clock := &fakeClock{t: start}
	cfg := fastConfig()
	cfg.CPUPollHz, cfg.Now = 1000, clock.Now
	ts := MustServe(t, cfg, "tcp")
	type value struct{ ms, cpu, mw int64 }
	read := func(st *stream) value {
		t.Helper()
		var s cpuSample
		decodeStrict(t, st.next(t), &s)
		return value{*s.TimestampMS, int64(*s.CPUID), *s.CPUMW}
	}
	ms := func(ms int64) int64 { return start.UnixMilli() - 3 + ms }

	a := ts.openStream(t, "/cpu/stream_power", "")
	// The poller primes its counters: its first tick is one period later.
	ts.waitPolled(t, "cpu", clock.Add(time.Millisecond))
	for range cfg.CPUs {
		if v := read(a); v.ms != ms(4) {
			t.Fatalf("first event %+v, want timestamp %d", v, ms(4))
		}
	}
	b := ts.openStream(t, "/cpu/stream_power", "")
	waitFor(t, "the second stream", func() bool { _, c := ts.Subscribers(); return c == 2 })
	ts.waitPolled(t, "cpu", clock.Add(2*time.Millisecond)) // ticks 5 and 6: no change
	ts.waitPolled(t, "cpu", clock.Add(5*time.Millisecond)) // tick 11: a new chunk
	for range cfg.CPUs {
		va, vb := read(a), read(b)
		if va.ms != ms(11) || va != vb {
			t.Fatalf("after the chunk changed: first stream %+v, second %+v; want both at %d", va, vb, ms(11))
		}
	}
}
