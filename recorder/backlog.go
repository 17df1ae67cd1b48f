package recorder

import (
	"cmp"
	"errors"
	"fmt"
	"github.com/wattrec/wattrec/retry"
	"slices"
	"strings"
	"syscall"
	"time"
	"unsafe"

	"github.com/wattrec/wattrec/store"
)

// This file holds what the writer keeps while the disk is full: the
// retry state, the bound on the readings waiting in memory, and the
// spans of dropped readings, which are cut out of the stream sessions.
//
// # Dropped readings become gaps
//
// A query counts a value only inside a stored session of its stream
// (query.Spec), so dropping readings is honest only if no stored session
// covers the time their values held. When readings of a stream are
// dropped, the writer records a cut [from, to) for that stream:
//
//   - to is one past the latest dropped reading, and every reading of the
//     stream still waiting with a time before to is dropped as well, so
//     every kept reading lies after the cut;
//   - from is the earliest dropped reading for GPU streams, whose values
//     hold from their time on. A CPU or DRAM value covers the poll period
//     before its time, so there from is the series' last stored reading
//     (at most cpuReachMs earlier): the value before the dropped ones is
//     not held into their periods.
//
// Every session record is cut when it is committed (cutSessions): the
// piece before a cut ends at from, closed with DiskFullReason, and the
// session goes on in a piece keyed by to. Cutting is a view at commit
// time, so the writer's map of live sessions stays as the client sent
// them, and the next refresh of a session's End is cut the same way.
// Cuts of one outage merge; they are kept for the rest of Run, a few
// bytes per stream and outage.
//
// One case is beyond a per-stream cut: a reading stored before the
// outage whose corrected time lies after the earliest dropped one (the
// clock offset was re-estimated backwards in between, by a few ms) falls
// inside the cut, and its value counts from the cut's end until the
// next reading, a reading interval at most.

// DiskFullReason is the Reason of a stored session piece that ends where
// readings were dropped because the disk stayed full past
// Recorder.MaxBacklog. The session goes on in a piece that starts after
// the dropped readings, and the query reports the time between as a gap.
const DiskFullReason = "readings not stored: disk full"

// cpuReachMs bounds how long before its time a dropped CPU or DRAM
// reading's value reached back: the longest poll period the query infers
// (zeusd's slowest, 0.1 Hz).
const cpuReachMs = 10_000

// Estimated sizes of what waits in memory. The endpoint strings are
// shared with the client's servers, so they are not counted per reading.
const (
	readingBytes = int64(unsafe.Sizeof(store.Reading{}))
	counterBytes = int64(unsafe.Sizeof(store.CounterReading{}))
)

// streamID identifies a stream within a file.
type streamID struct {
	endpoint string
	stream   store.Stream
}

// cut is a span [from, to) of a stream's time whose readings were
// dropped: no stored session may cover it.
type cut struct {
	from, to int64
	outage   int // cuts of one outage merge
}

// backlog is the writer's state while the disk is full.
type backlog struct {
	full        bool        // the last commit failed for want of space
	retry       *time.Timer // the next attempt, while full
	since       time.Time   // the first failure of this outage
	attempts    int         // failed attempts in this outage
	lastErr     error
	stored      int // readings committed since this outage began
	dropped     int // readings dropped in this outage
	dropLogged  bool
	outage      int   // outages so far
	sealedBytes int64 // estimate of the sealed segments

	cuts   map[streamID][]cut // sorted by from, disjoint
	cutBuf []store.Session
}

// retryable reports whether a commit that failed with err may succeed
// later as it is: the file system, or the user's quota, was full. That
// is the one failure that goes away by itself, and bbolt rolls the
// transaction back, leaving the file as it was. Anything else is not
// retried: a closed database, a corrupt file or a record the store
// refuses fail the same way every time, and other I/O errors (EIO) mean
// a failing disk, where holding readings in memory would only put the
// error off.
func retryable(err error) bool {
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		return true
	}
	// bbolt formats the error of growing the file with %s ("file resize
	// error: no space left on device"), which drops the errno.
	msg := err.Error()
	return strings.Contains(msg, syscall.ENOSPC.Error()) || strings.Contains(msg, syscall.EDQUOT.Error())
}

// failing notes a failed attempt on a full disk and schedules the next.
func (w *writer) failing(err error) {
	if !w.full {
		w.full, w.since, w.attempts, w.stored, w.dropped, w.dropLogged = true, w.r.Client.Now(), 0, 0, 0, false
		w.outage++
		w.spares = nil // segments are sized for the backlog from now on
		w.applyMemoryLimit()
		w.r.Logger.Warn("disk full: keeping readings in memory, retrying",
			"max_backlog_mib", float64(w.r.MaxBacklog)/(1<<20), "err", err)
	} else if err.Error() != w.lastErr.Error() || (w.attempts+1)%10 == 0 {
		w.r.Logger.Warn("disk still full", "attempt", w.attempts+1, "backlog_readings", w.backlogReadings(), "err", err)
	}
	w.attempts++
	w.lastErr = err
	d := retry.Backoff(w.attempts, w.r.maxRetryBackoff())
	if w.retry == nil {
		w.retry = time.NewTimer(d)
	} else {
		w.retry.Reset(d)
	}
}

