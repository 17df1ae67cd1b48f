package simulator

import (
	"context"
	"fmt"
	"iter"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// replayChunk is how many bytes of events a replay stream writes per
// flush: big writes keep the load generator cheap next to the client.
const replayChunk = 64 << 10

// Replay is a simulated zeusd that streams a fixed span of its traces,
// the data set, as fast as the client reads, instead of in real time: a
// load generator for benchmarks of whatever reads zeusd streams.
//
// Every stream connection replays the whole span from its start, as its
// own poller would have polled it: the first tick sends every device the
// stream asked for, later ticks the devices whose value changed (GPU and
// CPU alike, so a CPU stream is change-only after its first tick); in the
// snapshot format, a tick on which any device changed sends every device
// the stream asked for, as Server does. Ticks
// lie on the same grid as Server's, and GPU values are the same; CPU
// values come from energy counters that start at the span's start, so
// they can differ from a live Server's by a rounding step. When the span
// is exhausted the stream stays open and silent, as a daemon whose power
// no longer changes, until the client leaves or the Replay closes.
// Writes block while the client is not reading: nothing is dropped or
// coalesced, unlike on Server.
//
// get_power answers with the values of the tick before the span, the
// seed a recorder reads at connect. discover, time, whoami and
// get_cumulative_energy behave as on Server (the last on the live
// clock). Config.OnEvent is not called for replayed events.
type Replay struct {
	srv        *Server
	seed       int64
	from, to   int64 // daemon-clock ns, [from, to)
	closing    chan struct{}
	closeOnce  sync.Once
	serving    atomic.Bool
	events     atomic.Int64 // events written to streams
	finished   atomic.Int64 // streams that wrote their whole span
	handlers   sync.WaitGroup
	handlersMu sync.Mutex
	closed     bool
}

// NewReplay returns a Replay of cfg's traces over the daemon-clock span
// [from, to). cfg is validated as by New.
func NewReplay(cfg Config, from, to time.Time) (*Replay, error) {
	if !to.After(from) {
		return nil, fmt.Errorf("simulator replay: empty span %v → %v", from, to)
	}
	s, err := New(cfg)
	if err != nil {
		return nil, err
	}
	return &Replay{srv: s, seed: cfg.Seed, from: from.UnixNano(), to: to.UnixNano(), closing: make(chan struct{})}, nil
}

// ReplayValue is one device value that a replay stream sends.
type ReplayValue struct {
	DaemonMs int64 // the event's timestamp_ms
	Device   int
	Power    int64 // mW: the GPU's power, or the CPU package's
	DRAM     int64 // mW; CPU values only, when HasDRAM
	HasDRAM  bool
}

// Values yields, in stream order, the values that a stream of kind
// ("gpu" or "cpu") asking for every device carries. In the per-device
// sample format each value is one SSE event; in the snapshot format the
// values of one tick share an event, which holds every device.
func (r *Replay) Values(kind string) iter.Seq[ReplayValue] {
	return func(yield func(ReplayValue) bool) {
		h := r.hub(kind)
		if h == nil {
			return
		}
		g := r.newGen(h, nil)
		for g.next() {
			for _, d := range g.ids {
				s := g.cur[d]
				if !yield(ReplayValue{DaemonMs: g.ts, Device: d, Power: s.power, DRAM: s.dram, HasDRAM: s.hasDRAM}) {
					return
				}
			}
		}
	}
}

// Events returns the number of events written to streams so far.
func (r *Replay) Events() int64 { return r.events.Load() }

// Finished returns the number of streams that have written their whole
// span.
func (r *Replay) Finished() int64 { return r.finished.Load() }

func (r *Replay) hub(kind string) *hub {
	switch kind {
	case "gpu":
		if r.srv.cfg.GPUs == 0 {
			return nil
		}
		return r.srv.gpu
	case "cpu":
		if r.srv.cfg.CPUs == 0 {
			return nil
		}
		return r.srv.cpu
	}
	return nil
}

// Handler returns the zeusd API with replaying streams.
func (r *Replay) Handler() http.Handler {
	s := r.srv
	mux := http.NewServeMux()
	mux.HandleFunc("GET /gpu/stream_power", r.handleStream(s.gpu))
	mux.HandleFunc("GET /cpu/stream_power", r.handleStream(s.cpu))
	mux.HandleFunc("GET /gpu/get_power", r.handleGetPower(s.gpu))
	mux.HandleFunc("GET /cpu/get_power", r.handleGetPower(s.cpu))
	mux.Handle("/", s.mux())
	return s.guard(mux)
}

// Serve serves the API on ln until ctx is done, then ends the streams and
// shuts down. It returns nil after ctx is done, and only after every
// handler has exited. ln is closed when Serve returns. A Replay serves
// once.
func (r *Replay) Serve(ctx context.Context, ln net.Listener) error {
	if !r.serving.CompareAndSwap(false, true) {
		ln.Close()
		return ErrServing
	}
	api := r.Handler()
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			if !r.enter() {
				writeError(w, http.StatusServiceUnavailable, "server is shutting down")
				return
			}
			defer r.handlers.Done()
			api.ServeHTTP(w, req)
		}),
		ReadHeaderTimeout: 10 * time.Second,
	}
	err := serveUntil(ctx, srv, ln, func() { r.Close() })
	r.handlers.Wait()
	r.srv.Close()
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	return nil
}

