package recorder

import (
	"context"
	"errors"
	"fmt"
	"github.com/wattrec/wattrec/retry"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"sync"
	"time"

	sse "github.com/tmaxmax/go-sse"

	"github.com/wattrec/wattrec/store"
)

// Stream settings.
const (
	sessionUpdateEvery = time.Second      // how often a live session's counters travel with the readings
	malformedLogEvery  = 10 * time.Second // rate limit of "malformed event" logs
)

// stream is one SSE stream (GPU or CPU) of one endpoint.
type stream struct {
	c        *Client
	ep       *endpoint
	kind     store.Stream
	path     string // the SSE request
	seedPath string // get_power, read at every (re)connect
	// fast decodes the per-device sample events zeusd sends today,
	// without copying or encoding/json; it declines anything else.
	fast func([]Value, string) ([]Value, bool)
	// decode is the encoding/json decoder of both wire formats: the
	// fallback where fast declines, and the decoder of get_power answers.
	// It never tries fast itself, so a miss costs one fast attempt.
	decode func([]Value, []byte) ([]Value, error)
	log    *slog.Logger

	lastStart    int64     // session keys must be unique
	failures     int       // consecutive connections without progress
	failingSince time.Time // first of those failures
	seedErr      string    // the last seed failure logged
	live         liveness  // stall detection (stall.go)

	malformedSince  int // not yet logged
	malformedLogged time.Time

	firstValue sync.Once // tells the client when the stream first delivers
}

func (c *Client) newStream(ep *endpoint, kind store.Stream) *stream {
	s := &stream{c: c, ep: ep, kind: kind, log: c.Logger.With("endpoint", ep.srv.Endpoint(), "stream", kind.String())}
	var sel Selection
	var param string
	if kind == store.StreamGPU {
		s.path, s.seedPath, sel, param = "/gpu/stream_power", "/gpu/get_power", ep.srv.GPUs, "gpu_ids"
		s.fast, s.decode = decodeGPUFast[string], decodeGPU
	} else {
		s.path, s.seedPath, sel, param = "/cpu/stream_power", "/cpu/get_power", ep.srv.CPUs, "cpu_ids"
		s.fast, s.decode = decodeCPUFast[string], decodeCPU
	}
	// Unset selections ask for everything, as the zeus client does.
	if sel.Set {
		q := "?" + param + "=" + sel.String()
		s.path += q
		s.seedPath += q
	}
	return s
}

// repeatLogEvery is how often a failure that has not changed is logged
// again.
const repeatLogEvery = 5 * time.Minute

