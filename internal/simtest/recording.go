package simtest

import (
	"context"
	"encoding/json"
	"math/rand/v2"
	"net"
	"testing"

	"github.com/wattrec/wattrec/store"
)

// RecordingStartMs is when WriteRecording's recording starts: 2026-11-28T16:00:00Z.
const RecordingStartMs = 1_795_881_600_000

// WriteRecording writes a realistic recording to a new file at path, the
// way the recorder does (one batch per second of readings, heads
// rewritten at every commit), from a fixed seed: two endpoints, runs,
// endpoint info, clock estimates, stream sessions with a gap, 8 series of
// 5 minutes (GPUs at 20 Hz, CPU and DRAM at 10 Hz; several chunks each,
// so each series bucket has branch and leaf pages), counter readings
// every 10 s and marks, one of them open. It returns the number of
// readings written.
func WriteRecording(tb testing.TB, path string) int {
	tb.Helper()
	ctx := context.Background()
	db, err := store.Open(path, store.Options{NoSync: true})
	if err != nil {
		tb.Fatal(err)
	}
	defer func() {
		if err := db.Close(); err != nil {
			tb.Fatal(err)
		}
	}()
	rng := rand.New(rand.NewPCG(7, 11))
	t0 := int64(RecordingStartMs)
	const seconds = 300
	type series struct {
		k        store.SeriesKey
		periodMs int64
		mw       int64
		offsetMs int64 // daemon clock behind
	}
	eps := []struct {
		name, network string
		gpus          int
	}{{"node1:4938", "tcp", 4}, {"/run/zeusd/zeusd.sock", "unix", 2}}
	var all []*series
	var first store.Batch
	first.Runs = []store.Run{{StartedMs: t0 - 2000, Version: "v0.9.0", Host: "rec1", Servers: []string{"node1:4938", "/run/zeusd/zeusd.sock"}}}
	for i, ep := range eps {
		disc, _ := json.Marshal(map[string]any{"gpus": make([]struct{}, ep.gpus), "cpus": []map[string]any{{"id": 0, "dram_available": true}},
			"enabled_api_groups": []string{"gpu-read", "cpu-read"}, "auth_required": false})
		gpus := make([]int, ep.gpus)
		for g := range gpus {
			gpus[g] = g
			all = append(all, &series{k: store.SeriesKey{Endpoint: ep.name, Kind: store.KindGPU, Device: int32(g)}, periodMs: 50, mw: 80_000, offsetMs: int64(5000 * (i + 1))})
		}
		cpus := []int{}
		if i == 0 {
			cpus = []int{0}
			all = append(all, &series{k: store.SeriesKey{Endpoint: ep.name, Kind: store.KindCPU}, periodMs: 100, mw: 40_000, offsetMs: 5000},
				&series{k: store.SeriesKey{Endpoint: ep.name, Kind: store.KindDRAM}, periodMs: 100, mw: 9_000, offsetMs: 5000})
		}
		first.Endpoints = append(first.Endpoints, store.EndpointInfo{Endpoint: ep.name, Network: ep.network, Discover: disc,
			GPUSelection: "all", CPUSelection: "all", GPUs: gpus, CPUs: cpus, UpdatedMs: t0 - 1000})
		first.Sessions = append(first.Sessions,
			store.Session{Endpoint: ep.name, Stream: store.StreamGPU, Start: t0, End: t0 + 120_000, Events: 4800, Reason: "server closed the stream"},
			store.Session{Endpoint: ep.name, Stream: store.StreamGPU, Start: t0 + 125_000, End: t0 + seconds*1000, Open: true, Events: 7000, Malformed: 2},
			store.Session{Endpoint: ep.name, Stream: store.StreamCPU, Start: t0, End: t0 + seconds*1000, Open: true, Events: 3000})
		for c := range 3 {
			first.Clocks = append(first.Clocks, store.ClockEstimate{Endpoint: ep.name, TakenMs: t0 + int64(c)*60_000, OffsetUs: int64(5_000_000*(i+1)) + int64(c), RTTUs: 300, Samples: 8})
		}
	}
	if err := db.Write(ctx, &first); err != nil {
		tb.Fatal(err)
	}
	n := 0
	for s := range int64(seconds) {
		var b store.Batch
		for _, se := range all {
			for t := s * 1000; t < (s+1)*1000; t += se.periodMs {
				if se.k.Kind == store.KindGPU && t >= 120_000 && t < 125_000 {
					continue // the GPU stream's gap
				}
				se.mw = max(1000, se.mw+rng.Int64N(2001)-1000)
				b.Readings = append(b.Readings, store.Reading{Endpoint: se.k.Endpoint, Kind: se.k.Kind, Device: se.k.Device,
					TimeMs: t0 + t, DaemonMs: t0 + t - se.offsetMs, MilliWatts: se.mw, Seed: t == 0 || t == 125_000})
			}
			if s%10 == 0 {
				b.Counters = append(b.Counters, store.CounterReading{Endpoint: se.k.Endpoint, Kind: se.k.Kind, Device: se.k.Device,
					TakenMs: t0 + s*1000, RTTUs: 400, EnergyUJ: 1_000_000_000 + s*se.mw, Trigger: store.TriggerPeriodic})
			}
		}
		n += len(b.Readings)
		if err := db.Write(ctx, &b); err != nil {
			tb.Fatal(err)
		}
	}
	marks := []store.Mark{
		{Name: "warmup", BeginMs: t0, EndMs: t0 + 30_000, CreatedMs: t0 + 30_000, Source: "cli"},
		{Name: "epoch", BeginMs: t0 + 30_000, EndMs: t0 + 150_000, CreatedMs: t0 + 150_000, Source: "run"},
		{Name: "epoch", BeginMs: t0 + 150_000, EndMs: t0 + 280_000, CreatedMs: t0 + 280_000, Source: "run"},
		{Name: "eval", BeginMs: t0 + 280_000, Open: true, CreatedMs: t0 + 280_000, Source: "train.py"},
	}
	if err := db.Write(ctx, &store.Batch{Marks: marks, Runs: []store.Run{{StartedMs: t0 + seconds*1000, Version: "v0.9.1", Host: "rec1", Servers: []string{"node1:4938"}}}}); err != nil {
		tb.Fatal(err)
	}
	if err := db.Check(); err != nil {
		tb.Fatalf("the recording does not check: %v", err)
	}
	return n
}

// FrozenSocket listens on the Unix socket path like a recorder that hung:
// it accepts every connection and never answers. It stops when the test
// ends.
func FrozenSocket(tb testing.TB, path string) {
	tb.Helper()
	ln, err := net.Listen("unix", path)
	if err != nil {
		tb.Fatal(err)
	}
	var held []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			held = append(held, c) // never answered
		}
	}()
	tb.Cleanup(func() {
		ln.Close()
		<-done
		for _, c := range held {
			c.Close()
		}
	})
}
