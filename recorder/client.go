package recorder

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/wattrec/wattrec/retry"
	"iter"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wattrec/wattrec/store"
)

// Default client settings.
const (
	DefaultClockSamples    = 8
	DefaultClockInterval   = time.Minute
	DefaultCounterInterval = 10 * time.Second // CPU counters wrap: read every ≤ 10 s
	DefaultMaxBackoff      = 30 * time.Second
	DefaultRequestTimeout  = 10 * time.Second
	// Stall detection (see StallPolls, StallMin and ProbeAfter): a CPU
	// stream is stalled after max(10 poll periods, 2 s) without an event;
	// a GPU stream silent for 5 s is probed with get_power.
	DefaultStallPolls = 10
	DefaultStallMin   = 2 * time.Second
	DefaultProbeAfter = 5 * time.Second
)

// Client streams GPU and CPU power from one or many zeusd endpoints: the
// Go counterpart of zeus's PowerStreamingClient. It runs one GPU and one
// CPU stream per endpoint, corrects every timestamp for the daemon's clock
// offset, and, with KeepLatest (NewClient's default), keeps the latest
// readings for Snapshot and Updates. With a Sink it also hands every
// observation (readings, stream sessions, clock estimates, energy counter
// readings, endpoint info) to the caller; Recorder stores them.
//
// Set the exported fields before Start; they must not change afterwards.
type Client struct {
	// Token is zeusd's JWT for the servers without their own
	// (Server.Token). It is sent only as a bearer header and never logged.
	Token string
	// ClockSamples is the number of GET /time round trips per estimate
	// (MinClockSamples to MaxClockSamples).
	ClockSamples int
	// ClockInterval is how often the offset is re-estimated, to follow
	// drift (ClockModel); the first re-estimates come sooner, after 5,
	// 10, 20 and 40 s. Zero disables re-estimation, otherwise it is at
	// least MinInterval.
	ClockInterval time.Duration
	// CounterInterval is how often the hardware energy counters are read,
	// besides the reads at start and at stop: zero disables the periodic
	// reads, otherwise at least MinInterval.
	CounterInterval time.Duration
	// KeepTrying makes an unreachable endpoint retry in the background
	// instead of failing Start.
	KeepTrying bool
	// MaxBackoff caps the wait between reconnection attempts (at least
	// MinMaxBackoff).
	MaxBackoff time.Duration
	// RequestTimeout bounds each non-stream request, a stall probe too.
	RequestTimeout time.Duration
	// StallPolls and StallMin say when a silent CPU stream is stalled:
	// zeusd sends no keep-alives, but RAPL values change at nearly every
	// poll, so a CPU stream that has delivered nothing for max(StallPolls
	// poll periods, StallMin) is closed at its last event and reconnected.
	// The poll period is the median spacing of the daemon timestamps of
	// recent events of one package (1 s, the longest zeusd allows, until
	// two have arrived). StallPolls zero or negative disables it.
	StallPolls int
	StallMin   time.Duration
	// ProbeAfter says when a silent GPU stream is checked. zeusd sends a
	// GPU value only when it changes, so silence alone proves nothing:
	// after ProbeAfter without an event (or since the last probe), the
	// stream's devices are read with get_power. The values the stream
	// last delivered mean alive, and the session counts as live up to the
	// probe. A value that differs, with no event within ProbeAfter/5, or
	// a failed probe means stalled: the session is closed at its last
	// event or confirming probe and the stream reconnects. Zero or
	// negative disables probing.
	ProbeAfter time.Duration
	// KeepLatest keeps the latest readings of every endpoint for Snapshot
	// and Updates, at a cost on every batch. NewClient sets it; New clears
	// it, since a Recorder takes everything from Sink (set it again after
	// New to have both). Without it Snapshot returns nil and Updates
	// yields nothing.
	KeepLatest bool
	// Sink, if set, receives every observation, in order per stream. It
	// is called from the client's goroutines, may block (which slows the
	// stream down, losing nothing), and owns the batch's slices once
	// called. After Stop returns it is not called again.
	Sink func(store.Batch)
	// Logger receives connection events; it never sees the token.
	Logger *slog.Logger
	// Now is the recorder's clock.
	Now func() time.Time

	servers []Server

	mu       sync.Mutex
	latest   map[string]*PowerReadings
	changed  chan struct{} // closed and replaced on every update
	failures []error       // streams that stopped for good
	running  int           // endpoints starting plus streams running
	idle     chan struct{} // closed when running drops to zero after Start
	// awaitingFirst counts the streams of the endpoints ready at Start that
	// have not delivered a value yet; firstValues closes when it hits zero.
	awaitingFirst int
	firstValues   chan struct{}
	eps           []*endpoint // set once Start's checks passed
	runCtx        context.Context
	closing       bool           // Stop was called: ReadCounters refuses
	reads         sync.WaitGroup // ReadCounters calls in flight

	cancel   context.CancelFunc
	wg       sync.WaitGroup
	stopOnce sync.Once
	stopped  chan struct{}
}

