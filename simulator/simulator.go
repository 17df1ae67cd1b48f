// Package simulator is an in-process zeusd, the Zeus project's per-node
// power daemon: it serves zeusd's HTTP API over any net.Listener, with
// simulated GPUs and CPU packages whose power traces are deterministic
// functions of a seed. Listen makes a listener where zeusd would: on a
// TCP address (DefaultAddr by default) or a Unix socket.
//
// # API
//
// The routes a power recorder uses are served as zeusd serves them:
// GET /discover (devices, enabled API groups, whether auth is on), GET
// /time (the daemon clock, which Config.ClockOffset can skew), GET
// /auth/whoami, and per kind (gpu, cpu) get_power, get_cumulative_energy
// and stream_power, a server-sent event stream. Stream events are JSON in
// milliwatts and Unix milliseconds on the daemon clock, in one of zeusd's
// two wire formats: FormatSample, the current daemon's one event per
// device ({"timestamp_ms":N,"gpu_id":0,"power_mw":75000}, and for CPUs
// cpu_id, cpu_mw and a nullable dram_mw), or FormatSnapshot, the older
// daemons' one event per tick with every device that changed
// ({"timestamp_ms":N,"power_mw":{"0":75000}}). The device routes are
// gated by API group (GroupGPURead, GroupCPURead) and, with
// Config.AuthSecret, by an HS256 JWT whose scopes name the groups
// (MintToken); refusals use zeusd's status codes (400 for unknown device
// ids, 401 for a missing or bad token, 403 for a missing scope, 404 for a
// disabled group).
//
// # Traces and counters
//
// Poll ticks lie on the daemon clock's grid k/Hz since the Unix epoch, and
// a GPU's power at tick k depends only on the seed, the device and k, so any
// two simulators with the same seed and poll rate agree. GPU traces look
// like a training job: plateaus of a few hundred milliseconds to seconds
// between ~60 W and ~300 W, with small jitter that often repeats the same
// milliwatt value. A polled GPU value holds until the next tick, and
// /gpu/get_cumulative_energy is the exact integral of that step function
// since the simulator was created (rounded down to whole millijoules).
//
// CPU packages (20-150 W) and their DRAM domains (3-20 W) are simulated as
// RAPL is: a microjoule energy counter integrates a power trace that is
// constant over 10 ms chunks, and each poll reports the average power over
// the previous poll period, derived from two counter readings.
// /cpu/get_cumulative_energy reads the same counter.
//
// # Streams
//
// Polling is demand-driven: the GPU poller runs only while a GPU stream is
// open, and the same for CPUs. The GPU poller sends a device's value only
// when it changed since the poller's last send; the CPU poller sends on
// change and on the first tick after a new subscriber arrived. A poller
// that falls behind runs the missed ticks at once (up to 5 s of them), so
// a stream carries every tick's changes. A new
// subscriber receives only what is broadcast after it subscribed. Each
// stream has a bounded buffer; a subscriber that falls behind it has its
// connection dropped, as a real daemon would, so it never blocks the
// pollers or other subscribers.
package simulator

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Stream formats.
const (
	// FormatSample is the current daemon's format: one event per device.
	FormatSample = "sample"
	// FormatSnapshot is the older daemons' format: one event per tick
	// holding every device that changed.
	FormatSnapshot = "snapshot"
)

// API groups a zeusd server can enable.
const (
	GroupGPURead    = "gpu-read"
	GroupCPURead    = "cpu-read"
	GroupGPUControl = "gpu-control"
)

// Defaults used when the corresponding Config field is zero.
const (
	DefaultSubscriberBuffer = 1024             // events queued per stream
	DefaultWriteTimeout     = 10 * time.Second // per event write
)

// Poll rate limits.
const (
	// MaxPollHz is the highest poll rate: timestamps have 1 ms resolution.
	MaxPollHz = 1000
	// MinPollHz is the lowest poll rate.
	MinPollHz = 0.1
)

var (
	// ErrClosed is returned by Serve on a Server that was closed or has
	// already served.
	ErrClosed = errors.New("simulator closed")
	// ErrServing is returned by Serve while another Serve call is running.
	ErrServing = errors.New("simulator already serving")
	// ErrAddrAndSocket is returned by Listen when it is given both a TCP
	// address and a socket path.
	ErrAddrAndSocket = errors.New("a listen address and a socket path are both given")
)

