package recorder

import "runtime/debug"

// The memory limit policy: a soft limit on the Go runtime's memory (heap,
// goroutine stacks, runtime structures; not the pages of the mmapped file
// or of the binary), so that the collector works to keep a long
// recording near what it needs instead of letting the heap double
// between collections.
//
// What a recording needs grows with its endpoints (their connections,
// goroutines, buffers and series), plus a fixed part that also covers a
// full-rate stream (the writer's segments, one bbolt transaction). While
// the disk is full the backlog is held in memory on purpose, so the
// writer raises the limit by what it holds: the collector never fights
// the readings it was told to keep.
const (
	memoryLimitBase        = 24 << 20  // one endpoint at full rate peaks near 16 MiB of live heap
	memoryLimitPerEndpoint = 128 << 10 // measured about 100 KiB live (heap and stacks) per idle endpoint
)

// MemoryLimitFor is the default soft memory limit of a recording of
// endpoints endpoints (see Recorder.MemoryLimit).
func MemoryLimitFor(endpoints int) int64 {
	return memoryLimitBase + int64(max(endpoints, 1))*memoryLimitPerEndpoint
}

// applyMemoryLimit sets the runtime's limit to MemoryLimit plus the
// backlog held while the disk is full, when MemoryLimit is set and that
// changed.
func (w *writer) applyMemoryLimit() {
	if w.r.MemoryLimit <= 0 {
		return
	}
	limit := w.r.MemoryLimit
	if w.full {
		limit += w.bytes()
	}
	if limit != w.memoryLimit {
		debug.SetMemoryLimit(limit)
		w.memoryLimit = limit
	}
}

// restoreMemoryLimit puts back the limit in force before Run.
func (w *writer) restoreMemoryLimit() {
	if w.memoryLimit != 0 {
		debug.SetMemoryLimit(w.priorLimit)
	}
}