// recovered notes that the backlog is stored.
func (w *writer) recovered() {
	w.r.Logger.Info("disk has space again: stored the backlog", "readings", w.stored,
		"after", w.r.Client.Now().Sub(w.since).Round(time.Millisecond), "attempts", w.attempts, "dropped", w.dropped)
	w.full = false
	w.stopRetry()
	w.applyMemoryLimit()
}

func (w *writer) stopRetry() {
	if w.retry != nil {
		w.retry.Stop()
	}
}

func (r *Recorder) maxRetryBackoff() time.Duration {
	if r.MaxRetryBackoff <= 0 {
		return DefaultMaxRetryBackoff
	}
	return r.MaxRetryBackoff
}

// fullErr is Flush's answer while the disk is full.
func (w *writer) fullErr() error {
	return fmt.Errorf("%w: %d readings wait in memory, retrying: %w", ErrDiskFull, w.backlogReadings(), w.lastErr)
}

// gaveUp is Run's error when the disk was still full at the end.
func (w *writer) gaveUp(timeout time.Duration) error {
	n := w.backlogReadings() + w.dropped
	if w.dropped > 0 {
		return fmt.Errorf("%w at stop: gave up after %s, %d readings not stored (%d of them dropped earlier, past the backlog limit): %w",
			ErrDiskFull, timeout, n, w.dropped, w.lastErr)
	}
	return fmt.Errorf("%w at stop: gave up after %s, %d readings not stored: %w", ErrDiskFull, timeout, n, w.lastErr)
}

// backlogReadings is the number of readings waiting for a commit.
func (w *writer) backlogReadings() int {
	n := len(w.tail.Readings)
	for _, seg := range w.sealed {
		n += len(seg.Readings)
	}
	return n
}

// segmentBytes estimates the memory a segment's readings and counter
// readings hold. The other records are few.
func segmentBytes(b *store.Batch) int64 {
	return int64(cap(b.Readings))*readingBytes + int64(cap(b.Counters))*counterBytes
}

// bytes estimates the memory the backlog holds.
func (w *writer) bytes() int64 { return w.sealedBytes + segmentBytes(w.tail) }

// segmentSize is the number of readings of a segment while the disk is
// full: one commit's worth, and small enough that dropping works in
// steps of a sixteenth of MaxBacklog or less.
func (w *writer) segmentSize() int {
	return int(max(1, min(w.r.MaxBacklog/readingBytes/16, int64(w.r.BatchSize))))
}

// span is what the readings dropped at once of one stream covered.
type span struct{ from, last int64 }

