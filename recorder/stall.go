package recorder

import (
	"context"
	"fmt"
	"github.com/wattrec/wattrec/retry"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/wattrec/wattrec/store"
)

// Stall detection. zeusd sends no keep-alives, so an open connection that
// has gone quiet is judged, not trusted:
//
//   - CPU: RAPL values change at nearly every poll, so a CPU stream whose
//     reader has waited on the network for max(Client.StallPolls × the
//     poll period, Client.StallMin) is stalled.
//   - GPU: zeusd sends a GPU value only when it changes, so after
//     Client.ProbeAfter of silence the stream's devices are read with
//     get_power. The values the stream last delivered mean alive: the
//     probe is evidence, and the next one is due ProbeAfter later. A
//     value that differs, with no event within ProbeAfter/5 (the stream
//     should have sent it), or a failed probe means stalled.
//
// Silence counts only while the reader waits on the network: a reader
// held up by a slow sink has data waiting, not a silent daemon. A stalled
// session ends at its last evidence of liveness (the last bytes received
// or the last confirming probe), not when the stall was found; the
// stream then reconnects and opens a new session, seeded as always.

// assumedCPUPeriod is the CPU poll period a stall threshold assumes until
// the stream's own is known: the longest zeusd's integer poll rate (1 Hz)
// allows.
const assumedCPUPeriod = time.Second

// periodSpacings is how many recent event spacings the inferred CPU poll
// period is the median of.
const periodSpacings = 15

// maxTrackedDevices bounds the devices a stream tracks for stall checks,
// whatever ids a daemon sends.
const maxTrackedDevices = 1024

// liveness is what a stream knows about whether its connection is alive.
// The reader updates it around each network read and with each batch it
// decodes; the connection's watchdog (stream.watch) reads it. begin
// resets it for a new session, except the CPU spacings: a daemon's poll
// period outlives its connections.
type liveness struct {
	mu         sync.Mutex
	waitSince  time.Time       // the reader has waited on the network since; zero while it is busy
	lastBytes  time.Time       // the last bytes received; the session start before any
	probed     time.Time       // the last probe that confirmed the held values
	endMs      int64           // the newest reading's time + 1: the session must contain it
	held       map[int32]int64 // GPU: each device's latest value (seed, event or probe)
	lastDaemon map[int32]int64 // CPU: each package's newest daemon time in this session
	spacings   [periodSpacings]int64
	nSpacings  int
	progressed bool  // the session delivered an event or a confirming probe
	stall      error // why the watchdog closed the connection
}

// begin starts a session at start.
func (l *liveness) begin(start time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.held == nil {
		l.held, l.lastDaemon = map[int32]int64{}, map[int32]int64{}
	}
	clear(l.held)
	clear(l.lastDaemon)
	l.waitSince, l.lastBytes, l.probed = time.Time{}, start, time.Time{}
	l.endMs, l.progressed, l.stall = 0, false, nil
}

// waiting says the reader is about to wait on the network.
func (l *liveness) waiting(now time.Time) {
	l.mu.Lock()
	l.waitSince = now
	l.mu.Unlock()
}

// received says a network read returned n bytes.
func (l *liveness) received(now time.Time, n int) {
	l.mu.Lock()
	l.waitSince = time.Time{}
	if n > 0 {
		l.lastBytes = now
	}
	l.mu.Unlock()
}

// note takes in readings the reader hands on: events (the stream's own)
// or the seed. It reports whether they are the session's first events.
func (l *liveness) note(rs []store.Reading, events bool) (first bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i := range rs {
		r := &rs[i]
		l.endMs = max(l.endMs, r.TimeMs+1)
		switch r.Kind {
		case store.KindGPU:
			if _, ok := l.held[r.Device]; ok || len(l.held) < maxTrackedDevices {
				l.held[r.Device] = r.MilliWatts
			}
		case store.KindCPU:
			if r.Seed {
				continue // get_power's own timestamp, not a poll of the stream
			}
			last, ok := l.lastDaemon[r.Device]
			if ok && r.DaemonMs > last {
				l.spacings[l.nSpacings%periodSpacings] = r.DaemonMs - last
				l.nSpacings++
			}
			if ok || len(l.lastDaemon) < maxTrackedDevices {
				l.lastDaemon[r.Device] = r.DaemonMs
			}
		}
	}
	if events && !l.progressed {
		l.progressed = true
		return true
	}
	return false
}

// period is the CPU poll period inferred from recent events, or zero.
func (l *liveness) period() time.Duration {
	l.mu.Lock()
	n := min(l.nSpacings, periodSpacings)
	s := l.spacings
	l.mu.Unlock()
	if n == 0 {
		return 0
	}
	recent := s[:n]
	slices.Sort(recent)
	return time.Duration(recent[n/2]) * time.Millisecond
}

// silence is how long the reader has waited on the network with nothing
// received (and, for GPUs, since the last confirming probe). ok is false
// while the reader is busy.
func (l *liveness) silence(now time.Time) (d time.Duration, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.waitSince.IsZero() {
		return 0, false
	}
	return now.Sub(later(l.waitSince, l.probed)), true
}