// run connects and reconnects with capped, jittered backoff until ctx
// ends (nil) or the daemon refuses a token that has expired (the error).
// Every other refusal is retried: Start's checks refuse bad
// configurations, so a 400 or 404 now means the node changed (a GPU gone
// after a daemon restart) and a 401 or 403 that the daemon's key or the
// token may yet be fixed.
func (s *stream) run(ctx context.Context) error {
	var lastKey string
	var lastLogged time.Time
	for {
		progress, err := s.once(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if errors.Is(err, ErrTokenExpired) {
			s.log.Error("stream stopped: the daemon refuses the token, which has expired; not retrying", "err", err)
			return fmt.Errorf("%s stream: %w", s.kind, err)
		}
		now := s.c.Now()
		if progress {
			s.failures, lastKey = 0, "" // that connection was useful: start the schedule and the log over
		}
		if s.failures == 0 {
			s.failingSince = now
		}
		s.failures++
		d := retry.Backoff(s.failures, s.c.MaxBackoff)
		// Log a changed failure at once, a repeated one every few minutes.
		if key := failureKey(err); key != lastKey || now.Sub(lastLogged) >= repeatLogEvery {
			s.logFailure(err, d)
			lastKey, lastLogged = key, now
		}
		if !retry.Sleep(ctx, d) {
			return nil
		}
	}
}

// failureKey says which failures count as the same for logging: every
// stall alike (its text holds the silence's length), else the text.
func failureKey(err error) string {
	if errors.Is(err, errStalled) {
		return errStalled.Error()
	}
	return err.Error()
}

// logFailure logs why a connection ended or was refused, before the wait
// d: refused tokens at ERROR, the rest at WARN.
func (s *stream) logFailure(err error, d time.Duration) {
	args := []any{"err", err, "attempt", s.failures, "wait", d.Round(time.Millisecond)}
	switch code := statusCode(err); {
	case errors.Is(err, errStalled):
		s.log.Warn("stream stalled: session closed at its last sign of life; reconnecting", args...)
	case code == http.StatusUnauthorized || code == http.StatusForbidden:
		s.log.Error("daemon refuses the token; retrying in case its key or the token is fixed", args...)
	case code == http.StatusBadRequest || code == http.StatusNotFound:
		s.log.Warn("daemon refuses a stream that passed the startup checks (a device or API group gone?); retrying", args...)
	default:
		s.log.Warn("stream ended, reconnecting", args...)
	}
}

// recovered logs the first progress after failures.
func (s *stream) recovered() {
	if s.failures > 0 {
		s.log.Info("stream recovered", "failures", s.failures, "after", s.c.Now().Sub(s.failingSince).Round(time.Millisecond))
	}
}

// refusal marks a 401 for a token past its expiry, which no retry fixes.
func (s *stream) refusal(err error) error {
	exp := s.ep.info.TokenExpiry
	if statusCode(err) == http.StatusUnauthorized && !exp.IsZero() && !s.c.Now().Before(exp) {
		return fmt.Errorf("%w (at %s): %w", ErrTokenExpired, exp.UTC().Format(time.RFC3339), err)
	}
	return err
}

// once runs one connection: session start, seed readings, events, session
// end. It reports whether the connection made progress (delivered events,
// or a probe confirmed it alive) and why it ended.
func (s *stream) once(parent context.Context) (bool, error) {
	// The connection's own context: the watchdog cancels it on a stall.
	ctx, cancel := context.WithCancel(parent)
	defer cancel()
	resp, err := s.ep.conn.get(ctx, s.path, true)
	if err != nil {
		return false, s.refusal(err)
	}
	defer resp.Body.Close()
	if ct, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); ct != "text/event-stream" {
		return false, fmt.Errorf("%s %s: content type %q, want text/event-stream", s.ep.srv.Endpoint(), s.path, ct)
	}

	// The stream is live from here: the daemon registered us before it
	// sent the headers, so events from now on reach us.
	now := s.c.Now()
	start := now.UnixMilli()
	if start <= s.lastStart {
		start = s.lastStart + 1
	}
	s.lastStart = start
	sess := store.Session{Endpoint: s.ep.srv.Endpoint(), Stream: s.kind, Start: start, End: start, Open: true}
	s.c.emit(store.Batch{Sessions: []store.Session{sess}})
	s.live.begin(now)

	// Judge the connection's silence while it lasts.
	var watcher sync.WaitGroup
	watcher.Add(1)
	go func() {
		defer watcher.Done()
		s.watch(ctx, cancel)
	}()

	// Seed every device with its value at connect time: a flat GPU may
	// not send an event for a long while.
	if seeds, err := s.seed(ctx); err != nil {
		if ctx.Err() == nil && err.Error() != s.seedErr {
			s.log.Warn("seed read failed; values start with the first event", "err", err)
			s.seedErr = err.Error()
		}
	} else {
		s.seedErr = ""
		s.live.note(seeds, false)
		s.c.emit(store.Batch{Readings: seeds})
		if len(seeds) > 0 {
			s.firstValue.Do(s.c.firstValue)
		}
	}

	// Readings travel in batches: everything decoded from what one
	// network read delivered goes to the sink before the next read that
	// may block (streamBody), so under load a batch holds many events
	// and a reading never waits here for the next event.
	var vals []Value
	var pending []store.Reading
	lastUpdate := s.c.Now()
	flush := func() {
		if len(pending) == 0 {
			return
		}
		if s.live.note(pending, true) {
			s.recovered()
		}
		b := store.Batch{Readings: pending}
		if now := s.c.Now(); now.Sub(lastUpdate) >= sessionUpdateEvery {
			sess.End, lastUpdate = now.UnixMilli(), now
			b.Sessions = []store.Session{sess}
		}
		pending = newPending(len(pending)) // the sink owns the batch now
		s.c.emit(b)
		s.firstValue.Do(s.c.firstValue)
	}
	var readErr error
	body := &streamBody{r: resp.Body, flush: flush, live: &s.live, now: s.c.Now}
	for ev, err := range sse.Read(body, &sse.ReadConfig{MaxEventSize: maxEventBytes}) {
		if err != nil {
			readErr = err
			break
		}
		if ev.Data == "" {
			continue // a field-only event (id:, retry:, event:) carries no reading
		}
		vals, err = s.decodeEvent(vals[:0], ev.Data)
		if err != nil {
			sess.Malformed++
			s.malformed(err)
			continue
		}
		sess.Events++
		pending = s.appendReadings(pending, vals, false)
		if len(pending) >= maxPendingReadings {
			flush()
		}
	}
	flush()
	cancel()
	watcher.Wait()

	// Close the session, whatever ended it. A stalled one ends at its
	// last sign of life: this record replaces the open ones the writer
	// has been stretching to each commit.
	evidence := s.live.evidence()
	reason, end := errServerClosed, max(s.c.Now().UnixMilli(), evidence)
	switch stall := s.live.stalled(); {
	case stall != nil:
		reason, end = stall, evidence
	case errors.Is(context.Cause(parent), errRemoved):
		reason = errRemoved
	case parent.Err() != nil:
		reason = errors.New("recorder stopped")
	case readErr != nil:
		reason = fmt.Errorf("%s stream: read: %w", s.ep.srv.Endpoint(), readErr)
	}
	sess.End, sess.Open, sess.Reason = max(end, sess.Start), false, reason.Error()
	s.c.emit(store.Batch{Sessions: []store.Session{sess}})
	s.flushMalformed()
	return s.live.progress(), reason
}