func (r *Replay) enter() bool {
	r.handlersMu.Lock()
	defer r.handlersMu.Unlock()
	if r.closed {
		return false
	}
	r.handlers.Add(1)
	return true
}

// Close ends every stream and refuses new ones. It is idempotent and does
// not wait; Serve waits for the handlers.
func (r *Replay) Close() error {
	r.closeOnce.Do(func() {
		r.handlersMu.Lock()
		r.closed = true
		r.handlersMu.Unlock()
		close(r.closing)
	})
	return nil
}

// handleGetPower answers get_power with the tick before the span.
func (r *Replay) handleGetPower(h *hub) http.HandlerFunc {
	return func(w http.ResponseWriter, req *http.Request) {
		_, ids, ok := readRequest(w, req, kindOf(h), h.n)
		if !ok {
			return
		}
		// A generator of its own: the live CPU counters must not walk
		// back to the span.
		g := r.newGen(h, nil)
		g.k--
		g.next()
		writeRaw(w, http.StatusOK, appendPowerAnswer(h, g.k-1, ids, g.cur))
	}
}

// handleStream replays the span on one stream connection.
func (r *Replay) handleStream(h *hub) http.HandlerFunc {
	return func(w http.ResponseWriter, req *http.Request) {
		want, ok := streamRequest(w, req, h)
		if !ok {
			return
		}
		rc := http.NewResponseController(w)
		if !startStream(w, rc) {
			return
		}
		// Write the span in big chunks; each write blocks until the
		// client has read enough.
		buf := make([]byte, 0, replayChunk+4096)
		var pending int64
		write := func() bool {
			if len(buf) == 0 {
				return true
			}
			if _, err := w.Write(buf); err != nil {
				return false
			}
			if err := rc.Flush(); err != nil {
				return false
			}
			r.events.Add(pending)
			buf, pending = buf[:0], 0
			return true
		}
		g := r.newGen(h, want)
		for g.next() {
			if r.srv.cfg.Format == FormatSample {
				for _, d := range g.ids {
					buf = append(buf, "data: "...)
					buf = h.appendSample(buf, g.ts, d, g.cur[d])
					buf = append(buf, "\n\n"...)
					pending++
				}
			} else {
				buf = append(buf, "data: "...)
				buf = h.appendSnapshot(buf, g.ts, g.ids, g.cur)
				buf = append(buf, "\n\n"...)
				pending++
			}
			if len(buf) < replayChunk {
				continue
			}
			if !write() {
				return
			}
			select {
			case <-r.closing:
				return
			case <-req.Context().Done():
				return
			default:
			}
		}
		if !write() {
			return
		}
		r.finished.Add(1)
		// Hold the stream open and silent, like a daemon whose power no
		// longer changes.
		select {
		case <-r.closing:
		case <-req.Context().Done():
		}
	}
}

// replayGen walks the ticks of the span for one stream: after next, ts is
// the tick's timestamp, cur every device's value and ids the devices to
// send.
type replayGen struct {
	h      *hub
	want   []bool
	k, end int64 // next tick, first tick past the span
	first  bool

	ts   int64
	cur  []sample
	last []sample
	ids  []int

	// CPU energy counters, private to this stream, zero at the span's start.
	pkg, ram []*meter
	// GPU traces with their blocks remembered from tick to tick.
	gpus []gpuTrace
}

// blockCache is blockStart for indexes that mostly grow by one: it
// remembers the last answer and extends it with one hash.
type blockCache struct {
	seed        int64
	salt        uint64
	dev         int
	every       int64
	perThousand uint64
	i, start    int64
	ok          bool
}

func (c *blockCache) at(i int64) int64 {
	switch {
	case c.ok && i == c.i:
	case c.ok && i == c.i+1:
		if i%c.every == 0 || hash(c.seed, c.salt, c.dev, i)%1000 < c.perThousand {
			c.start = i
		}
	default:
		c.start = blockStart(c.seed, c.salt, c.dev, i, c.every, c.perThousand)
	}
	c.i, c.ok = i, true
	return c.start
}

