package store_test

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"

	"github.com/wattrec/wattrec/store"
)

func counter(kind store.Kind, dev int32, t, uj int64, trig store.CounterTrigger) store.CounterReading {
	return store.CounterReading{Endpoint: "n1:4938", Kind: kind, Device: dev, TakenMs: t, RTTUs: 300, EnergyUJ: uj, Trigger: trig}
}

func TestDB_Counters(t *testing.T) {
	ctx := context.Background()
	gpu0 := store.SeriesKey{Endpoint: "n1:4938", Kind: store.KindGPU, Device: 0}

	t.Run("TimeOrderPerSeries", func(t *testing.T) {
		db := MustOpenDB(t)
		in := []store.CounterReading{
			counter(store.KindGPU, 0, 300, 3000, store.TriggerStop),
			counter(store.KindCPU, 0, 100, 7, store.TriggerStart),
			counter(store.KindGPU, 1, 100, 5000, store.TriggerStart),
			counter(store.KindGPU, 0, -5, 1000, store.TriggerStart),
			counter(store.KindGPU, 0, 100, 2000, store.TriggerPeriodic),
		}
		if err := db.Write(ctx, &store.Batch{Counters: in}); err != nil {
			t.Fatal(err)
		}
		got, err := db.Counters(ctx, gpu0, math.MinInt64, math.MaxInt64)
		if err != nil {
			t.Fatal(err)
		}
		if want := []store.CounterReading{in[3], in[4], in[0]}; !reflect.DeepEqual(got, want) {
			t.Fatalf("got %+v\nwant %+v", got, want)
		}
		if got, err := db.Counters(ctx, gpu0, 100, 300); err != nil || len(got) != 1 || got[0].TakenMs != 100 {
			t.Fatalf("[100,300) = %+v, %v; want the reading at 100 only", got, err)
		}
	})

	t.Run("IdenticalReplayIsNoOpDifferentKept", func(t *testing.T) {
		db := MustOpenDB(t)
		a := counter(store.KindGPU, 0, 10, 1000, store.TriggerPeriodic)
		b := a
		b.Trigger = store.TriggerMark // same millisecond, other trigger
		c := a
		c.EnergyUJ++
		for range 2 {
			if err := db.Write(ctx, &store.Batch{Counters: []store.CounterReading{a, b, c, a}}); err != nil {
				t.Fatal(err)
			}
		}
		got, err := db.Counters(ctx, gpu0, 0, 100)
		if err != nil {
			t.Fatal(err)
		}
		if want := []store.CounterReading{a, b, c}; !reflect.DeepEqual(got, want) {
			t.Fatalf("got %+v\nwant %+v", got, want)
		}
	})

	t.Run("InvalidRollsBackBatch", func(t *testing.T) {
		for name, mutate := range map[string]func(*store.CounterReading){
			"NegativeEnergy": func(r *store.CounterReading) { r.EnergyUJ = -1 },
			"NegativeRTT":    func(r *store.CounterReading) { r.RTTUs = -1 },
			"BadKind":        func(r *store.CounterReading) { r.Kind = 9 },
			"BadTrigger":     func(r *store.CounterReading) { r.Trigger = 0 },
			"NegativeDevice": func(r *store.CounterReading) { r.Device = -1 },
			"NoEndpoint":     func(r *store.CounterReading) { r.Endpoint = "" },
		} {
			t.Run(name, func(t *testing.T) {
				db := MustOpenDB(t)
				ok := counter(store.KindGPU, 0, 10, 1, store.TriggerStart)
				bad := counter(store.KindGPU, 0, 20, 2, store.TriggerStop)
				mutate(&bad)
				b := store.Batch{Readings: []store.Reading{gpu(10, 10, 1)}, Counters: []store.CounterReading{ok, bad}}
				if err := db.Write(ctx, &b); err == nil {
					t.Fatal("invalid counter reading accepted")
				}
				if _, err := db.Counters(ctx, gpu0, math.MinInt64, math.MaxInt64); !errors.Is(err, store.ErrNotFound) {
					t.Fatalf("after failed batch: err=%v, want ErrNotFound (nothing written)", err)
				}
			})
		}
	})

	t.Run("UnknownEndpointAndEmptySeries", func(t *testing.T) {
		db := MustOpenDB(t)
		if _, err := db.Counters(ctx, gpu0, 0, 100); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("unknown endpoint: err=%v, want ErrNotFound", err)
		}
		// The endpoint exists (readings only): no counters is not an error.
		if err := db.Write(ctx, &store.Batch{Readings: []store.Reading{gpu(10, 10, 1)}}); err != nil {
			t.Fatal(err)
		}
		if got, err := db.Counters(ctx, gpu0, 0, 100); err != nil || len(got) != 0 {
			t.Fatalf("no counters: %+v, %v", got, err)
		}
		if cs, err := db.CounterSeries(ctx, ""); err != nil || len(cs) != 0 {
			t.Fatalf("CounterSeries = %+v, %v", cs, err)
		}
	})
}