// Config describes a simulated node. New applies no defaults except where
// a field's comment says so; DefaultConfig returns a typical node.
type Config struct {
	GPUs, CPUs int // device counts; zero is allowed

	// DRAM says, per CPU package, whether it has a DRAM domain
	// (nil = all true; otherwise its length must be CPUs).
	DRAM []bool

	// GPUPollHz and CPUPollHz are the poll rates, in (MinPollHz, MaxPollHz].
	// A rate may be zero when there are no devices of its kind.
	GPUPollHz, CPUPollHz float64

	// Format is FormatSample or FormatSnapshot.
	Format string

	// Seed selects the power traces; equal seeds give equal traces.
	Seed int64

	// ClockOffset is added to the true clock to get the daemon clock
	// (negative = the daemon is behind).
	ClockOffset time.Duration

	// AuthSecret, when non-nil, turns authentication on: every gated call
	// needs an HS256 JWT signed with it (see MintToken). It must not be
	// empty.
	AuthSecret []byte

	// APIGroups is the list of enabled API groups
	// (nil = GroupGPURead and GroupCPURead).
	APIGroups []string

	// CumulativeEnergy says, per GPU, whether it has a hardware energy
	// counter (nil = all true; otherwise its length must be GPUs).
	CumulativeEnergy []bool

	// Now is the true clock (nil = time.Now).
	Now func() time.Time

	// OnEvent, if set, is called for every SSE event after it was written
	// to a stream and flushed. It runs on that stream's handler goroutine,
	// so it must not block for long.
	OnEvent func(Event)

	// SubscriberBuffer is how many events may wait for one slow stream
	// before the simulator drops its connection (0 = DefaultSubscriberBuffer).
	SubscriberBuffer int

	// WriteTimeout bounds the write of one event to a stream connection
	// (0 = DefaultWriteTimeout). Writers that do not support deadlines
	// are not bounded.
	WriteTimeout time.Duration
}

// Event is one SSE event written to a stream, as passed to Config.OnEvent.
type Event struct {
	Stream string // "gpu" or "cpu"
	Conn   int64  // the stream connection's id, unique within a Server
	Data   []byte // the JSON payload, a copy owned by the callee
}

// DefaultConfig returns a node with 4 GPUs polled at 20 Hz, 2 CPU packages
// with DRAM polled at 10 Hz, per-device sample events and auth off: the
// zeusd defaults.
func DefaultConfig() Config {
	return Config{GPUs: 4, CPUs: 2, GPUPollHz: 20, CPUPollHz: 10, Format: FormatSample}
}

// Server is a simulated zeusd. Its methods are safe for concurrent use.
type Server struct {
	cfg        Config
	now        func() time.Time
	groups     []string
	dram       []bool
	cumulative []bool
	bufSize    int
	writeTO    time.Duration

	gpu, cpu *hub

	// Energy counters, one mutex per kind.
	gpuMu     sync.Mutex
	gpuMeters []*meter // nil entry: no counter
	cpuMu     sync.Mutex
	pkgMeters []*meter
	ramMeters []*meter // nil entry: no DRAM

	nextConn atomic.Int64
	serving  atomic.Bool
	closed   atomic.Bool
	pollers  sync.WaitGroup // one per running poller
}