// quietSince reports whether the reader has waited on the network, with
// nothing received, since before t.
func (l *liveness) quietSince(t time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return !l.waitSince.IsZero() && !l.waitSince.After(t)
}

// Verdicts of a probe.
const (
	probeInconclusive = iota // the reader received or handled data meanwhile
	probeConfirmed           // the daemon shows what the stream delivered
	probeDiffers             // the daemon shows values the stream did not send
)

// judge compares a probe's values, read with a request sent at sent, with
// what the stream delivered. A confirmed probe becomes evidence of
// liveness; first says it is the session's first progress. A device the
// stream has no value for takes the probe's as the one to compare with
// next time. diff describes the differences.
func (l *liveness) judge(vals []Value, sent time.Time) (verdict int, diff string, first bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.waitSince.IsZero() || l.waitSince.After(sent) {
		return probeInconclusive, "", false
	}
	var diffs []string
	for _, v := range vals {
		h, ok := l.held[v.Device]
		switch {
		case !ok && len(l.held) < maxTrackedDevices:
			l.held[v.Device] = v.MilliWatts
		case ok && h != v.MilliWatts:
			diffs = append(diffs, fmt.Sprintf("GPU %d at %d mW, the stream's last %d mW", v.Device, v.MilliWatts, h))
		}
	}
	if len(diffs) > 0 {
		return probeDiffers, strings.Join(diffs, "; "), false
	}
	l.probed = later(l.probed, sent)
	first, l.progressed = !l.progressed, true
	return probeConfirmed, "", first
}

// evidence is the last time the session was known to be live: the last
// bytes received or the last confirming probe, and never before its
// newest reading.
func (l *liveness) evidence() (ms int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return max(later(l.lastBytes, l.probed).UnixMilli(), l.endMs)
}

func (l *liveness) setStall(err error) {
	l.mu.Lock()
	l.stall = err
	l.mu.Unlock()
}

// stalled is why the watchdog closed the connection, or nil.
func (l *liveness) stalled() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.stall
}

// progress reports whether the session delivered events or a confirming
// probe.
func (l *liveness) progress() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.progressed
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// silenceLimit is how long the stream may be silent before it is judged:
// declared stalled (CPU) or probed (GPU), and the least it can become as
// the CPU poll period gets known. Zero disables the judging.
func (s *stream) silenceLimit() (limit, least time.Duration) {
	if s.kind == store.StreamGPU {
		return max(s.c.ProbeAfter, 0), s.c.ProbeAfter
	}
	if s.c.StallPolls <= 0 {
		return 0, 0
	}
	polls := time.Duration(s.c.StallPolls)
	p := s.live.period()
	if p <= 0 {
		p = assumedCPUPeriod
	}
	return max(polls*p, s.c.StallMin), max(polls*time.Millisecond, s.c.StallMin)
}

// watch judges the connection's silence until ctx ends. When it finds
// the connection stalled it records why in s.live and cancels the
// connection with stop.
func (s *stream) watch(ctx context.Context, stop context.CancelFunc) {
	for {
		limit, least := s.silenceLimit()
		if limit <= 0 {
			return
		}
		silent, waiting := s.live.silence(s.c.Now())
		if !waiting || silent < limit {
			// Look again when the limit is reached, or sooner if it may
			// shrink meanwhile (the poll period gets known), or while the
			// reader is busy, which seldom lasts.
			wait := min(limit-silent, least)
			if !waiting {
				wait = least / 4
			}
			if !retry.Sleep(ctx, wait) {
				return
			}
			continue
		}
		var err error
		if s.kind == store.StreamCPU {
			err = fmt.Errorf("%w: no event for %v", errStalled, silent.Round(time.Millisecond))
		} else {
			err = s.probe(ctx, silent)
		}
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			s.live.setStall(err)
			stop()
			return
		}
	}
}

// probe reads get_power after the GPU stream has been silent for silent.
// It returns nil when the stream is alive (or the probe cannot tell), or
// why it is stalled.
func (s *stream) probe(ctx context.Context, silent time.Duration) error {
	sent := s.c.Now()
	vals, err := s.getPower(ctx)
	if err != nil {
		return fmt.Errorf("%w: no event for %v and the get_power probe failed: %w", errStalled, silent.Round(time.Millisecond), err)
	}
	verdict, diff, first := s.live.judge(vals, sent)
	switch verdict {
	case probeInconclusive:
		return nil
	case probeConfirmed:
		if first {
			s.recovered()
		}
		return nil
	}
	// The change may be on its way: give the stream time to send it.
	if !retry.Sleep(ctx, s.c.ProbeAfter/5) || !s.live.quietSince(sent) {
		return nil
	}
	silent += s.c.Now().Sub(sent)
	return fmt.Errorf("%w: no event for %v while get_power shows %s", errStalled, silent.Round(time.Millisecond), diff)
}
