// Package simulator is an in-process zeusd, the Zeus project's per-node
// power daemon: it serves zeusd's HTTP API over any net.Listener, with
// simulated GPUs and CPU packages whose power traces are deterministic
// functions of a seed. Listen makes a listener where zeusd would: on a
// TCP address (DefaultAddr by default) or a Unix socket of SocketMode.
// It imitates zeusd's main branch, or with Config.Release = Release050
// the released zeusd 0.5.0.
//
// # API
//
// The routes are served as zeusd serves them: GET /discover (devices,
// enabled API groups, whether auth is on; on 0.5.0 GPUs carry only id
// and name), GET /time (the daemon clock, which Config.ClockOffset can
// skew and Config.ClockDriftPPM make drift), GET /auth/whoami, and per
// kind (gpu, cpu) get_power, get_cumulative_energy and stream_power, a
// server-sent event stream. The gpu-read group also serves
// get_power_limit, get_power_limit_constraints and get_persistence_mode;
// the gpu-control group's POST routes (set_power_limit,
// set_persistence_mode, the locked-clock routes) store the power limit
// and persistence mode and ignore the clocks. Id lists (gpu_ids, cpu_ids)
// are optional: every device when absent.
// Config.CumulativeEnergy and Config.DRAM take a GPU's energy counter or
// a package's DRAM domain away: such a GPU's get_cumulative_energy is a
// 400 {"errors":{"<id>":"NVML error: ..."}}, such a package's dram values
// are null.
//
// Stream events are JSON in milliwatts and Unix milliseconds on the
// daemon clock, in one of zeusd's two wire formats: FormatSample, the
// current daemon's one event per device
// ({"timestamp_ms":N,"gpu_id":0,"power_mw":75000}, and for CPUs cpu_id,
// cpu_mw and a nullable dram_mw), or FormatSnapshot, the older daemons'
// one event per tick on which any device changed, holding every device
// the stream asked for ({"timestamp_ms":N,"power_mw":{"0":75000,"1":...}}).
//
// Errors take zeusd's shapes: 400 {"error":...} for bad or unknown device
// ids (streams: "Unknown GPU indices: [7]. Available: [0, 1]"; one-shot
// reads: "GPU 7 not found"), 400 text/plain "Query deserialize error:
// ..." for unknown, repeated or ill-typed query parameters, 404
// {"error":...} for a path of a disabled API group (Config.APIGroups),
// and an empty 404 for an unknown path.
//
// # Authentication
//
// With Config.AuthSecret, every path but /discover and /time needs
// "Authorization: Bearer <JWT>" (the prefix is case-sensitive): HS256
// signed with the secret's raw bytes, with a string sub, a list of known
// scope names, and an optional integer exp checked against the daemon
// clock with 60 s of leeway; nbf is not checked and a token naming an
// aud is refused. MintToken makes such tokens. A missing, invalid or
// expired token is a 401 with WWW-Authenticate: Bearer realm="zeusd"
// (unknown paths too), a token without the path's scope a 403.
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
// open, and the same for CPUs. Each poller sends a device's value on its
// first tick and then only when it changed since the poller's last send;
// the CPU poller's first tick comes one period after it started, as
// zeusd's RAPL poller first primes its counters. A new subscriber
// receives only what is broadcast after it subscribed. A poller that
// falls behind runs the missed ticks at once (up to 5 s of them).
//
// A slow reader is treated as zeusd treats it: it keeps its connection
// and silently loses intermediate values. Each stream holds at most one
// unwritten value per device (FormatSample) or one unwritten snapshot
// (FormatSnapshot); a newer value replaces it, so after a stall the
// reader gets the latest value of each device, and a value can even seem
// to repeat (it changed and changed back). Nothing a reader does blocks
// the pollers or other streams. Config.OnEvent sees exactly what each
// connection carried, with Event.Skipped counting what it lost.
package simulator

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Stream formats.
const (
	// FormatSample is the current daemon's format: one event per device.
	FormatSample = "sample"
	// FormatSnapshot is the older daemons' format (zeusd 0.4.0 and
	// before): one event per tick on which any device changed, holding
	// every device the stream asked for.
	FormatSnapshot = "snapshot"
)

