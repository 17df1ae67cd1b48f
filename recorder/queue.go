package recorder

import (
	"sync"

	"github.com/wattrec/wattrec/store"
)

// queue carries the client's batches to the writer, bounded in batches
// (its channel) and in readings: a stream that would queue more than
// maxQueued readings waits until the writer has taken some in, so that
// what a full-rate stream puts in memory while a commit runs stays a few
// megabytes (under load the writer commits what arrived meanwhile in its
// next commit, so the streams wait only when the disk is slower than
// they are).
type queue struct {
	ch        chan store.Batch
	maxQueued int

	mu       sync.Mutex
	cond     *sync.Cond
	readings int // in the channel
}

// queueBatches bounds the batches a Recorder's queue holds: quiet
// endpoints send batches of a few readings.
const queueBatches = 1024

// newQueue returns a queue of at most batches batches and maxQueued
// readings.
func newQueue(batches, maxQueued int) *queue {
	q := &queue{ch: make(chan store.Batch, batches), maxQueued: maxQueued}
	q.cond = sync.NewCond(&q.mu)
	return q
}

// send queues b, first waiting while it would take the queue past
// maxQueued readings (a batch larger than that goes alone).
func (q *queue) send(b store.Batch) {
	n := len(b.Readings)
	q.mu.Lock()
	for q.readings > 0 && q.readings+n > q.maxQueued {
		q.cond.Wait()
	}
	q.readings += n
	q.mu.Unlock()
	q.ch <- b
}

// took tells the queue that the writer took a batch of n readings out.
func (q *queue) took(n int) {
	q.mu.Lock()
	q.readings -= n
	q.mu.Unlock()
	q.cond.Broadcast()
}

// queued is the number of readings in the queue.
func (q *queue) queued() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.readings
}
