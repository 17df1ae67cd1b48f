package simtest

import (
	"context"
	"testing"

	"github.com/wattrec/wattrec/store"
)

// WorkedStartMs is the worked example's 0 s: 2026-11-28T16:00:00Z.
const WorkedStartMs = 1_795_881_600_000

// WorkedAt is the worked example's time s seconds after its 0 s.
func WorkedAt(s float64) int64 { return WorkedStartMs + int64(s*1000) }

// WorkedEndpoint is the worked example's one endpoint.
const WorkedEndpoint = "n1:4938"

// WriteWorkedExample writes DESIGN.md's worked examples to db, as
// main's query golden tests have them: GPU 0 at 100 W from 0 s and 300 W
// from 2 s, its stream down from 6 s to 8 s, a 200 W seed at 8 s and
// 250 W from 9 s; CPU 0 at 10 Hz, 50 W until 5 s and 60 W after; DRAM 0
// a flat 10 W; the CPU stream live from -1 s to 12 s; marks "epoch" ×2
// ([1 s, 4 s), [4 s, 10 s)) and a nested "step" ([2 s, 3 s)); hardware
// counter readings of GPU 0 at 1.5 s, 5 s and 9.5 s (over [1.5 s, 5 s)
// the stream has 100 W × 0.5 s + 300 W × 3 s = 950 J but the counter
// 997.5 J, 5 %: not used, a warning; over [5 s, 9.5 s), across the gap,
// the stream has 625 J and the counter 1,185 J, which bridges the gap)
// and of CPU 0 at 1 s and 9 s (50 W × 4 s + 60 W × 4 s = 440 J, as
// counted). Over [1 s, 10 s) GPU 0 holds 1,750 J with coverage 7/9 and
// one 2 s gap, and 2,310 J anchored.
func WriteWorkedExample(tb testing.TB, db *store.DB) {
	tb.Helper()
	at, ep := WorkedAt, WorkedEndpoint
	gpu := func(s float64, w int64, seed bool) store.Reading {
		return store.Reading{Endpoint: ep, Kind: store.KindGPU, TimeMs: at(s), DaemonMs: at(s) - 5000, MilliWatts: w * 1000, Seed: seed}
	}
	b := store.Batch{
		Readings: []store.Reading{gpu(0, 100, true), gpu(2, 300, false), gpu(8, 200, true), gpu(9, 250, false)},
		Sessions: []store.Session{
			{Endpoint: ep, Stream: store.StreamGPU, Start: at(-1), End: at(6), Reason: "server closed the stream"},
			{Endpoint: ep, Stream: store.StreamGPU, Start: at(8), End: at(12), Reason: "recorder stopped"},
			{Endpoint: ep, Stream: store.StreamCPU, Start: at(-1), End: at(12), Reason: "recorder stopped"},
		},
		Marks: []store.Mark{
			{Name: "epoch", BeginMs: at(1), EndMs: at(4)},
			{Name: "epoch", BeginMs: at(4), EndMs: at(10)},
			{Name: "step", BeginMs: at(2), EndMs: at(3)},
		},
		Counters: []store.CounterReading{
			{Endpoint: ep, Kind: store.KindGPU, TakenMs: at(1.5), EnergyUJ: 5_000_000_000, Trigger: store.TriggerPeriodic},
			{Endpoint: ep, Kind: store.KindGPU, TakenMs: at(5), EnergyUJ: 5_000_000_000 + 997_500_000, Trigger: store.TriggerPeriodic},
			{Endpoint: ep, Kind: store.KindGPU, TakenMs: at(9.5), EnergyUJ: 5_000_000_000 + 997_500_000 + 1_185_000_000, Trigger: store.TriggerPeriodic},
			{Endpoint: ep, Kind: store.KindCPU, TakenMs: at(1), EnergyUJ: 7_000_000, Trigger: store.TriggerStart},
			{Endpoint: ep, Kind: store.KindCPU, TakenMs: at(9), EnergyUJ: 7_000_000 + 440_000_000, Trigger: store.TriggerStop},
		},
	}
	for i := int64(0); i <= 110; i++ {
		w := int64(50)
		if i > 50 {
			w = 60
		}
		ms := at(float64(i) / 10)
		b.Readings = append(b.Readings,
			store.Reading{Endpoint: ep, Kind: store.KindCPU, TimeMs: ms, DaemonMs: ms - 5000, MilliWatts: w * 1000},
			store.Reading{Endpoint: ep, Kind: store.KindDRAM, TimeMs: ms, DaemonMs: ms - 5000, MilliWatts: 10_000})
	}
	if err := db.Write(context.Background(), &b); err != nil {
		tb.Fatal(err)
	}
}
