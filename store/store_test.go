package store_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/wattrec/wattrec/store"
)

// MustOpenDB opens a fresh store in a temp dir. On cleanup it checks the
// file's B+tree for consistency, then closes it.
func MustOpenDB(tb testing.TB) *store.DB {
	tb.Helper()
	db, err := store.Open(filepath.Join(tb.TempDir(), "w.db"), store.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := db.Check(); err != nil {
			tb.Errorf("consistency check: %v", err)
		}
		if err := db.Close(); err != nil {
			tb.Error(err)
		}
	})
	return db
}

func scanAll(t *testing.T, db *store.DB, k store.SeriesKey, from, to int64) []store.Reading {
	t.Helper()
	var out []store.Reading
	if err := db.Scan(context.Background(), k, from, to, func(r *store.Reading) error {
		out = append(out, *r)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

func gpu(t, daemon, mw int64) store.Reading {
	return store.Reading{Endpoint: "n1:4938", Kind: store.KindGPU, Device: 0, TimeMs: t, DaemonMs: daemon, MilliWatts: mw}
}

func TestDB_Write(t *testing.T) {
	ctx := context.Background()
	k := store.SeriesKey{Endpoint: "n1:4938", Kind: store.KindGPU, Device: 0}

	t.Run("TimeOrderAndPreEpoch", func(t *testing.T) {
		db := MustOpenDB(t)
		in := []store.Reading{gpu(300, 295, 3), gpu(-5, -10, 1), gpu(100, 95, 2)}
		if err := db.Write(ctx, &store.Batch{Readings: in}); err != nil {
			t.Fatal(err)
		}
		got := scanAll(t, db, k, -1000, 1000)
		want := []store.Reading{in[1], in[2], in[0]}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("got %+v\nwant %+v", got, want)
		}
		if got := scanAll(t, db, k, 100, 300); len(got) != 1 || got[0].TimeMs != 100 {
			t.Fatalf("[100,300) = %+v, want the reading at 100 only", got)
		}
	})

	t.Run("IdenticalReplayIsNoOp", func(t *testing.T) {
		db := MustOpenDB(t)
		in := []store.Reading{gpu(10, 5, 1), gpu(20, 15, 2)}
		for range 3 {
			if err := db.Write(ctx, &store.Batch{Readings: in}); err != nil {
				t.Fatal(err)
			}
		}
		if got := scanAll(t, db, k, 0, 100); !reflect.DeepEqual(got, in) {
			t.Fatalf("got %+v, want %+v", got, in)
		}
	})

	t.Run("DifferentEventsSameKeyBothKept", func(t *testing.T) {
		db := MustOpenDB(t)
		a, b, c := gpu(10, 5, 1), gpu(10, 5, 2), gpu(10, 6, 1) // same corrected time
		seed := a
		seed.Seed = true
		in := []store.Reading{a, b, c, seed, b}
		if err := db.Write(ctx, &store.Batch{Readings: in}); err != nil {
			t.Fatal(err)
		}
		// Arrival order; the replay of b and a's value again as a seed
		// are the same readings.
		want := []store.Reading{a, b, c}
		if got := scanAll(t, db, k, 0, 100); !reflect.DeepEqual(got, want) {
			t.Fatalf("got %+v\nwant %+v", got, want)
		}
	})

	t.Run("SeedAndItsStreamedTwinAreOneReading", func(t *testing.T) {
		db := MustOpenDB(t)
		seed := gpu(10, 5, 1)
		seed.Seed = true
		twin, next := gpu(10, 5, 1), gpu(11, 6, 2)
		// The seed and the first event in one batch, and again across
		// two commits (the head's last millisecond, and a late merge).
		if err := db.Write(ctx, &store.Batch{Readings: []store.Reading{seed, twin, next}}); err != nil {
			t.Fatal(err)
		}
		if err := db.Write(ctx, &store.Batch{Readings: []store.Reading{twin}}); err != nil {
			t.Fatal(err)
		}
		want := []store.Reading{seed, next}
		if got := scanAll(t, db, k, 0, 100); !reflect.DeepEqual(got, want) {
			t.Fatalf("got %+v\nwant %+v", got, want)
		}
		st, err := db.Series(ctx, "", true)
		if err != nil || len(st) != 1 || st[0].Readings != 2 || st[0].SeedReadings != 1 {
			t.Fatalf("series stats %+v, %v: want 2 readings, 1 seed", st, err)
		}
	})

	t.Run("InvalidReadingRollsBackBatch", func(t *testing.T) {
		db := MustOpenDB(t)
		bad := gpu(20, 20, -1)
		err := db.Write(ctx, &store.Batch{Readings: []store.Reading{gpu(10, 10, 1), bad}})
		if err == nil {
			t.Fatal("negative power accepted")
		}
		if err := db.Scan(ctx, k, 0, 100, func(*store.Reading) error { return nil }); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("after failed batch: err=%v, want ErrNotFound (nothing written)", err)
		}
	})
}

// TestDB_RoundTrip is a property test: random streams of readings,
// sessions and clock estimates come back exactly.
func TestDB_RoundTrip(t *testing.T) {
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(1, 2))
	db := MustOpenDB(t)
	want := map[store.SeriesKey][]store.Reading{}
	for batch := 0; batch < 20; batch++ {
		var b store.Batch
		for i := 0; i < 500; i++ {
			r := store.Reading{
				Endpoint:   []string{"a:1", "/run/zeusd.sock"}[rng.IntN(2)],
				Kind:       store.Kind(1 + rng.IntN(3)),
				Device:     int32(rng.IntN(4)),
				TimeMs:     1_700_000_000_000 + rng.Int64N(1_000_000),
				MilliWatts: rng.Int64N(1 << 40),
				Seed:       rng.IntN(10) == 0,
			}
			r.DaemonMs = r.TimeMs - 5000 + rng.Int64N(20)
			b.Readings = append(b.Readings, r)
			k := r.Series()
			if !slices.Contains(want[k], r) {
				want[k] = append(want[k], r)
			}
		}
		if err := db.Write(ctx, &b); err != nil {
			t.Fatal(err)
		}
	}
	for k, rs := range want {
		slices.SortStableFunc(rs, func(a, b store.Reading) int { return int(a.TimeMs - b.TimeMs) })
		if got := scanAll(t, db, k, -1<<62, 1<<62); !reflect.DeepEqual(got, rs) {
			t.Fatalf("series %s: %d readings back, want %d", k, len(got), len(rs))
		}
	}
	series, err := db.Series(ctx, "", true)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := len(series), len(want); got != want {
		t.Fatalf("Series: %d, want %d", got, want)
	}
	for _, s := range series {
		if got, want := s.Readings, len(want[s.SeriesKey]); got != want {
			t.Errorf("%s: %d readings, want %d", s.SeriesKey, got, want)
		}
	}
}