// gpuTrace is gpuPower for one device and ticks that mostly grow by one.
type gpuTrace struct {
	seed            int64
	dev             int
	period          int64
	plateau, jitter blockCache
	p, level        int64 // the last plateau and its level
	j, jit          int64 // the last jitter block and its jitter
	ok              bool
}

func newGPUTrace(seed int64, dev int, period int64) gpuTrace {
	return gpuTrace{seed: seed, dev: dev, period: period,
		plateau: blockCache{seed: seed, salt: saltGPUPlateau, dev: dev, every: gpuForceEvery, perThousand: gpuChangeMille},
		jitter:  blockCache{seed: seed, salt: saltGPUJitterNew, dev: dev, every: gpuJitterEvery, perThousand: gpuJitterNewPc * 10}}
}

// power is gpuPower(seed, dev, k, period).
func (g *gpuTrace) power(k int64) int64 {
	p := g.plateau.at(floorDiv(k*g.period, gpuSlotNs))
	j := g.jitter.at(k)
	if !g.ok || p != g.p {
		g.p, g.level = p, gpuLevel(g.seed, g.dev, p)
	}
	if !g.ok || j != g.j {
		g.j, g.jit = j, gpuJitter(g.seed, g.dev, j)
	}
	g.ok = true
	return g.level + g.jit
}

func (r *Replay) newGen(h *hub, want []bool) *replayGen {
	g := &replayGen{h: h, want: want, k: ceilDiv(r.from, h.period), end: ceilDiv(r.to, h.period), first: true,
		cur: make([]sample, h.n), last: make([]sample, h.n), ids: make([]int, 0, h.n)}
	seed := r.seed
	if h != r.srv.cpu {
		for d := range h.n {
			g.gpus = append(g.gpus, newGPUTrace(seed, d, h.period))
		}
		return g
	}
	t0 := (g.k - 1) * h.period
	for d := range h.n {
		pkg := &blockCache{seed: seed, salt: saltCPUPlateau, dev: d, every: cpuForceEvery, perThousand: cpuChangeMille}
		g.pkg = append(g.pkg, newMeter(func(c int64) int64 {
			return cpuChunk(seed, d, c, pkg.at(floorDiv(c, cpuSlotChunks)))
		}, cpuChunkNs, uJ, t0))
		var m *meter
		if r.srv.dram[d] {
			ram := &blockCache{seed: seed, salt: saltDRAMPlateau, dev: d, every: cpuForceEvery, perThousand: cpuChangeMille}
			m = newMeter(func(c int64) int64 {
				return dramChunk(seed, d, c, ram.at(floorDiv(c, cpuSlotChunks)))
			}, cpuChunkNs, uJ, t0)
		}
		g.ram = append(g.ram, m)
	}
	return g
}

// next advances to the next tick that sends something. It returns false
// past the span's end.
func (g *replayGen) next() bool {
	for ; g.k < g.end; g.k++ {
		k := g.k
		g.last, g.cur = g.cur, g.last
		if g.pkg == nil {
			for d := range g.cur {
				g.cur[d] = sample{power: g.gpus[d].power(k)}
			}
		} else {
			p := g.h.period
			avg := func(m *meter) int64 {
				e1 := m.at((k - 1) * p)
				return (m.at(k*p) - e1) * 1e6 / p
			}
			for d := range g.cur {
				g.cur[d] = sample{power: avg(g.pkg[d])}
				if m := g.ram[d]; m != nil {
					g.cur[d].dram, g.cur[d].hasDRAM = avg(m), true
				}
			}
		}
		// A sample stream sends the devices that changed; a snapshot
		// stream, when any device changed, every device it asked for.
		g.ids = g.ids[:0]
		changed := false
		for d := range g.cur {
			if g.first || g.cur[d] != g.last[d] {
				changed = true
				if !g.h.snapshot && (g.want == nil || g.want[d]) {
					g.ids = append(g.ids, d)
				}
			}
		}
		if g.h.snapshot && changed {
			for d := range g.cur {
				if g.want == nil || g.want[d] {
					g.ids = append(g.ids, d)
				}
			}
		}
		g.first = false
		if len(g.ids) > 0 {
			g.ts = floorDiv(k*g.h.period, 1e6)
			g.k++
			return true
		}
	}
	return false
}

// ceilDiv returns ⌈a/b⌉ for b > 0.
func ceilDiv(a, b int64) int64 { return -floorDiv(-a, b) }