// NewClient returns a Client for servers with default settings.
func NewClient(servers []Server) *Client {
	return &Client{
		servers:         servers,
		ClockSamples:    DefaultClockSamples,
		ClockInterval:   DefaultClockInterval,
		CounterInterval: DefaultCounterInterval,
		MaxBackoff:      DefaultMaxBackoff,
		RequestTimeout:  DefaultRequestTimeout,
		StallPolls:      DefaultStallPolls,
		StallMin:        DefaultStallMin,
		ProbeAfter:      DefaultProbeAfter,
		KeepLatest:      true,
		Logger:          slog.Default(),
		Now:             time.Now,
		latest:          map[string]*PowerReadings{},
		changed:         make(chan struct{}),
		idle:            make(chan struct{}),
		firstValues:     make(chan struct{}),
		stopped:         make(chan struct{}),
	}
}

// PowerReadings are the latest readings of one endpoint.
type PowerReadings struct {
	Time     time.Time       // corrected time of the newest reading
	GPUWatts map[int]float64 // by GPU index
	CPUs     map[int]CPUPower
}

// CPUPower is one CPU package's latest reading.
type CPUPower struct {
	PackageWatts float64
	DRAMWatts    float64
	HasDRAM      bool
}

// Snapshot maps endpoint identity to its latest readings.
type Snapshot map[string]PowerReadings

// endpoint is one server's running state.
type endpoint struct {
	srv     Server
	conn    *conn
	info    Info       // set by check; read by others once ready
	clockMu sync.Mutex // guards clock
	clock   ClockModel
	line    atomic.Pointer[ClockLine] // clock's line, for the streams
	ctr     counters
	ready   atomic.Bool // prepared and running: ReadCounters and Info may read it
	// cancel ends this endpoint alone (SetServers), with the cause its
	// sessions end with.
	cancel context.CancelCauseFunc
}

// Start checks every endpoint (GET /discover, /auth/whoami when the daemon
// requires auth, the device selections, a first clock estimate) and then
// starts streaming. A failed check stops everything and returns the
// reasons, which wrap ErrUnreachable, ErrMissingDevice or ErrMissingScope
// where they are those; with KeepTrying, an unreachable endpoint is
// retried in the background instead. The client runs until Stop or until ctx is done.
func (c *Client) Start(ctx context.Context) error {
	if err := c.Check(); err != nil {
		return err
	}
	if err := CheckServers(c.servers); err != nil {
		return err
	}
	rctx, cancel := context.WithTimeout(ctx, c.RequestTimeout)
	err := checkSameDaemon(rctx, c.servers)
	cancel()
	if err != nil {
		return err
	}
	ctx, c.cancel = context.WithCancel(ctx)

	// Check every endpoint at once: 100 nodes must not start serially.
	eps := make([]*endpoint, len(c.servers))
	errs := make([]error, len(c.servers))
	var checks sync.WaitGroup
	for i, srv := range c.servers {
		eps[i] = &endpoint{srv: srv, conn: newConn(srv, cmp.Or(srv.Token, c.Token), c.RequestTimeout)}
		checks.Add(1)
		go func() {
			defer checks.Done()
			errs[i] = c.prepare(ctx, eps[i])
		}()
	}
	checks.Wait()

	var fatal []error
	for _, err := range errs {
		if err != nil && !(c.KeepTrying && errors.Is(err, ErrUnreachable)) {
			fatal = append(fatal, err)
		}
	}
	if len(fatal) > 0 {
		c.Stop()
		for _, ep := range eps {
			ep.conn.close()
		}
		return errors.Join(fatal...)
	}

	c.mu.Lock()
	c.running = len(eps)
	c.eps, c.runCtx = eps, ctx
	for i, ep := range eps {
		if errs[i] == nil {
			c.awaitingFirst += btoi(ep.info.GPUs != nil) + btoi(ep.info.CPUs != nil)
		}
	}
	if c.awaitingFirst == 0 {
		close(c.firstValues)
	}
	c.mu.Unlock()
	for i, ep := range eps {
		if errs[i] == nil {
			// Ready for ReadCounters as soon as Start returns, so that a
			// reading right after Start (wattrec run's) is not skipped.
			c.initCounters(ep)
			ep.ready.Store(true)
		}
		c.launch(ctx, ep, errs[i])
	}
	// Stop when the caller's context ends, so Updates iterators finish.
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		<-ctx.Done()
		c.stopOnce.Do(func() { close(c.stopped) })
	}()
	return nil
}