// New validates cfg and returns a Server. The energy counters start at
// zero now.
func New(cfg Config) (*Server, error) {
	if err := validate(&cfg); err != nil {
		return nil, fmt.Errorf("simulator config: %w", err)
	}
	s := &Server{cfg: cfg, now: cfg.Now, bufSize: cfg.SubscriberBuffer, writeTO: cfg.WriteTimeout}
	if s.now == nil {
		s.now = time.Now
	}
	if s.bufSize == 0 {
		s.bufSize = DefaultSubscriberBuffer
	}
	if s.writeTO == 0 {
		s.writeTO = DefaultWriteTimeout
	}
	s.groups = cfg.APIGroups
	if s.groups == nil {
		s.groups = []string{GroupGPURead, GroupCPURead}
	}
	s.dram = fill(cfg.DRAM, cfg.CPUs)
	s.cumulative = fill(cfg.CumulativeEnergy, cfg.GPUs)

	t0 := s.daemonNanos()
	seed := cfg.Seed
	if cfg.GPUs > 0 {
		period := periodNs(cfg.GPUPollHz)
		s.gpu = newHub(s, "gpu", cfg.GPUs, period, s.readGPUs)
		for d := range cfg.GPUs {
			var m *meter
			if s.cumulative[d] {
				m = newMeter(func(k int64) int64 { return gpuPower(seed, d, k, period) }, period, mJ, t0)
			}
			s.gpuMeters = append(s.gpuMeters, m)
		}
	} else {
		s.gpu = newHub(s, "gpu", 0, int64(time.Second), s.readGPUs)
	}
	cpuPeriod := int64(time.Second)
	if cfg.CPUs > 0 {
		cpuPeriod = periodNs(cfg.CPUPollHz)
	}
	s.cpu = newHub(s, "cpu", cfg.CPUs, cpuPeriod, s.readCPUs)
	for d := range cfg.CPUs {
		s.pkgMeters = append(s.pkgMeters,
			newMeter(func(c int64) int64 { return cpuChunkPower(seed, d, c) }, cpuChunkNs, uJ, t0))
		var m *meter
		if s.dram[d] {
			m = newMeter(func(c int64) int64 { return dramChunkPower(seed, d, c) }, cpuChunkNs, uJ, t0)
		}
		s.ramMeters = append(s.ramMeters, m)
	}
	return s, nil
}

func validate(cfg *Config) error {
	if cfg.GPUs < 0 || cfg.CPUs < 0 {
		return fmt.Errorf("negative device count (gpus %d, cpus %d)", cfg.GPUs, cfg.CPUs)
	}
	if cfg.DRAM != nil && len(cfg.DRAM) != cfg.CPUs {
		return fmt.Errorf("dram has %d entries for %d cpus", len(cfg.DRAM), cfg.CPUs)
	}
	if cfg.CumulativeEnergy != nil && len(cfg.CumulativeEnergy) != cfg.GPUs {
		return fmt.Errorf("cumulative energy has %d entries for %d gpus", len(cfg.CumulativeEnergy), cfg.GPUs)
	}
	checkHz := func(name string, hz float64, n int) error {
		if n == 0 && hz == 0 {
			return nil
		}
		if math.IsNaN(hz) || hz < MinPollHz || hz > MaxPollHz {
			return fmt.Errorf("%s poll rate %v Hz is outside [%v, %v]", name, hz, MinPollHz, MaxPollHz)
		}
		return nil
	}
	if err := checkHz("gpu", cfg.GPUPollHz, cfg.GPUs); err != nil {
		return err
	}
	if err := checkHz("cpu", cfg.CPUPollHz, cfg.CPUs); err != nil {
		return err
	}
	if cfg.Format != FormatSample && cfg.Format != FormatSnapshot {
		return fmt.Errorf("format %q is neither %q nor %q", cfg.Format, FormatSample, FormatSnapshot)
	}
	if cfg.AuthSecret != nil && len(cfg.AuthSecret) == 0 {
		return errors.New("auth secret is empty")
	}
	for _, g := range cfg.APIGroups {
		if g != GroupGPURead && g != GroupCPURead && g != GroupGPUControl {
			return fmt.Errorf("unknown api group %q", g)
		}
	}
	if cfg.SubscriberBuffer < 0 {
		return fmt.Errorf("negative subscriber buffer %d", cfg.SubscriberBuffer)
	}
	if cfg.WriteTimeout < 0 {
		return fmt.Errorf("negative write timeout %v", cfg.WriteTimeout)
	}
	return nil
}

// fill returns a copy of b, or n trues when b is nil.
func fill(b []bool, n int) []bool {
	if b != nil {
		return slices.Clone(b)
	}
	out := make([]bool, n)
	for i := range out {
		out[i] = true
	}
	return out
}

// periodNs returns the poll period of hz in nanoseconds.
func periodNs(hz float64) int64 {
	return int64(math.Round(1e9 / hz))
}

// daemonNanos returns the daemon clock in ns since the Unix epoch.
func (s *Server) daemonNanos() int64 {
	return s.now().Add(s.cfg.ClockOffset).UnixNano()
}

// readGPUs returns every GPU's power at tick k.
func (s *Server) readGPUs(k int64) []sample {
	rs := make([]sample, s.cfg.GPUs)
	for d := range rs {
		rs[d] = sample{power: gpuPower(s.cfg.Seed, d, k, s.gpu.period)}
	}
	return rs
}

