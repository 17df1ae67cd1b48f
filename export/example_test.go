package export_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/wattrec/wattrec/export"
	"github.com/wattrec/wattrec/query"
	"github.com/wattrec/wattrec/store"
)

// The energy grid of DESIGN.md's worked example: one GPU, 100 W at 0 s,
// 300 W at 2 s, a disconnection from 6 s to 8 s, a 200 W seed at the
// reconnect, 250 W at 9 s. Over [1 s, 10 s) in 3 s bins (aligned to the
// epoch, clipped to the window) the bins add up to query's 1,750 J.
func ExampleGrid() {
	dir, _ := os.MkdirTemp("", "wattrec-example")
	defer os.RemoveAll(dir)
	db, err := store.Open(filepath.Join(dir, "run.db"), store.Options{})
	if err != nil {
		panic(err)
	}
	defer db.Close()

	const ep = "node1:4938"
	gpu := func(ms, watts int64, seed bool) store.Reading {
		return store.Reading{Endpoint: ep, Kind: store.KindGPU, TimeMs: ms, DaemonMs: ms, MilliWatts: watts * 1000, Seed: seed}
	}
	err = db.Write(context.Background(), &store.Batch{
		Sessions: []store.Session{
			{Endpoint: ep, Stream: store.StreamGPU, Start: -10_000, End: 6_000, Reason: "EOF"},
			{Endpoint: ep, Stream: store.StreamGPU, Start: 8_000, End: 20_000},
		},
		Readings: []store.Reading{gpu(0, 100, false), gpu(2_000, 300, false), gpu(8_000, 200, true), gpu(9_000, 250, false)},
	})
	if err != nil {
		panic(err)
	}

	var total float64
	_, err = export.Grid(context.Background(), db, query.Filter{Range: query.Between(1_000, 10_000)}, 3_000, export.Options{},
		func(b *export.GridBin) error {
			fmt.Printf("[%4.1f s, %4.1f s)  %6.1f J  coverage %.2f\n", float64(b.FromMs)/1000, float64(b.ToMs)/1000, b.Joules(), b.Coverage())
			total += b.Joules()
			return nil
		})
	if err != nil {
		panic(err)
	}
	fmt.Printf("total %.1f J\n", total)
	// Output:
	// [ 1.0 s,  3.0 s)   400.0 J  coverage 1.00
	// [ 3.0 s,  6.0 s)   900.0 J  coverage 1.00
	// [ 6.0 s,  9.0 s)   200.0 J  coverage 0.33
	// [ 9.0 s, 10.0 s)   250.0 J  coverage 1.00
	// total 1750.0 J
}
