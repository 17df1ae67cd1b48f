package recorder

import "runtime/debug"

// The memory limit policy: a soft limit on the Go runtime's memory (heap,
// goroutine stacks, runtime structures; not the pages of the mmapped file
// or of the binary), so that the collector works to keep a long
// recording near what it needs instead of letting the heap double
// between collections.
//
// What a recording needs is a fixed part, a part per endpoint (its
// connections, goroutines, buffers and series), and the readings on
// their way to the file: queued for the writer, in its tail and
// segments, and while the disk is full its whole backlog. Those vary
// from a few kilobytes at 100 quiet endpoints to tens of megabytes while
// a full-rate stream outpaces a commit, and they are held on purpose: at
// each commit the writer sets the limit to MemoryLimit plus what it
// holds, so that the collector never fights the readings it must keep
// (a limit below the live heap would make it run without pause).
const (
	memoryLimitBase        = 24 << 20  // the runtime, one bbolt transaction, the writer's spares
	memoryLimitPerEndpoint = 128 << 10 // measured about 100 KiB live (heap and stacks) per idle endpoint
)

// MemoryLimitFor is the default soft memory limit of a recording of
// endpoints endpoints (see Recorder.MemoryLimit).
func MemoryLimitFor(endpoints int) int64 {
	return memoryLimitBase + int64(max(endpoints, 1))*memoryLimitPerEndpoint
}

// applyMemoryLimit sets the runtime's limit to MemoryLimit plus the
// readings the writer holds (held), in whole MiB, when MemoryLimit is set
// and that changed.
func (w *writer) applyMemoryLimit() {
	if w.r.MemoryLimit <= 0 {
		return
	}
	limit := w.r.MemoryLimit + w.held()>>20<<20
	if limit != w.memoryLimit {
		debug.SetMemoryLimit(limit)
		w.memoryLimit = limit
	}
}

// held estimates the bytes of readings the writer holds: its tail, its
// sealed segments (the backlog while the disk is full), its spares, and
// the readings queued for it.
func (w *writer) held() int64 {
	n := w.bytes()
	if w.in != nil {
		n += int64(w.in.queued()) * readingBytes
	}
	for _, s := range w.spares {
		n += segmentBytes(s)
	}
	return n
}

// restoreMemoryLimit puts back the limit in force before Run.
func (w *writer) restoreMemoryLimit() {
	if w.memoryLimit != 0 {
		debug.SetMemoryLimit(w.priorLimit)
	}
}
