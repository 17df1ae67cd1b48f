package recorder

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/wattrec/wattrec/store"
)

// Default recorder settings.
const (
	DefaultFlushInterval = time.Second
	DefaultBatchSize     = 20_000 // readings per commit under load
	// finalFlushTimeout bounds the last commit after cancellation.
	finalFlushTimeout = 30 * time.Second
)

// Appender is the part of the store the recorder needs.
type Appender interface {
	// Write commits b in one transaction and does not retain it.
	Write(ctx context.Context, b *store.Batch) error
}

// Recorder stores everything a Client observes: one writer, one
// transaction per batch, committed at least every FlushInterval, so a
// crash loses at most that much.
type Recorder struct {
	Client        *Client
	DB            Appender
	FlushInterval time.Duration
	BatchSize     int
	Version       string   // stored with each run
	Servers       []string // specs as configured, stored with each run
	Logger        *slog.Logger

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
		flushReq: make(chan chan error), writerDone: make(chan struct{}), started: make(chan struct{})}
}

// Started is closed once every endpoint passed its startup checks and the
// streams run. It stays open if Run fails before that.
func (r *Recorder) Started() <-chan struct{} { return r.started }

// Flush commits everything received so far, so that a read sees it. It
// is safe to call from any goroutine while Run runs.
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
// checks fail, when the store fails, or when every stream has stopped for
// good. It returns only after every goroutine it started has exited.
func (r *Recorder) Run(ctx context.Context) error {
	if err := r.Check(); err != nil {
		return err
	}
	in := make(chan store.Batch, 1024)
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
		in <- b
	}
	writeErr := make(chan error, 1)
	go func() {
		defer close(r.writerDone)
		writeErr <- r.write(in, failed)
	}()

	host, _ := os.Hostname()
	run := store.Batch{Runs: []store.Run{{StartedMs: r.Client.Now().UnixMilli(), Version: r.Version, Host: host, Servers: r.Servers}}}

	var runErr error
	if err := r.Client.Start(ctx); err != nil {
		runErr = err
	} else {
		holdMu.Lock()
		for _, b := range append([]store.Batch{run}, held...) {
			in <- b
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
	close(in)
	return errors.Join(runErr, <-writeErr)
}

// sessionID identifies a session within a file.
type sessionID struct {
	endpoint string
	stream   store.Stream
	start    int64
}

// write is the single writer. It drains in until it is closed, even after
// a store failure (then closing failed), so the client never blocks.
func (r *Recorder) write(in <-chan store.Batch, failed chan<- struct{}) error {
	var pending store.Batch
	open := map[sessionID]store.Session{} // latest state of live sessions
	ticker := time.NewTicker(r.FlushInterval)
	defer ticker.Stop()

	var writeErr error
	lost := 0
	flush := func() {
		if writeErr != nil {
			lost += len(pending.Readings)
			pending.Reset()
			return
		}
		// Every commit also says how long the live sessions lasted, so a
		// recorder killed with -9 leaves sessions that end at its last
		// commit instead of never.
		now := r.Client.Now().UnixMilli()
		for _, s := range open {
			s.End = max(s.End, now)
			pending.Sessions = append(pending.Sessions, s)
		}
		if pending.Len() == 0 {
			return
		}
		// These observations were already received: write them even after
		// cancellation, but do not wait forever.
		ctx, cancel := context.WithTimeout(context.Background(), finalFlushTimeout)
		defer cancel()
		if err := r.DB.Write(ctx, &pending); err != nil {
			writeErr = fmt.Errorf("store %d readings: %w", len(pending.Readings), err)
			lost += len(pending.Readings)
			close(failed)
		}
		pending.Reset()
	}

	merge := func(b store.Batch) {
		pending.Readings = append(pending.Readings, b.Readings...)
		pending.Clocks = append(pending.Clocks, b.Clocks...)
		pending.Endpoints = append(pending.Endpoints, b.Endpoints...)
		pending.Runs = append(pending.Runs, b.Runs...)
		pending.Counters = append(pending.Counters, b.Counters...)
		for _, s := range b.Sessions {
			id := sessionID{s.Endpoint, s.Stream, s.Start}
			if s.Open {
				open[id] = s
			} else {
				delete(open, id)
			}
			pending.Sessions = append(pending.Sessions, s)
		}
	}

	for {
		select {
		case b, ok := <-in:
			if !ok {
				flush()
				if writeErr != nil {
					return fmt.Errorf("%w (%d readings not stored)", writeErr, lost)
				}
				return nil
			}
			merge(b)
			if len(pending.Readings) >= r.BatchSize {
				flush()
			}
		case <-ticker.C:
			flush()
		case reply := <-r.flushReq:
			// Take in what is already queued, so the commit covers
			// everything received until now.
			for queued := len(in); queued > 0; queued-- {
				if b, ok := <-in; ok {
					merge(b)
				}
			}
			flush()
			reply <- writeErr
		}
	}
}
