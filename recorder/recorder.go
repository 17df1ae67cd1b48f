package recorder

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime/debug"
	"slices"
	"sync"
	"time"

	"github.com/wattrec/wattrec/store"
)

// Default recorder settings.
const (
	DefaultFlushInterval = time.Second
	DefaultBatchSize     = 20_000 // readings per commit under load
	// DefaultMaxBacklog bounds the readings kept in memory while the disk
	// is full: 256 MiB, about 4.8 million readings.
	DefaultMaxBacklog = 256 << 20
	// DefaultMaxRetryBackoff caps the wait between commit attempts while
	// the disk is full.
	DefaultMaxRetryBackoff = 5 * time.Second
	// DefaultFinalFlushTimeout bounds the commits after cancellation.
	DefaultFinalFlushTimeout = 30 * time.Second
)

// Appender is the part of the store the recorder needs.
type Appender interface {
	// Write commits b in one transaction and does not retain it.
	Write(ctx context.Context, b *store.Batch) error
}

// Observer sees what the Recorder stores, commit by commit, for its
// metrics. Committed runs in the writer's goroutine after each commit:
// it must be quick (the streams wait meanwhile) and must not retain c's
// batch.
type Observer interface {
	Committed(c Commit)
}

// Commit is one commit attempt of the Recorder's writer.
type Commit struct {
	// Batch is what the commit wrote, as stored: sessions cut where
	// readings were dropped, and every live session stretched to the
	// commit. Valid only during the call.
	Batch *store.Batch
	Took  time.Duration
	// Err is why the commit failed (then nothing of Batch is stored;
	// it is retried later while the disk is full).
	Err error
	// Pending is the readings waiting for a later commit.
	Pending int
}

// Recorder stores everything a Client observes: one writer, one
// transaction per batch, committed at least every FlushInterval, so a
// crash loses at most that much.
//
// A commit that fails because the disk (or the quota) is full does not
// stop the recording: the streams go on, their readings wait in memory,
// up to MaxBacklog, and the commit is retried with capped, jittered
// backoff until space comes back. Past MaxBacklog the oldest readings are
// dropped, and the time they covered is cut out of the stream sessions,
// so that a query reports it as a gap (see DiskFullReason). Any other
// store error stops Run.
type Recorder struct {
	Client        *Client
	DB            Appender
	FlushInterval time.Duration
	BatchSize     int
	Version       string   // stored with each run
	Servers       []string // specs as configured, stored with each run
	Logger        *slog.Logger
	// Observer, if set, sees every commit (metrics).
	Observer Observer

	// MaxBacklog is how many bytes of readings and counter readings the
	// Recorder keeps in memory while the disk is full, estimated from the
	// capacity of their slices (the endpoint strings are shared with the
	// client's servers). Zero or less keeps none: every reading that
	// arrives while the disk is full is dropped, and its time is a gap.
	MaxBacklog int64
	// MaxRetryBackoff caps the wait between commit attempts while the
	// disk is full; zero or less means DefaultMaxRetryBackoff.
	MaxRetryBackoff time.Duration
	// FinalFlushTimeout bounds one commit, and all the attempts at the
	// end of Run together; zero or less means DefaultFinalFlushTimeout.
	FinalFlushTimeout time.Duration
	// MemoryLimit, if positive, is the soft limit on the Go runtime's
	// memory that Run sets (runtime/debug.SetMemoryLimit) while it runs,
	// raised by the readings on their way to the file (the backlog too
	// while the disk is full), and restores after.
	// It is process-wide: New leaves it zero (the runtime's own setting,
	// GOMEMLIMIT), and MemoryLimitFor is what `wattrec record` uses.
	MemoryLimit int64

	flushReq    chan chan error // to the writer: commit now
	writerDone  chan struct{}   // closed when the writer has exited
	started     chan struct{}   // closed once the client has started
	startedOnce sync.Once
}

// New returns a Recorder with default settings. It clears
// client.KeepLatest, since the Recorder takes every observation from
// client.Sink, which Run sets.
func New(client *Client, db Appender) *Recorder {
	client.KeepLatest = false
	return &Recorder{Client: client, DB: db, FlushInterval: DefaultFlushInterval,
		BatchSize: DefaultBatchSize, Version: "dev", Logger: client.Logger,
		MaxBacklog: DefaultMaxBacklog, MaxRetryBackoff: DefaultMaxRetryBackoff, FinalFlushTimeout: DefaultFinalFlushTimeout,
		flushReq: make(chan chan error), writerDone: make(chan struct{}), started: make(chan struct{})}
}