// readCPUs returns every CPU package's average power over tick k's
// previous poll period, [k-1, k], from the energy counters.
func (s *Server) readCPUs(k int64) []sample {
	p := s.cpu.period
	t1, t2 := (k-1)*p, k*p
	// µJ over p ns is µJ*1e6/p mW.
	avg := func(m *meter) int64 {
		e1 := m.at(t1)
		return (m.at(t2) - e1) * 1e6 / p
	}
	s.cpuMu.Lock()
	defer s.cpuMu.Unlock()
	rs := make([]sample, s.cfg.CPUs)
	for d := range rs {
		rs[d] = sample{power: avg(s.pkgMeters[d])}
		if m := s.ramMeters[d]; m != nil {
			rs[d].dram, rs[d].hasDRAM = avg(m), true
		}
	}
	return rs
}

// Handler returns the zeusd API handler. Streams served through it end on
// Close. Serve uses it; use it directly to mount the API elsewhere.
func (s *Server) Handler() http.Handler {
	return s.routes()
}

// Serve serves the API on ln until ctx is done, then ends the live
// streams, shuts the HTTP server down and closes the Server. It returns nil
// after ctx is done, and only after every handler and poller goroutine has
// exited. A Server serves once: Serve returns ErrClosed on a Server that has
// served or was closed, and ErrServing while another Serve is running. ln is
// closed when Serve returns.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	if s.closed.Load() {
		ln.Close()
		return ErrClosed
	}
	if !s.serving.CompareAndSwap(false, true) {
		ln.Close()
		return ErrServing
	}
	defer s.serving.Store(false)

	var handlers tracker
	api := s.Handler()
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if !handlers.enter() {
				writeError(w, http.StatusServiceUnavailable, "server is shutting down")
				return
			}
			defer handlers.exit()
			api.ServeHTTP(w, r)
		}),
		ReadHeaderTimeout: 10 * time.Second,
		// No WriteTimeout: it would cut healthy streams. Stream writes
		// carry their own per-event deadline.
	}
	err := serveUntil(ctx, srv, ln, s.endStreams)
	// Wait for the handlers, then for the pollers.
	handlers.closeAndWait()
	s.Close()
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	return nil
}

// Close ends every live stream cleanly, stops the pollers and waits for
// them to exit. Afterwards streams are refused with 503 and Serve returns
// ErrClosed. Serve calls Close on its way out; call it yourself when you
// use Handler without Serve. Close is idempotent and returns nil.
func (s *Server) Close() error {
	s.closed.Store(true)
	s.endStreams()
	s.pollers.Wait()
	return nil
}

// endStreams marks both hubs closed and ends their streams cleanly.
func (s *Server) endStreams() {
	s.gpu.close()
	s.cpu.close()
}

// DropStreams abruptly closes every live stream connection, without a
// clean end of the response, and returns how many it closed. The clients
// see a broken connection and may reconnect.
func (s *Server) DropStreams() int {
	return s.gpu.dropAll() + s.cpu.dropAll()
}

// Subscribers returns the number of live GPU and CPU streams.
func (s *Server) Subscribers() (gpu, cpu int) {
	return s.gpu.count(), s.cpu.count()
}

// serveUntil runs srv on ln until ctx is done (or it fails), then calls
// endStreams so stream connections go idle, shuts srv down and cuts what
// is still busy after a grace period. http.ErrServerClosed is no error.
func serveUntil(ctx context.Context, srv *http.Server, ln net.Listener, endStreams func()) error {
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	var err error
	select {
	case <-ctx.Done():
	case err = <-serveErr:
	}
	endStreams()
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	if serr := srv.Shutdown(sctx); serr != nil {
		srv.Close()
	}
	cancel()
	if err == nil {
		err = <-serveErr
	}
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

// tracker counts running handlers and refuses new ones once closed.
type tracker struct {
	mu     sync.Mutex
	closed bool
	wg     sync.WaitGroup
}

func (t *tracker) enter() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return false
	}
	t.wg.Add(1)
	return true
}

func (t *tracker) exit() { t.wg.Done() }

func (t *tracker) closeAndWait() {
	t.mu.Lock()
	t.closed = true
	t.mu.Unlock()
	t.wg.Wait()
}