// seed reads get_power for the stream's devices, as seed readings.
func (s *stream) seed(ctx context.Context) ([]store.Reading, error) {
	vals, err := s.getPower(ctx)
	if err != nil {
		return nil, err
	}
	return s.readings(vals, true), nil
}

// getPower reads get_power for the stream's devices.
func (s *stream) getPower(ctx context.Context) ([]Value, error) {
	return s.ep.conn.getPower(ctx, s.seedPath, s.decode)
}

// readings corrects vals with the endpoint's clock line.
func (s *stream) readings(vals []Value, seed bool) []store.Reading {
	return s.appendReadings(make([]store.Reading, 0, len(vals)), vals, seed)
}

// appendReadings appends vals to rs, each corrected with the offset the
// endpoint's clock line predicts for its time (ClockLine.Correct).
func (s *stream) appendReadings(rs []store.Reading, vals []Value, seed bool) []store.Reading {
	line := s.ep.clockLine()
	name := s.ep.srv.Endpoint()
	for _, v := range vals {
		rs = append(rs, store.Reading{Endpoint: name, Kind: v.Kind, Device: v.Device,
			TimeMs: line.Correct(v.DaemonMs), DaemonMs: v.DaemonMs, MilliWatts: v.MilliWatts, Seed: seed})
	}
	return rs
}

// decodeEvent decodes one event's data: the per-device sample format
// without copying or encoding/json when it can, else with s.decode.
func (s *stream) decodeEvent(dst []Value, data string) ([]Value, error) {
	return decodeWith(dst, data, s.fast, s.decode)
}

// maxPendingReadings bounds the readings a stream decodes before handing
// them on.
const maxPendingReadings = 256

// fullBatches holds emptied full-size stream batches (cap
// maxPendingReadings) for reuse. Under load every stream batch is full,
// and the Recorder's writer copies each into its segment and hands it
// back (recycleBatch), so the streams allocate none; a quiet stream's
// batches stay small and are left to the collector. A channel, unlike a
// sync.Pool, is not emptied by each collection, which at full rate comes
// every few thousand events; its size bounds what it keeps (64 batches,
// 900 KiB).
var fullBatches = make(chan []store.Reading, 64)

// newPending returns an empty batch for a stream whose last batch held
// last readings: twice that size, up to a full-size one.
func newPending(last int) []store.Reading {
	if 2*last < maxPendingReadings {
		return make([]store.Reading, 0, 2*last)
	}
	select {
	case rs := <-fullBatches:
		return rs
	default:
		return make([]store.Reading, 0, maxPendingReadings)
	}
}

// recycleBatch hands back a stream batch whose readings were copied.
// Only full-size ones are kept.
func recycleBatch(rs []store.Reading) {
	if cap(rs) != maxPendingReadings {
		return
	}
	clear(rs) // let go of the endpoint strings
	select {
	case fullBatches <- rs[:0]:
	default:
	}
}

// Bounds of a stream's network reads: they start small and grow while
// each read fills the buffer, which saves system calls under load without
// costing memory on the many quiet streams of a cluster.
const (
	minStreamRead = 4 << 10
	maxStreamRead = 64 << 10
)

// streamBody is the body of a stream as the SSE reader sees it: buffered,
// and before each network read, which may block, it hands on what was
// decoded (flush). It tells live when it waits on the network and when
// bytes arrive, so that silence is measured only while it waits.
type streamBody struct {
	r     io.Reader
	flush func()
	live  *liveness
	now   func() time.Time
	buf   []byte
	i, n  int // buf[i:n] is unread
	err   error
}

func (b *streamBody) Read(p []byte) (int, error) {
	if b.i == b.n {
		if b.err != nil {
			return 0, b.err
		}
		b.flush()
		switch {
		case b.buf == nil:
			b.buf = make([]byte, minStreamRead)
		case b.n == len(b.buf) && len(b.buf) < maxStreamRead:
			b.buf = make([]byte, 2*len(b.buf)) // the last read filled it
		}
		b.i, b.n = 0, 0
		b.live.waiting(b.now())
		n, err := b.r.Read(b.buf)
		b.live.received(b.now(), n)
		b.n, b.err = n, err
		if n == 0 {
			return 0, err
		}
	}
	n := copy(p, b.buf[b.i:b.n])
	b.i += n
	return n, nil
}

// malformed counts a bad event and logs at most once per malformedLogEvery.
func (s *stream) malformed(err error) {
	s.malformedSince++
	if now := s.c.Now(); now.Sub(s.malformedLogged) >= malformedLogEvery {
		s.log.Warn("skipping malformed events", "count", s.malformedSince, "last_err", err)
		s.malformedSince, s.malformedLogged = 0, now
	}
}

func (s *stream) flushMalformed() {
	if s.malformedSince > 0 {
		s.log.Warn("skipped malformed events", "count", s.malformedSince)
		s.malformedSince = 0
	}
}
