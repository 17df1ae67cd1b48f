package recorder

import (
	"sync"
	"testing"

	"github.com/wattrec/wattrec/store"
)

// TestQueue_Bound: senders racing a slow taker never have more than
// maxQueued readings queued, every batch arrives once and in order per
// sender, and a batch larger than the bound goes through alone.
func TestQueue_Bound(t *testing.T) {
	const maxQueued, senders, batches, size = 100, 4, 200, 30
	q := newQueue(64, maxQueued)
	var wg sync.WaitGroup
	for s := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range batches {
				rs := make([]store.Reading, size)
				rs[0].Device, rs[0].TimeMs = int32(s), int64(i)
				q.send(store.Batch{Readings: rs})
			}
			q.send(store.Batch{Readings: make([]store.Reading, 3*maxQueued)}) // alone
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	next := make([]int64, senders)
	got, big := 0, 0
	for got < senders*(batches+1) {
		b := <-q.ch
		if n := q.queued(); n > maxQueued && n != len(b.Readings) {
			t.Fatalf("%d readings queued, bound %d", n, maxQueued)
		}
		if len(b.Readings) == 3*maxQueued {
			big++
		} else if r := b.Readings[0]; r.TimeMs != next[r.Device] {
			t.Fatalf("sender %d: batch %d arrived, want %d", r.Device, r.TimeMs, next[r.Device])
		} else {
			next[r.Device]++
		}
		q.took(len(b.Readings))
		got++
	}
	<-done
	if big != senders || q.queued() != 0 {
		t.Errorf("%d large batches, %d readings left queued", big, q.queued())
	}
}
