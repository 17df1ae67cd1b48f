package store_test

import (
	"context"
	"math/rand/v2"
	"os"
	"testing"
	"time"

	"github.com/wattrec/wattrec/store"
)

// gpuBatch is n readings of series k from t0 on a 50 ms grid with noisy
// values (so that chunks fill up as in a real recording).
func gpuBatch(k store.SeriesKey, t0 int64, n int, rng *rand.Rand) *store.Batch {
	b := &store.Batch{}
	for i := range n {
		t := t0 + int64(i)*50
		b.Readings = append(b.Readings, store.Reading{Endpoint: k.Endpoint, Kind: k.Kind, Device: k.Device,
			TimeMs: t, DaemonMs: t - 5000, MilliWatts: 60_000 + rng.Int64N(240_000)})
	}
	return b
}

// TestDB_Scan_SlowReaderDoesNotBlockWriter: a Scan whose caller stops
// (an export to a paused pipe) holds no read transaction while it waits,
// so commits that grow the file (bbolt remaps it, which waits for every
// open read transaction) go on. It used to block them until the reader
// resumed.
func TestDB_Scan_SlowReaderDoesNotBlockWriter(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := MustOpenDB(t)
	rng := rand.New(rand.NewPCG(7, 8))
	old := store.SeriesKey{Endpoint: "n1:4938", Kind: store.KindGPU}
	const n = 200_000 // several scan batches of chunks
	if err := db.Write(ctx, gpuBatch(old, 1_700_000_000_000, n, rng)); err != nil {
		t.Fatal(err)
	}

	entered, resume := make(chan struct{}), make(chan struct{})
	scanned := make(chan int, 1)
	go func() {
		count := 0
		err := db.Scan(ctx, old, 0, 1<<62, func(*store.Reading) error {
			if count == 150_000 { // past the first batch
				close(entered)
				<-resume
			}
			count++
			return nil
		})
		if err != nil {
			t.Error(err)
		}
		scanned <- count
	}()
	<-entered

	// Grow the file by well over bbolt's 1 MiB allocation step while the
	// scan waits.
	fi, _ := os.Stat(db.Path())
	before := fi.Size()
	wrote := make(chan error, 1)
	go func() {
		for i := range 40 {
			k := store.SeriesKey{Endpoint: "n2:4938", Kind: store.KindGPU, Device: int32(i)}
			if err := db.Write(ctx, gpuBatch(k, 1_700_000_000_000, 20_000, rng)); err != nil {
				wrote <- err
				return
			}
		}
		wrote <- nil
	}()
	select {
	case err := <-wrote:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		close(resume)
		t.Fatal("commits blocked while a scan's caller waited")
	}
	fi, _ = os.Stat(db.Path())
	// bbolt maps the file in sizes that double: past twice the size, it
	// had to remap.
	if fi.Size() <= 2*before {
		t.Errorf("the file grew from %d to %d bytes only: the test did not make bbolt remap", before, fi.Size())
	}
	close(resume)
	if got := <-scanned; got != n {
		t.Fatalf("the scan saw %d readings, want %d", got, n)
	}
}
