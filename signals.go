package main

import (
	"context"
	"os"
	"os/signal"
	"sync"
	"syscall"
)

// interrupts is the process's handling of SIGINT and SIGTERM. The first
// cancels the commands' context: a recording stops, commits what it
// received and exits 0. The next one exits at once with status 1,
// without waiting for the final commit (what was committed stays, and
// the file stays consistent). While `wattrec run`'s command runs,
// signals go to it instead (forward), and count as the first.
var interrupts signals

type signals struct {
	mu      sync.Mutex
	cancel  context.CancelFunc
	abort   func(os.Signal) // the next signal: main's exit
	forward chan<- os.Signal
	seen    bool
}

// start installs the handler: the first signal calls cancel, the next
// abort. Its goroutine lives as long as the process.
func (s *signals) start(cancel context.CancelFunc, abort func(os.Signal)) {
	s.cancel, s.abort = cancel, abort
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
	go func() {
		for sig := range ch {
			s.handle(sig)
		}
	}()
}

func (s *signals) handle(sig os.Signal) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.forward != nil:
		select {
		case s.forward <- sig:
		default: // the command has not taken the last one yet
		}
		s.seen = true
	case !s.seen:
		s.seen = true
		s.cancel()
	default:
		s.abort(sig)
	}
}

// forwardTo sends the signals to ch until the returned stop is called.
// In a process without the handler (tests) nothing is sent.
func (s *signals) forwardTo(ch chan<- os.Signal) (stop func()) {
	s.mu.Lock()
	s.forward = ch
	s.mu.Unlock()
	return func() {
		s.mu.Lock()
		s.forward = nil
		s.mu.Unlock()
	}
}