// TestDB_CountersRange checks the range of Counters at the edges of a
// series' key range: its neighbours in key order, ties of one
// millisecond, the last series of the bucket.
func TestDB_CountersRange(t *testing.T) {
	ctx := context.Background()
	db := MustOpenDB(t)
	const maxDev = math.MaxInt32
	in := []store.CounterReading{
		// Neighbours on both sides of the series in key order.
		counter(store.KindGPU, 0, 500, 1, store.TriggerPeriodic),
		counter(store.KindGPU, 2, 5, 1, store.TriggerPeriodic),
		// The series: GPU 1.
		counter(store.KindGPU, 1, 100, 10_000, store.TriggerStart),
		counter(store.KindGPU, 1, 200, 20_000, store.TriggerPeriodic),
		counter(store.KindGPU, 1, 200, 20_000, store.TriggerMark), // same ms: dup 1
		counter(store.KindGPU, 1, 300, 30_000, store.TriggerStop),
		// The last series of the bucket.
		counter(store.KindDRAM, maxDev, 100, 1, store.TriggerStart),
		counter(store.KindDRAM, maxDev, 200, 2, store.TriggerStop),
	}
	if err := db.Write(ctx, &store.Batch{Counters: in}); err != nil {
		t.Fatal(err)
	}
	gpu1 := store.SeriesKey{Endpoint: "n1:4938", Kind: store.KindGPU, Device: 1}
	last := store.SeriesKey{Endpoint: "n1:4938", Kind: store.KindDRAM, Device: maxDev}
	for _, tc := range []struct {
		name     string
		k        store.SeriesKey
		from, to int64
		want     []store.CounterReading
	}{
		{"Inside", gpu1, 150, 250, in[3:5]},
		{"HalfOpen", gpu1, 100, 300, in[2:5]},
		{"TiesInArrivalOrder", gpu1, 200, 201, in[3:5]},
		{"BeforeAll", gpu1, 50, 60, nil},
		{"All", gpu1, math.MinInt64, math.MaxInt64, in[2:6]},
		{"LastSeriesOfBucket", last, math.MinInt64, math.MaxInt64, in[6:8]},
		{"NoSuchSeries", store.SeriesKey{Endpoint: "n1:4938", Kind: store.KindCPU, Device: 0}, 0, 1000, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := db.Counters(ctx, tc.k, tc.from, tc.to)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

// TestDB_CountersRoundTrip is a property test: random counter readings of
// several endpoints and series come back exactly, a range agrees with a
// linear search, and CounterSeries counts them.
func TestDB_CountersRoundTrip(t *testing.T) {
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(3, 4))
	db := MustOpenDB(t)
	want := map[store.SeriesKey][]store.CounterReading{}
	for range 10 {
		var b store.Batch
		for range 300 {
			r := store.CounterReading{
				Endpoint: []string{"a:1", "/run/zeusd.sock"}[rng.IntN(2)],
				Kind:     store.Kind(1 + rng.IntN(3)),
				Device:   int32(rng.IntN(3)),
				TakenMs:  -500 + rng.Int64N(2000), // pre-epoch too, with many ties
				RTTUs:    rng.Int64N(1 << 20),
				EnergyUJ: rng.Int64N(math.MaxInt64),
				Trigger:  store.CounterTrigger(1 + rng.IntN(4)),
			}
			b.Counters = append(b.Counters, r)
			if k := r.Series(); !slices.Contains(want[k], r) {
				want[k] = append(want[k], r)
			}
		}
		if err := db.Write(ctx, &b); err != nil {
			t.Fatal(err)
		}
	}
	for k, rs := range want {
		slices.SortStableFunc(rs, func(a, b store.CounterReading) int { return int(a.TakenMs - b.TakenMs) })
		got, err := db.Counters(ctx, k, math.MinInt64, math.MaxInt64)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, rs) {
			t.Fatalf("series %s: %d counter readings back, want %d", k, len(got), len(rs))
		}
		for range 50 {
			from, to := -600+rng.Int64N(2200), -600+rng.Int64N(2200)
			var wantIn []store.CounterReading
			for _, r := range rs {
				if from <= r.TakenMs && r.TakenMs < to {
					wantIn = append(wantIn, r)
				}
			}
			got, err := db.Counters(ctx, k, from, to)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, wantIn) {
				t.Fatalf("series %s [%d, %d): %d readings, want %d", k, from, to, len(got), len(wantIn))
			}
		}
	}
	stats, err := db.CounterSeries(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := len(stats), len(want); got != want {
		t.Fatalf("CounterSeries: %d series, want %d", got, want)
	}
	for i, s := range stats {
		rs := want[s.SeriesKey]
		if s.Readings != len(rs) || s.FirstMs != rs[0].TakenMs || s.LastMs != rs[len(rs)-1].TakenMs {
			t.Errorf("%s: %+v, want %d readings in [%d, %d]", s.SeriesKey, s, len(rs), rs[0].TakenMs, rs[len(rs)-1].TakenMs)
		}
		if i > 0 {
			p := stats[i-1].SeriesKey
			if p.Endpoint > s.Endpoint || p.Endpoint == s.Endpoint && (p.Kind > s.Kind || p.Kind == s.Kind && p.Device >= s.Device) {
				t.Errorf("CounterSeries not sorted: %s before %s", p, s.SeriesKey)
			}
		}
	}
	one, err := db.CounterSeries(ctx, "a:1")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range one {
		if s.Endpoint != "a:1" {
			t.Errorf("CounterSeries(a:1) returned %s", s.SeriesKey)
		}
	}
}