// drop drops the oldest readings until the backlog is at most target
// bytes (with a segment's last reading also its counter readings, whose
// deltas stay exact without them), then the waiting readings of the same
// streams stamped before the latest dropped one, and cuts their time out
// of the sessions.
func (w *writer) drop(target int64) {
	spans := map[streamID]*span{}
	// The readings of one stream come in runs: remember the last lookup.
	var lastID streamID
	var last *span
	looked := false
	find := func(r *store.Reading, add bool) *span {
		id := streamID{r.Endpoint, store.StreamOf(r.Kind)}
		if looked && id == lastID && (last != nil || !add) {
			return last
		}
		sp := spans[id]
		if sp == nil && add {
			sp = &span{from: r.TimeMs, last: r.TimeMs}
			spans[id] = sp
		}
		lastID, last, looked = id, sp, true
		return sp
	}
	n := 0
	note := func(r *store.Reading, sp *span) {
		from := r.TimeMs
		if r.Kind != store.KindGPU {
			if t, ok := w.lastCPU[r.Series()]; ok && t < from {
				from = max(t, from-cpuReachMs)
			}
		}
		sp.from, sp.last = min(sp.from, from), max(sp.last, r.TimeMs)
		n++
	}

	// The oldest first.
	segs := append(slices.Clip(w.sealed), w.tail)
	total := w.bytes()
	for i, seg := range segs {
		if total <= target {
			break
		}
		if len(seg.Readings) == 0 && len(seg.Counters) == 0 {
			continue
		}
		b := segmentBytes(seg)
		if total-b >= target {
			for j := range seg.Readings {
				note(&seg.Readings[j], find(&seg.Readings[j], true))
			}
			seg.Readings, seg.Counters = nil, nil
		} else {
			k := min(int((total-target+readingBytes-1)/readingBytes), len(seg.Readings))
			for j := range seg.Readings[:k] {
				note(&seg.Readings[j], find(&seg.Readings[j], true))
			}
			seg.Readings = slices.Clone(seg.Readings[k:]) // free the dropped ones' memory
		}
		total += segmentBytes(seg) - b
		if i < len(w.sealed) {
			w.sealedBytes += segmentBytes(seg) - b
		}
	}
	if n == 0 {
		return
	}

	// Then the stragglers, so that every kept reading of a stream lies
	// after its cut.
	for _, seg := range segs {
		keep := seg.Readings[:0]
		for j := range seg.Readings {
			r := &seg.Readings[j]
			if sp := find(r, false); sp != nil && r.TimeMs <= sp.last {
				note(r, sp)
				continue
			}
			keep = append(keep, *r)
		}
		seg.Readings = keep
	}
	// Fold the segments left without readings into the next one, so that
	// a long outage does not pile up their few other records.
	kept := w.sealed[:0]
	for i, seg := range w.sealed {
		if len(seg.Readings) > 0 || len(seg.Counters) > 0 {
			kept = append(kept, seg)
			continue
		}
		next := w.tail
		if i+1 < len(w.sealed) {
			next = w.sealed[i+1]
		}
		w.fold(seg, next)
	}
	clear(w.sealed[len(kept):])
	w.sealed = kept

	for id, sp := range spans {
		w.cuts[id] = addCut(w.cuts[id], cut{from: sp.from, to: sp.last + 1, outage: w.outage})
	}
	w.dropped += n
	if !w.dropLogged {
		w.dropLogged = true
		w.r.Logger.Warn("disk full: backlog limit reached, dropping the oldest readings; their time is a gap",
			"max_backlog_mib", float64(w.r.MaxBacklog)/(1<<20), "dropped", n)
	}
}

// fold moves the records of old, a segment without readings, into next,
// the segment after it: older first, and a session only where next holds
// no later state of it.
func (w *writer) fold(old, next *store.Batch) {
	next.Clocks = append(old.Clocks, next.Clocks...)
	next.Endpoints = append(old.Endpoints, next.Endpoints...) // the later info wins
	next.Runs = append(old.Runs, next.Runs...)
	have := make(map[sessionID]bool, len(next.Sessions))
	for _, s := range next.Sessions {
		have[sessionID{s.Endpoint, s.Stream, s.Start}] = true
	}
	for _, s := range old.Sessions {
		if id := (sessionID{s.Endpoint, s.Stream, s.Start}); !have[id] {
			if next == w.tail {
				w.tailIdx[id] = len(next.Sessions)
			}
			next.Sessions = append(next.Sessions, s)
		}
	}
}

// addCut adds c to a stream's cuts, merging it with those it overlaps
// and with those of the same outage: between two drops of one outage no
// reading of the stream was kept.
func addCut(list []cut, c cut) []cut {
	list = append(list, c)
	slices.SortFunc(list, func(a, b cut) int { return cmp.Compare(a.from, b.from) })
	out := list[:1]
	for _, c := range list[1:] {
		if prev := &out[len(out)-1]; c.from <= prev.to || c.outage == prev.outage {
			prev.to = max(prev.to, c.to)
			continue
		}
		out = append(out, c)
	}
	return out
}

// cutSessions returns the records that store sessions with the cuts of
// their streams left out. The result is valid until the next call.
func (w *writer) cutSessions(sessions []store.Session) []store.Session {
	if len(w.cuts) == 0 {
		return sessions
	}
	out := w.cutBuf[:0]
	for _, s := range sessions {
		out = appendCut(out, s, w.cuts[streamID{s.Endpoint, s.Stream}])
	}
	w.cutBuf = out
	return out
}

// appendCut appends the records that store session s with cuts (sorted,
// disjoint) left out: s itself if no cut overlaps it. Otherwise the
// piece before the first overlapping cut keeps s's key and ends where
// the cut begins, closed with DiskFullReason (zero-length if s began
// inside the cut), and s goes on in a piece keyed by the cut's end,
// which is cut again by the next cut. The event counts travel with the
// last piece, so that their sum over the sessions stays right.
func appendCut(dst []store.Session, s store.Session, cuts []cut) []store.Session {
	for _, c := range cuts {
		if c.from >= s.End || c.to <= s.Start {
			continue
		}
		head := s
		head.End, head.Open, head.Reason = max(c.from, s.Start), false, DiskFullReason
		if s.End <= c.to { // nothing of s is left after the cut
			return append(dst, head)
		}
		head.Events, head.Malformed = 0, 0
		dst = append(dst, head)
		s.Start = c.to
	}
	return append(dst, s)
}