func TestDB_Metadata(t *testing.T) {
	ctx := context.Background()
	db := MustOpenDB(t)
	s := store.Session{Endpoint: "n1:4938", Stream: store.StreamGPU, Start: 1000, End: 1500, Open: true, Events: 7}
	b := store.Batch{
		Sessions:  []store.Session{s},
		Clocks:    []store.ClockEstimate{{Endpoint: "n1:4938", TakenMs: 900, OffsetUs: -5_000_123, RTTUs: 250, Samples: 8}},
		Endpoints: []store.EndpointInfo{{Endpoint: "n1:4938", Network: "tcp", Discover: []byte(`{"gpus":[]}`), GPUs: []int{0}}},
		Runs:      []store.Run{{StartedMs: 800, Version: "test", Servers: []string{"n1:4938"}}},
	}
	if err := db.Write(ctx, &b); err != nil {
		t.Fatal(err)
	}
	// The session ends: an upsert of the same (endpoint, stream, start).
	s.Open, s.End, s.Reason, s.Malformed = false, 2000, "server closed the stream", 2
	if err := db.Write(ctx, &store.Batch{Sessions: []store.Session{s}}); err != nil {
		t.Fatal(err)
	}
	sessions, err := db.Sessions(ctx, "n1:4938")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(sessions, []store.Session{s}) {
		t.Fatalf("sessions = %+v, want %+v", sessions, s)
	}
	clocks, err := db.ClockEstimates(ctx, "n1:4938")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(clocks, b.Clocks) {
		t.Fatalf("clocks = %+v, want %+v", clocks, b.Clocks)
	}
	eps, err := db.Endpoints(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(eps) != 1 || string(eps[0].Discover) != `{"gpus":[]}` || !reflect.DeepEqual(eps[0].GPUs, []int{0}) {
		t.Fatalf("endpoints = %+v", eps)
	}
	runs, err := db.Runs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(runs, b.Runs) {
		t.Fatalf("runs = %+v, want %+v", runs, b.Runs)
	}
}

func TestOpen(t *testing.T) {
	t.Run("LockedByWriter", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "w.db")
		db, err := store.Open(path, store.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		// bbolt's flock is per open file description, so a second Open in
		// the same process contends like another process would.
		_, err = store.Open(path, store.Options{ReadOnly: true, LockTimeout: -1})
		if !errors.Is(err, store.ErrLocked) {
			t.Fatalf("err = %v, want ErrLocked", err)
		}
	})
	t.Run("OtherLayoutVersion", func(t *testing.T) {
		// A file of layout version 1 (one bbolt key per reading) or of a
		// later build, made by hand: refused, read-only or not, with an
		// error that says which version it is.
		for _, version := range []byte{1, 3} {
			path := filepath.Join(t.TempDir(), "w.db")
			bdb, err := bolt.Open(path, 0o600, nil)
			if err != nil {
				t.Fatal(err)
			}
			err = bdb.Update(func(tx *bolt.Tx) error {
				meta, err := tx.CreateBucket([]byte("meta"))
				if err != nil {
					return err
				}
				return meta.Put([]byte("format"), []byte{version})
			})
			if err := errors.Join(err, bdb.Close()); err != nil {
				t.Fatal(err)
			}
			want := fmt.Sprintf("layout version %d, this build reads version 2", version)
			for _, ro := range []bool{true, false} {
				_, err := store.Open(path, store.Options{ReadOnly: ro})
				if !errors.Is(err, store.ErrFormat) || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "wattrec ") {
					t.Errorf("version %d, read-only %v: %v, want ErrFormat saying %q and naming no command", version, ro, err, want)
				}
			}
		}
	})
	t.Run("ReadOnlyMissingFile", func(t *testing.T) {
		_, err := store.Open(filepath.Join(t.TempDir(), "nope.db"), store.Options{ReadOnly: true})
		if err == nil {
			t.Fatal("opened a missing file read-only")
		}
	})
}
