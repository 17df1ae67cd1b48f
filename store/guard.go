package store

import (
	"fmt"
	"runtime/debug"

	bolt "go.etcd.io/bbolt"
)

// This file turns what bbolt does on a damaged file into errors. bbolt
// maps the file into memory and trusts it: a page past the end of a
// file truncated after Open faults (SIGBUS), a page pointer damaged to
// point outside the mapping faults too (SIGSEGV), and a damaged page
// makes bbolt panic or index out of range. Each exported method that
// touches pages runs under a guard: runtime/debug.SetPanicOnFault makes
// a fault on the mapping a panic of the calling goroutine, and a
// deferred recover turns that panic, or bbolt's own, into an error that
// wraps ErrCorrupt. Open checks the meta pages, the size and the page
// tree before bbolt reads a page, so the guard is for what Open cannot
// see: a file truncated or written to by someone else while open, and
// bbolt's own bugs. (Under the race detector, a read at a wild address
// was seen to fault inside the detector's own code, where no guard can
// recover it: one more reason for Open's walk.)
//
// A panic of the caller's own callback (Scan's fn) is not the file's: a
// guard lets it go on as it is.

// guard is armed for one call into bbolt: see the file comment. Use it
// as
//
//	g := arm()
//	defer g.disarm(&err)
//
// and set inFn around each call of the caller's callback.
type guard struct {
	fault bool // the goroutine's SetPanicOnFault before arm
	inFn  bool // the caller's callback is running: a panic is its own
}

// arm makes memory faults of this goroutine panics until disarm.
func arm() guard { return guard{fault: debug.SetPanicOnFault(true)} }

// disarm, deferred right after arm, restores the goroutine's fault
// setting and turns a panic of bbolt or a fault into *err.
func (g *guard) disarm(err *error) {
	if g.inFn { // a panic of the callback: not ours to stop
		debug.SetPanicOnFault(g.fault)
		return
	}
	r := recover()
	debug.SetPanicOnFault(g.fault)
	if r != nil {
		*err = panicError(r)
	}
}

// panicError describes a recovered panic as damage to the file.
func panicError(r any) error {
	if f, ok := r.(interface{ Addr() uintptr }); ok {
		return fmt.Errorf("%w: memory fault at %#x reading the file: it is shorter than its pages, or a page points outside it", ErrCorrupt, f.Addr())
	}
	return fmt.Errorf("%w: bbolt: %v", ErrCorrupt, r)
}

// view runs fn in a read transaction under a guard.
func (db *DB) view(fn func(*bolt.Tx) error) (err error) {
	g := arm()
	defer g.disarm(&err)
	return db.bolt.View(fn)
}

// update runs fn in a write transaction under a guard.
func (db *DB) update(fn func(*bolt.Tx) error) (err error) {
	g := arm()
	defer g.disarm(&err)
	return db.bolt.Update(fn)
}
