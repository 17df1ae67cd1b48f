package query_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/wattrec/wattrec/query"
	"github.com/wattrec/wattrec/store"
)

// ExampleEnergy is DESIGN.md's worked example, recorded and queried: a
// GPU at 100 W from 0 s and 300 W from 2 s; the stream disconnects at
// 6 s and reconnects at 8 s, where the seed reads 200 W; 250 W from 9 s.
// Over [1 s, 10 s) that is 100 + 1,200 + 200 + 250 = 1,750 J, with a
// value for 7 of the 9 seconds and one 2 s gap where nothing holds.
func ExampleEnergy() {
	dir, err := os.MkdirTemp("", "wattrec-query-example-")
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
	const t0 = 1_795_881_600_000 // 2026-11-28T16:00:00Z, the example's 0 s
	at := func(s float64) int64 { return t0 + int64(s*1000) }
	reading := func(s float64, watts int64, seed bool) store.Reading {
		return store.Reading{Endpoint: ep, Kind: store.KindGPU, Device: 0,
			TimeMs: at(s), DaemonMs: at(s) - 3, MilliWatts: watts * 1000, Seed: seed}
	}
	b := store.Batch{
		Sessions: []store.Session{
			{Endpoint: ep, Stream: store.StreamGPU, Start: at(-10), End: at(6), Reason: "stream closed"},
			{Endpoint: ep, Stream: store.StreamGPU, Start: at(8), End: at(20), Reason: "recorder stopped"},
		},
		Readings: []store.Reading{
			reading(0, 100, false),
			reading(2, 300, false),
			reading(8, 200, true), // the seed read at the reconnect
			reading(9, 250, false),
		},
	}
	if err := db.Write(ctx, &b); err != nil {
		fmt.Println(err)
		return
	}

	rep, err := query.Energy(ctx, db, query.Options{
		Filter: query.Filter{Range: query.Between(at(1), at(10))},
		By:     query.ByTotal,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(query.FormatTime(rep.FromMs), "→", query.FormatTime(rep.ToMs))
	for _, row := range rep.Rows {
		fmt.Printf("%s %.0f J coverage %.4f gaps %d (longest %d ms)\n", row.Group, row.Joules(), row.Coverage(), row.Gaps, row.LongestGapMs)
	}
	// Output:
	// 2026-11-28T16:00:01.000Z → 2026-11-28T16:00:10.000Z
	// total 1750 J coverage 0.7778 gaps 1 (longest 2000 ms)
}