// Stop ends every stream, reads the energy counters a last time, waits
// for the client's goroutines and ReadCounters calls to exit and ends
// Updates iterators. It is safe to call more than once.
func (c *Client) Stop() {
	c.mu.Lock()
	c.closing = true
	c.mu.Unlock()
	if c.cancel != nil {
		c.cancel()
	}
	c.wg.Wait()
	c.reads.Wait()
	c.stopOnce.Do(func() { close(c.stopped) })
}

// WaitFirstValues blocks until every stream of the endpoints that passed
// their checks in Start has delivered a value (its get_power seed or a
// first event), so that energy is known from then on, or until ctx ends.
func (c *Client) WaitFirstValues(ctx context.Context) error {
	select {
	case <-c.firstValues:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// firstValue records that one stream delivered its first value.
func (c *Client) firstValue() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.awaitingFirst > 0 {
		if c.awaitingFirst--; c.awaitingFirst == 0 {
			close(c.firstValues)
		}
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// Done is closed once nothing streams any more: after Stop, or when every
// stream has stopped for good (see Err), which leaves nothing to record.
// After Start's checks a stream stops for good only when the daemon
// refuses a token that has expired (ErrTokenExpired): every other refusal
// (a GPU gone after a daemon restart, a disabled API group, a rejected
// token) is retried with backoff, as the node may change back.
func (c *Client) Done() <-chan struct{} { return c.idle }

// Err returns the terminal errors of streams that stopped for good.
func (c *Client) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return errors.Join(c.failures...)
}

// Snapshot returns a deep copy of the latest readings of every endpoint.
// It returns nil on a client without KeepLatest, which keeps no readings.
func (c *Client) Snapshot() Snapshot {
	if !c.KeepLatest {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(Snapshot, len(c.latest))
	for name, pr := range c.latest {
		cp := PowerReadings{Time: pr.Time, GPUWatts: make(map[int]float64, len(pr.GPUWatts)), CPUs: make(map[int]CPUPower, len(pr.CPUs))}
		for k, v := range pr.GPUWatts {
			cp.GPUWatts[k] = v
		}
		for k, v := range pr.CPUs {
			cp.CPUs[k] = v
		}
		out[name] = cp
	}
	return out
}

// Updates yields a snapshot after each update, until Stop, ctx is done or
// the loop breaks. A slow consumer never slows the streams: it gets the
// latest state when it asks again, with intermediate updates folded in.
// On a client without KeepLatest it yields nothing and ends at once.
func (c *Client) Updates(ctx context.Context) iter.Seq[Snapshot] {
	return func(yield func(Snapshot) bool) {
		if !c.KeepLatest {
			return
		}
		for {
			c.mu.Lock()
			ch := c.changed
			c.mu.Unlock()
			select {
			case <-ch:
			case <-ctx.Done():
				return
			case <-c.stopped:
				return
			}
			if !yield(c.Snapshot()) {
				return
			}
		}
	}
}

// emit updates the snapshot state, if kept, and hands b to the sink.
func (c *Client) emit(b store.Batch) {
	if c.KeepLatest && len(b.Readings) > 0 {
		c.mu.Lock()
		for i := range b.Readings {
			c.note(&b.Readings[i])
		}
		close(c.changed)
		c.changed = make(chan struct{})
		c.mu.Unlock()
	}
	if c.Sink != nil {
		c.Sink(b)
	}
}

// note folds one reading into the latest state; c.mu is held.
func (c *Client) note(r *store.Reading) {
	pr := c.latest[r.Endpoint]
	if pr == nil {
		pr = &PowerReadings{GPUWatts: map[int]float64{}, CPUs: map[int]CPUPower{}}
		c.latest[r.Endpoint] = pr
	}
	if t := time.UnixMilli(r.TimeMs); t.After(pr.Time) {
		pr.Time = t
	}
	w := float64(r.MilliWatts) / 1000
	switch r.Kind {
	case store.KindGPU:
		pr.GPUWatts[int(r.Device)] = w
	case store.KindCPU:
		cp := pr.CPUs[int(r.Device)]
		cp.PackageWatts = w
		pr.CPUs[int(r.Device)] = cp
	case store.KindDRAM:
		cp := pr.CPUs[int(r.Device)]
		cp.DRAMWatts, cp.HasDRAM = w, true
		pr.CPUs[int(r.Device)] = cp
	}
}

// endpointDone records that one endpoint or stream stopped; err is its
// terminal error, if any.
func (c *Client) endpointDone(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err != nil {
		c.failures = append(c.failures, err)
	}
	c.running--
	if c.running == 0 {
		close(c.idle)
	}
}

// prepare runs the startup checks of one endpoint: check, then a first
// clock estimate.
func (c *Client) prepare(ctx context.Context, ep *endpoint) error {
	name := ep.srv.Endpoint()
	raw, err := ep.check(ctx)
	if err != nil {
		return err
	}
	in := &ep.info
	if in.Access.AuthRequired && in.Access.HasToken { // whoami answered
		c.Logger.Info("token accepted", "endpoint", name, "sub", in.Subject, "scopes", in.Access.Scopes)
	}
	for _, skip := range []string{in.GPUSkip, in.CPUSkip} {
		if skip != "" {
			c.Logger.Info("skipping", "endpoint", name, "reason", skip)
		}
	}
	est, err := c.estimateClock(ctx, ep)
	if err != nil {
		return fmt.Errorf("endpoint %s: clock: %w", name, err)
	}
	c.emit(store.Batch{
		Endpoints: []store.EndpointInfo{{
			Endpoint: name, Network: ep.srv.Network, Discover: json.RawMessage(raw),
			GPUSelection: ep.srv.GPUs.String(), CPUSelection: ep.srv.CPUs.String(),
			GPUs: in.GPUs, CPUs: in.CPUs, UpdatedMs: c.Now().UnixMilli(),
		}},
		Clocks: []store.ClockEstimate{est},
	})
	c.Logger.Info("endpoint ready", "endpoint", name, "gpus", in.GPUs, "cpus", in.CPUs,
		"clock_offset_ms", float64(est.OffsetUs)/1000, "rtt_ms", float64(est.RTTUs)/1000)
	return nil
}

// Info returns what the checks of endpoint (a Server's Endpoint) found:
// its /discover answer and the devices streamed, as a deep copy. It
// reports false for an endpoint that is not one of the client's, before
// Start and while an endpoint is still being retried (KeepTrying).
func (c *Client) Info(endpoint string) (Info, bool) {
	c.mu.Lock()
	eps := c.eps
	c.mu.Unlock()
	for _, ep := range eps {
		if ep.srv.Endpoint() == endpoint && ep.ready.Load() {
			return ep.info.clone(), true
		}
	}
	return Info{}, false
}

// retryPrepare repeats prepare with backoff until it succeeds (true), a
// check fails for a reason retrying cannot fix, or ctx ends (false).
func (c *Client) retryPrepare(ctx context.Context, ep *endpoint) bool {
	for attempt := 1; ; attempt++ {
		if !retry.Sleep(ctx, retry.Backoff(attempt, c.MaxBackoff)) {
			return false
		}
		err := c.prepare(ctx, ep)
		switch {
		case err == nil:
			c.Logger.Info("endpoint reachable", "endpoint", ep.srv.Endpoint(), "attempts", attempt+1)
			return true
		case ctx.Err() != nil:
			return false
		case !errors.Is(err, ErrUnreachable):
			c.Logger.Error("endpoint check failed; not recording it", "endpoint", ep.srv.Endpoint(), "err", err)
			c.mu.Lock()
			c.failures = append(c.failures, err)
			c.mu.Unlock()
			return false
		}
	}
}

// estimateClock measures the endpoint's offset, adds it to ep's clock
// model and returns it as measured, to be stored.
func (c *Client) estimateClock(ctx context.Context, ep *endpoint) (store.ClockEstimate, error) {
	samples, err := ep.conn.clockSamples(ctx, c.ClockSamples, c.Now)
	if err != nil {
		return store.ClockEstimate{}, err
	}
	est, err := EstimateClock(samples)
	if err != nil {
		return store.ClockEstimate{}, err
	}
	now := c.Now()
	ep.clockMu.Lock()
	predicted := ep.clock.Line().OffsetAt(now.UnixMicro())
	line, stepped := ep.clock.Add(now.UnixMicro(), est)
	ep.clockMu.Unlock()
	ep.line.Store(&line)
	if stepped {
		c.Logger.Warn("clock stepped; drift fit restarted", "endpoint", ep.srv.Endpoint(),
			"step_ms", float64(est.OffsetUs-predicted)/1000, "rtt_ms", float64(est.RTTUs)/1000)
	}
	return store.ClockEstimate{Endpoint: ep.srv.Endpoint(), TakenMs: now.UnixMilli(),
		OffsetUs: est.OffsetUs, RTTUs: est.RTTUs, Samples: len(samples)}, nil
}

// clockLine returns the line readings are corrected with: the zero line
// before the first estimate.
func (ep *endpoint) clockLine() ClockLine {
	if l := ep.line.Load(); l != nil {
		return *l
	}
	return ClockLine{}
}

// run streams one prepared endpoint until ctx ends, and follows its clock
// and its energy counters.
func (c *Client) run(ctx context.Context, ep *endpoint) {
	if !ep.ready.Load() { // prepared late (KeepTrying)
		c.initCounters(ep)
		ep.ready.Store(true)
	}
	hasCounters := ep.ctr.any()
	var wg sync.WaitGroup
	var streams []*stream
	if ep.info.GPUs != nil {
		streams = append(streams, c.newStream(ep, store.StreamGPU))
	}
	if ep.info.CPUs != nil {
		streams = append(streams, c.newStream(ep, store.StreamCPU))
	}
	// The endpoint counts as one runner until its streams take over.
	c.mu.Lock()
	c.running += len(streams) - 1
	c.mu.Unlock()
	for _, s := range streams {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.endpointDone(s.run(ctx))
		}()
	}
	if c.ClockInterval > 0 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.followClock(ctx, ep)
		}()
	}
	if hasCounters {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.followCounters(ctx, ep)
		}()
	}
	wg.Wait()
}

// firstClockWait is the wait before the first re-estimate. The waits
// double up to ClockInterval (5, 10, 20, 40 s, then 60 s by default), so
// the drift is known well within the first minute.
const firstClockWait = 5 * time.Second

// followClock re-estimates the offset, first after firstClockWait, then
// at doubling waits up to ClockInterval.
func (c *Client) followClock(ctx context.Context, ep *endpoint) {
	wait := min(firstClockWait, c.ClockInterval)
	var lastErr string
	for {
		if !retry.Sleep(ctx, wait) {
			return
		}
		wait = min(2*wait, c.ClockInterval)
		est, err := c.estimateClock(ctx, ep)
		if err != nil {
			if ctx.Err() == nil && err.Error() != lastErr {
				c.Logger.Warn("clock re-estimate failed; keeping the last offset", "endpoint", ep.srv.Endpoint(), "err", err)
			}
			lastErr = err.Error()
			continue
		}
		lastErr = ""
		c.emit(store.Batch{Clocks: []store.ClockEstimate{est}})
	}
}
