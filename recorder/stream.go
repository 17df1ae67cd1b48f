package recorder

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
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
	failures     int       // consecutive failed connections
	failingSince time.Time // first of those failures

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

// run connects and reconnects with capped, jittered backoff until ctx
// ends (nil) or the daemon refuses the stream for good (the error).
func (s *stream) run(ctx context.Context) error {
	var lastErr string
	for {
		events, err := s.once(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if isTerminal(err) {
			s.log.Error("stream stopped: the daemon refused it; not retrying", "err", err)
			return fmt.Errorf("%s stream: %w", s.kind, err)
		}
		if events > 0 {
			s.failures = 0 // that connection was useful: start the schedule over
		}
		if s.failures == 0 {
			s.failingSince = s.c.Now()
		}
		s.failures++
		d := backoff(s.failures, s.c.MaxBackoff)
		// Log a changed error at once, a repeated one every tenth time.
		if msg := err.Error(); msg != lastErr || s.failures%10 == 0 {
			s.log.Warn("stream ended, reconnecting", "err", err, "attempt", s.failures, "wait", d.Round(time.Millisecond))
			lastErr = msg
		}
		if !sleep(ctx, d) {
			return nil
		}
	}
}

// once runs one connection: session start, seed readings, events, session
// end. It returns the number of events decoded and why the stream ended.
func (s *stream) once(ctx context.Context) (int, error) {
	resp, err := s.ep.conn.get(ctx, s.path, true)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if ct, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); ct != "text/event-stream" {
		return 0, fmt.Errorf("%s %s: content type %q, want text/event-stream", s.ep.srv.Endpoint(), s.path, ct)
	}

	// The stream is live from here: the daemon registered us before it
	// sent the headers, so events from now on reach us.
	start := s.c.Now().UnixMilli()
	if start <= s.lastStart {
		start = s.lastStart + 1
	}
	s.lastStart = start
	sess := store.Session{Endpoint: s.ep.srv.Endpoint(), Stream: s.kind, Start: start, End: start, Open: true}
	s.c.emit(store.Batch{Sessions: []store.Session{sess}})
	if s.failures > 0 {
		s.log.Info("stream recovered", "failures", s.failures, "after", s.c.Now().Sub(s.failingSince).Round(time.Millisecond))
	}

	// Seed every device with its value at connect time: a flat GPU may
	// not send an event for a long while.
	if seeds, err := s.seed(ctx); err != nil {
		if ctx.Err() == nil {
			s.log.Warn("seed read failed; values start with the first event", "err", err)
		}
	} else {
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
		b := store.Batch{Readings: pending}
		if now := s.c.Now(); now.Sub(lastUpdate) >= sessionUpdateEvery {
			sess.End, lastUpdate = now.UnixMilli(), now
			b.Sessions = []store.Session{sess}
		}
		pending = make([]store.Reading, 0, min(2*len(pending), maxPendingReadings)) // the sink owns the batch now
		s.c.emit(b)
		s.firstValue.Do(s.c.firstValue)
	}
	var readErr error
	body := &streamBody{r: resp.Body, flush: flush}
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

	// Close the session, whatever ended it.
	reason := errServerClosed
	switch {
	case ctx.Err() != nil:
		reason = errors.New("recorder stopped")
	case readErr != nil:
		reason = fmt.Errorf("%s stream: read: %w", s.ep.srv.Endpoint(), readErr)
	}
	sess.End, sess.Open, sess.Reason = max(s.c.Now().UnixMilli(), sess.Start), false, reason.Error()
	s.c.emit(store.Batch{Sessions: []store.Session{sess}})
	s.flushMalformed()
	return int(sess.Events), reason
}

// seed reads get_power for the stream's devices.
func (s *stream) seed(ctx context.Context) ([]store.Reading, error) {
	ctx, cancel := context.WithTimeout(ctx, s.c.RequestTimeout)
	defer cancel()
	resp, err := s.ep.conn.get(ctx, s.seedPath, true)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	if err != nil {
		return nil, fmt.Errorf("%s %s: read: %w", s.ep.srv.Endpoint(), s.seedPath, err)
	}
	// get_power answers in the snapshot format, which fast declines.
	vals, err := decodeSlow(nil, body, s.decode)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", s.ep.srv.Endpoint(), s.seedPath, err)
	}
	return s.readings(vals, true), nil
}

// readings corrects vals with the offset in force now.
func (s *stream) readings(vals []Value, seed bool) []store.Reading {
	return s.appendReadings(make([]store.Reading, 0, len(vals)), vals, seed)
}

// appendReadings appends vals to rs, corrected with the offset in force
// now.
func (s *stream) appendReadings(rs []store.Reading, vals []Value, seed bool) []store.Reading {
	off := s.ep.offsetUs.Load()
	name := s.ep.srv.Endpoint()
	for _, v := range vals {
		rs = append(rs, store.Reading{Endpoint: name, Kind: v.Kind, Device: v.Device,
			TimeMs: Correct(v.DaemonMs, off), DaemonMs: v.DaemonMs, MilliWatts: v.MilliWatts, Seed: seed})
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

// Bounds of a stream's network reads: they start small and grow while
// each read fills the buffer, which saves system calls under load without
// costing memory on the many quiet streams of a cluster.
const (
	minStreamRead = 4 << 10
	maxStreamRead = 64 << 10
)

// streamBody is the body of a stream as the SSE reader sees it: buffered,
// and before each network read, which may block, it hands on what was
// decoded (flush).
type streamBody struct {
	r     io.Reader
	flush func()
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
		n, err := b.r.Read(b.buf)
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