// API groups a zeusd server can enable.
const (
	GroupGPURead    = "gpu-read"
	GroupCPURead    = "cpu-read"
	GroupGPUControl = "gpu-control"
)

// KnownGroups returns the API group names, in zeusd's order: the only
// names Config.APIGroups and token scopes may hold.
func KnownGroups() []string {
	return []string{GroupGPUControl, GroupGPURead, GroupCPURead}
}

// zeusd releases the simulator can imitate (Config.Release).
const (
	// ReleaseMain is zeusd's main branch after 0.5.0, the default.
	ReleaseMain = "main"
	// Release050 is the released zeusd 0.5.0: /discover lists GPUs by id
	// and name only (no pci_address, no cumulative_energy_available), and
	// POST /gpu/reset_locked_clocks does not exist.
	Release050 = "0.5.0"
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
	// (nil = all true; otherwise its length must be CPUs). Without one,
	// dram_mw and dram_energy_uj are null and /discover says
	// dram_available false.
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

	// ClockDriftPPM makes the daemon clock run at (1 + ClockDriftPPM·1e-6)
	// times the true rate, counted from New, on top of ClockOffset
	// (positive = the daemon clock runs fast). Its magnitude is at most
	// MaxClockDriftPPM. TrueTime inverts the daemon clock.
	ClockDriftPPM float64

	// Release is the zeusd release to imitate: ReleaseMain ("" means the
	// same) or Release050. It is independent of Format.
	Release string

	// AuthSecret, when non-nil, turns authentication on: every call but
	// /discover and /time needs an HS256 JWT signed with it (see
	// MintToken). Like zeusd's key file, every byte counts, a trailing
	// newline included. It must not be empty.
	AuthSecret []byte

	// APIGroups is the list of enabled API groups, as zeusd's --enable
	// gives it (nil = GroupGPURead and GroupCPURead). /discover lists GPUs
	// only with GroupGPURead or GroupGPUControl, CPU packages only with
	// GroupCPURead, as zeusd initialises only those devices.
	APIGroups []string

	// CumulativeEnergy says, per GPU, whether it has a hardware energy
	// counter (nil = all true; otherwise its length must be GPUs). A GPU
	// without one fails get_cumulative_energy with NVML's "not supported",
	// as a pre-Volta GPU does.
	CumulativeEnergy []bool

	// Now is the true clock (nil = time.Now).
	Now func() time.Time

	// OnEvent, if set, is called for every SSE event after it was written
	// to a stream's connection and flushed: the calls are exactly what
	// each connection carried, in order, and a value that a slow
	// connection lost is never passed. It runs on that stream's handler
	// goroutine, so it must not block for long.
	OnEvent func(Event)
}

// Event is one SSE event written to a stream, as passed to Config.OnEvent.
type Event struct {
	Stream string // "gpu" or "cpu"
	Conn   int64  // the stream connection's id, unique within a Server
	Data   []byte // the JSON payload, a copy owned by the callee
	// Skipped is how many values this connection lost in this event's
	// place since its previous event there: earlier values of the same
	// device (FormatSample) or earlier snapshots (FormatSnapshot) that a
	// newer one replaced before the connection could take them. Zero on
	// a connection that keeps up.
	Skipped int
}

// DefaultConfig returns a node with 4 GPUs polled at 20 Hz, 2 CPU packages
// with DRAM polled at 10 Hz, per-device sample events and auth off: the
// zeusd defaults.
func DefaultConfig() Config {
	return Config{GPUs: 4, CPUs: 2, GPUPollHz: 20, CPUPollHz: 10, Format: FormatSample}
}