// Started is closed once every endpoint passed its startup checks and the
// streams run. It stays open if Run fails before that.
func (r *Recorder) Started() <-chan struct{} { return r.started }

// Flush commits everything received so far, so that a read sees it. It
// is safe to call from any goroutine while Run runs. While the disk is
// full it makes one commit attempt and returns an error that wraps
// ErrDiskFull if that fails.
func (r *Recorder) Flush(ctx context.Context) error {
	reply := make(chan error, 1)
	select {
	case r.flushReq <- reply:
	case <-r.writerDone:
		return errors.New("recorder is not running")
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-reply:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Run records until ctx is done, then stops the streams, commits every
// reading received and returns nil. It returns an error when the startup
// checks fail, when the store fails (other than by a full disk, which it
// waits out), or when every stream has stopped for good, and one that
// wraps ErrDiskFull when the disk was still full at the end, within
// FinalFlushTimeout. It returns only after every goroutine it started has
// exited.
func (r *Recorder) Run(ctx context.Context) error {
	if err := r.Check(); err != nil {
		return err
	}
	q := newQueue(queueBatches, maxQueuedFactor*r.BatchSize)
	failed := make(chan struct{})
	// What the startup checks observe waits in held until they all
	// passed: a failed start writes nothing, not even the run record.
	var held []store.Batch
	var holdMu sync.Mutex
	hold := true
	r.Client.Sink = func(b store.Batch) {
		holdMu.Lock()
		defer holdMu.Unlock()
		if hold {
			held = append(held, b)
			return
		}
		q.send(b)
	}
	writeErr := make(chan error, 1)
	go func() {
		defer close(r.writerDone)
		writeErr <- newWriter(r, q, failed).run()
	}()

	host, _ := os.Hostname()
	run := store.Batch{Runs: []store.Run{{StartedMs: r.Client.Now().UnixMilli(), Version: r.Version, Host: host, Servers: r.Servers}}}

	var runErr error
	if err := r.Client.Start(ctx); err != nil {
		runErr = err
	} else {
		holdMu.Lock()
		for _, b := range append([]store.Batch{run}, held...) {
			q.send(b)
		}
		hold, held = false, nil
		holdMu.Unlock()
		r.Logger.Info("recording", "flush_interval", r.FlushInterval)
		r.startedOnce.Do(func() { close(r.started) })
		select {
		case <-ctx.Done():
		case <-failed:
		case <-r.Client.Done():
			if ctx.Err() == nil {
				runErr = fmt.Errorf("every stream stopped, nothing left to record: %w", r.Client.Err())
			}
		}
		r.Client.Stop()
	}
	// The client has exited and will not call Sink again: let the writer
	// drain what is queued, commit it and finish.
	close(q.ch)
	return errors.Join(runErr, <-writeErr)
}

// sessionID identifies a session within a file.
type sessionID struct {
	endpoint string
	stream   store.Stream
	start    int64
}

// writer is the single writer: the state of the goroutine Run starts.
// Records arrive in tail; a commit first seals the tail into a segment,
// then commits the segments oldest first, one transaction each. While
// the disk is full the segments wait (see backlog.go), so that when
// space returns the file goes through the same states, only later, as
// if every commit had succeeded at once.
type writer struct {
	r      *Recorder
	in     *queue
	failed chan<- struct{} // closed on a store failure that is not retried

	open    map[sessionID]store.Session // latest state of live sessions, as the client sent them
	tail    *store.Batch                // where arriving records go
	tailIdx map[sessionID]int           // index of each session in tail.Sessions
	sealed  []*store.Batch              // segments waiting for their commit, oldest first
	spares  []*store.Batch              // committed segments, emptied, for the next tails (maxSpares at most)
	view    store.Batch                 // what one commit writes: a segment, its sessions cut
	// lastCPU is the time of the last stored reading of each CPU and DRAM
	// series: where a gap for their dropped readings starts.
	lastCPU map[store.SeriesKey]int64

	backlog // while the disk is full

	err  error // a store failure that is not retried: nothing is stored after it
	lost int   // readings not stored after err

	memoryLimit int64 // what applyMemoryLimit last set; 0: never set
	priorLimit  int64 // the runtime's limit before Run
}

func newWriter(r *Recorder, in *queue, failed chan<- struct{}) *writer {
	return &writer{r: r, in: in, failed: failed, open: map[sessionID]store.Session{},
		tail: &store.Batch{}, tailIdx: map[sessionID]int{}, lastCPU: map[store.SeriesKey]int64{},
		backlog: backlog{cuts: map[streamID][]cut{}}}
}

// run drains in until it is closed, even after a store failure (then
// closing failed) and while the disk is full, so the client never
// blocks. It commits at least every FlushInterval, and once more at the
// end.
func (w *writer) run() error {
	ticker := time.NewTicker(w.r.FlushInterval)
	defer ticker.Stop()
	defer w.stopRetry()
	w.priorLimit = debug.SetMemoryLimit(-1) // reads it
	w.applyMemoryLimit()
	defer w.restoreMemoryLimit()
	for {
		var retry <-chan time.Time
		if w.full {
			retry = w.retry.C
		}
		select {
		case b, ok := <-w.in.ch:
			if !ok {
				return w.final()
			}
			w.merge(b)
			if !w.full && len(w.tail.Readings) >= w.r.BatchSize {
				w.flush(context.Background())
			}
		case <-ticker.C:
			if !w.full { // while the disk is full, the retry timer decides
				w.flush(context.Background())
			}
		case <-retry:
			w.flush(context.Background())
		case reply := <-w.r.flushReq:
			// Take in what is already queued, so the commit covers
			// everything received until now.
			w.drainQueued()
			reply <- w.flush(context.Background())
		}
	}
}

// drainQueued merges the batches already queued, without waiting for
// more.
func (w *writer) drainQueued() {
	for queued := len(w.in.ch); queued > 0; queued-- {
		if b, ok := <-w.in.ch; ok {
			w.merge(b)
		}
	}
}

// merge adds b to the tail. While the disk is full it also seals full
// segments and keeps the backlog within MaxBacklog.
func (w *writer) merge(b store.Batch) {
	if w.in != nil {
		w.in.took(len(b.Readings))
	}
	if w.err != nil {
		w.lost += len(b.Readings)
		recycleBatch(b.Readings)
		return
	}
	t := w.tail
	t.Readings = append(t.Readings, b.Readings...)
	recycleBatch(b.Readings)
	t.Clocks = append(t.Clocks, b.Clocks...)
	t.Endpoints = append(t.Endpoints, b.Endpoints...)
	t.Runs = append(t.Runs, b.Runs...)
	t.Counters = append(t.Counters, b.Counters...)
	for _, s := range b.Sessions {
		id := sessionID{s.Endpoint, s.Stream, s.Start}
		if s.Open {
			w.open[id] = s
		} else {
			delete(w.open, id)
		}
		w.addSession(id, s)
	}
	if w.full {
		if len(w.tail.Readings) >= w.segmentSize() {
			w.seal()
		}
		if w.bytes() > w.r.MaxBacklog {
			w.drop(w.r.MaxBacklog / 8 * 7) // drop in steps, not a reading at a time
		}
	}
}

// addSession adds s to the tail, replacing an earlier state of the same
// session there: it is upserted by its key anyway.
func (w *writer) addSession(id sessionID, s store.Session) {
	if i, ok := w.tailIdx[id]; ok {
		w.tail.Sessions[i] = s
		return
	}
	w.tailIdx[id] = len(w.tail.Sessions)
	w.tail.Sessions = append(w.tail.Sessions, s)
}

// seal closes the tail into a segment. Every segment also says how long
// the live sessions lasted, as of now: after its readings, so a recorder
// killed with -9 leaves sessions that end at its last commit instead of
// never, and never claims time whose readings it had not stored.
func (w *writer) seal() {
	now := w.r.Client.Now().UnixMilli()
	for id, s := range w.open {
		s.End = max(s.End, now)
		w.addSession(id, s)
	}
	if w.tail.Len() == 0 {
		return
	}
	sealed := w.tail
	w.sealed = append(w.sealed, sealed)
	w.sealedBytes += segmentBytes(sealed)
	clear(w.tailIdx)
	switch {
	case w.full:
		w.tail = &store.Batch{Readings: make([]store.Reading, 0, w.segmentSize())}
	case len(w.spares) > 0:
		w.tail = w.spares[len(w.spares)-1]
		w.spares = w.spares[:len(w.spares)-1]
	case len(sealed.Readings) >= w.r.BatchSize:
		// Under load: the next one fills as much.
		w.tail = &store.Batch{Readings: make([]store.Reading, 0, len(sealed.Readings)+maxPendingReadings)}
	default:
		w.tail = &store.Batch{} // grows by need: quiet endpoints commit a few readings at a time
	}
	w.applyMemoryLimit() // before the commit: what the writer holds
}

// flush commits everything received and says how that went, as Flush
// answers. A full disk starts or continues the retries; any other
// failure stops storing.
func (w *writer) flush(parent context.Context) error {
	if w.err != nil {
		return w.err
	}
	err := w.commit(parent)
	switch {
	case err == nil:
		if w.full {
			w.recovered()
		}
		return nil
	case retryable(err) || (w.full && parent.Err() != nil): // the final deadline passed on a full disk
		w.failing(err)
		return w.fullErr()
	default:
		w.fail(err)
		return w.err
	}
}

// commit seals the tail and commits every segment, oldest first, one
// transaction each, up to the first failure. Between two commits it
// takes in what arrived, so that draining a long backlog never makes
// the client wait.
func (w *writer) commit(parent context.Context) error {
	sealedTail := false
	for {
		if len(w.sealed) == 0 {
			if sealedTail {
				return nil
			}
			w.seal()
			sealedTail = true
			if len(w.sealed) == 0 {
				return nil // nothing to write
			}
		}
		if err := w.commitFirst(parent); err != nil {
			return err
		}
		w.drainQueued()
	}
}

// commitFirst commits the oldest segment, with the dropped spans cut out
// of its sessions.
func (w *writer) commitFirst(parent context.Context) error {
	seg := w.sealed[0]
	w.view = *seg
	w.view.Sessions = w.cutSessions(seg.Sessions)
	// These observations were already received: write them even after
	// cancellation, but do not wait forever.
	ctx, cancel := context.WithTimeout(parent, w.r.finalFlushTimeout())
	began := time.Now()
	err := w.r.DB.Write(ctx, &w.view)
	took := time.Since(began)
	cancel()
	if obs := w.r.Observer; obs != nil {
		obs.Committed(Commit{Batch: &w.view, Took: took, Err: err, Pending: w.backlogReadings() - len(seg.Readings)*btoi(err == nil)})
	}
	w.view = store.Batch{} // keep no reference to the segment
	if err != nil {
		return err
	}
	for i := range seg.Readings {
		if r := &seg.Readings[i]; r.Kind != store.KindGPU {
			k := r.Series()
			if t, ok := w.lastCPU[k]; !ok || r.TimeMs > t {
				w.lastCPU[k] = r.TimeMs
			}
		}
	}
	if w.full {
		w.stored += len(seg.Readings)
	}
	w.sealed = slices.Delete(w.sealed, 0, 1)
	w.sealedBytes -= segmentBytes(seg)
	if !w.full && cap(seg.Readings) <= maxSpareFactor*w.r.BatchSize && len(w.spares) < maxSpares {
		seg.Reset() // reuse: Write's contract says it does not retain the batch
		w.spares = append(w.spares, seg)
	}
	return nil
}

// maxQueuedFactor × BatchSize readings at most wait in the queue to the
// writer (see queue).
const maxQueuedFactor = 4

// maxSpares is how many committed segments the writer keeps for reuse
// (under load one is being filled while the next is committed), if they
// hold at most maxSpareFactor × BatchSize readings: a commit under load
// writes what arrived during the last one, often more than BatchSize.
const (
	maxSpares      = 2
	maxSpareFactor = 4
)

// fail stops storing after an error that retrying would not cure.
func (w *writer) fail(err error) {
	n := w.backlogReadings()
	w.err = fmt.Errorf("store %d readings: %w", n, err)
	w.lost += n
	w.sealed, w.sealedBytes, w.tail = nil, 0, &store.Batch{}
	clear(w.tailIdx)
	w.full = false
	w.stopRetry()
	w.applyMemoryLimit()
	close(w.failed)
}

// final commits what is left once in is closed: with retries while the
// disk is full, for FinalFlushTimeout at most.
func (w *writer) final() error {
	timeout := w.r.finalFlushTimeout()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for {
		w.flush(ctx)
		switch {
		case w.err != nil:
			return fmt.Errorf("%w (%d readings not stored)", w.err, w.lost)
		case !w.full:
			return nil
		}
		if !w.waitRetry(ctx) {
			return w.gaveUp(timeout)
		}
	}
}

// waitRetry waits for the next attempt, answering Flush meanwhile. It
// reports false when ctx ends first.
func (w *writer) waitRetry(ctx context.Context) bool {
	for {
		select {
		case <-w.retry.C:
			return true
		case reply := <-w.r.flushReq:
			reply <- w.fullErr()
		case <-ctx.Done():
			return false
		}
	}
}

func (r *Recorder) finalFlushTimeout() time.Duration {
	if r.FinalFlushTimeout <= 0 {
		return DefaultFinalFlushTimeout
	}
	return r.FinalFlushTimeout
}
