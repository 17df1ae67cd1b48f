package store_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/wattrec/wattrec/store"
)

// Example writes one batch, a stream session and three GPU readings, and
// reads the readings back in time order.
func Example() {
	dir, err := os.MkdirTemp("", "wattrec-example-")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)
	db, err := store.Open(filepath.Join(dir, "run.db"), store.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer db.Close()

	ctx := context.Background()
	const ep = "node1:4938"
	gpu0 := store.SeriesKey{Endpoint: ep, Kind: store.KindGPU, Device: 0}
	reading := func(t, mw int64, seed bool) store.Reading {
		// The daemon's clock is 5 ms behind the recorder's.
		return store.Reading{Endpoint: ep, Kind: gpu0.Kind, Device: gpu0.Device, TimeMs: t, DaemonMs: t - 5, MilliWatts: mw, Seed: seed}
	}
	b := store.Batch{
		Sessions: []store.Session{{Endpoint: ep, Stream: store.StreamGPU, Start: 1000, End: 1200, Events: 2, Reason: "recorder stopped"}},
		// Out of order: the store sorts by corrected time.
		Readings: []store.Reading{reading(1100, 248_500, false), reading(1000, 70_000, true), reading(1050, 250_000, false)},
	}
	if err := db.Write(ctx, &b); err != nil {
		fmt.Println(err)
		return
	}

	err = db.Scan(ctx, gpu0, 0, 2000, func(r *store.Reading) error {
		fmt.Printf("%s at %d ms (daemon %d ms): %d mW, seed %v\n", gpu0, r.TimeMs, r.DaemonMs, r.MilliWatts, r.Seed)
		return nil
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	sessions, err := db.Sessions(ctx, ep)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, s := range sessions {
		fmt.Printf("%s stream %s: %d..%d ms, %d events, %s\n", s.Endpoint, s.Stream, s.Start, s.End, s.Events, s.Reason)
	}
	// Output:
	// node1:4938 gpu:0 at 1000 ms (daemon 995 ms): 70000 mW, seed true
	// node1:4938 gpu:0 at 1050 ms (daemon 1045 ms): 250000 mW, seed false
	// node1:4938 gpu:0 at 1100 ms (daemon 1095 ms): 248500 mW, seed false
	// node1:4938 stream gpu: 1000..1200 ms, 2 events, recorder stopped
}