// MaxClockDriftPPM bounds Config.ClockDriftPPM: 1%, far beyond any
// quartz clock, but the daemon clock still runs forward.
const MaxClockDriftPPM = 10_000

// Server is a simulated zeusd. Its methods are safe for concurrent use.
type Server struct {
	cfg     Config
	now     func() time.Time
	epoch   int64 // true clock at New, ns: where the drift starts
	release string
	groups  []string
	dram    []bool

	gpu, cpu *hub

	// Energy counters and GPU settings, one mutex per kind.
	gpuMu       sync.Mutex
	gpuMeters   []*meter // nil entry: no counter
	powerLimit  []int64  // mW
	persistence []bool
	cpuMu       sync.Mutex
	pkgMeters   []*meter
	ramMeters   []*meter // nil entry: no DRAM

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
	s := &Server{cfg: cfg, now: cfg.Now, release: cfg.Release}
	if s.now == nil {
		s.now = time.Now
	}
	s.epoch = s.now().UnixNano()
	if s.release == "" {
		s.release = ReleaseMain
	}
	s.groups = slices.Clone(cfg.APIGroups)
	if s.groups == nil {
		s.groups = []string{GroupGPURead, GroupCPURead}
	}
	s.dram = fill(cfg.DRAM, cfg.CPUs)
	cumulative := fill(cfg.CumulativeEnergy, cfg.GPUs)

	t0 := s.daemonNanos()
	seed := cfg.Seed
	if cfg.GPUs > 0 {
		period := periodNs(cfg.GPUPollHz)
		s.gpu = newHub(s, "gpu", cfg.GPUs, period, s.readGPUs)
		for d := range cfg.GPUs {
			var m *meter
			if cumulative[d] {
				m = newMeter(func(k int64) int64 { return gpuPower(seed, d, k, period) }, period, mJ, t0)
			}
			s.gpuMeters = append(s.gpuMeters, m)
			s.powerLimit = append(s.powerLimit, defaultPowerLimitMW)
			s.persistence = append(s.persistence, false)
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
	if cfg.Release != "" && cfg.Release != ReleaseMain && cfg.Release != Release050 {
		return fmt.Errorf("zeusd release %q is neither %q nor %q", cfg.Release, ReleaseMain, Release050)
	}
	if d := cfg.ClockDriftPPM; math.IsNaN(d) || math.Abs(d) > MaxClockDriftPPM {
		return fmt.Errorf("clock drift %v ppm is outside ±%d ppm", d, MaxClockDriftPPM)
	}
	if cfg.AuthSecret != nil && len(cfg.AuthSecret) == 0 {
		return errors.New("auth secret is empty")
	}
	for _, g := range cfg.APIGroups {
		if !isGroup(g) {
			return fmt.Errorf("unknown api group %q (known: %s)", g, strings.Join(KnownGroups(), ", "))
		}
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
	t := s.now()
	d := t.Add(s.cfg.ClockOffset).UnixNano()
	if ppm := s.cfg.ClockDriftPPM; ppm != 0 {
		d += int64(math.Round(float64(t.UnixNano()-s.epoch) * ppm * 1e-6))
	}
	return d
}

// TrueTime returns the true clock's time (Config.Now's) at which the
// daemon clock read daemonMs: the inverse of the daemon clock, within a
// nanosecond, so a test can tell how far a recorder's corrected time is
// from the truth.
func (s *Server) TrueTime(daemonMs int64) time.Time {
	// daemon = t + offset + (t − epoch)·r, so t − epoch = (daemon − offset − epoch)/(1 + r).
	el := float64(daemonMs*1e6-int64(s.cfg.ClockOffset)-s.epoch) / (1 + s.cfg.ClockDriftPPM*1e-6)
	return time.Unix(0, s.epoch+int64(math.Round(el)))
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
		// No WriteTimeout: it would cut healthy streams, and zeusd keeps
		// a reader that stalls. Shutdown cuts what is left after its
		// grace period.
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
