package store_test

import (
	"context"
	"errors"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/wattrec/wattrec/store"
)

// TestMigrate converts a format-1 file with every kind of record and
// checks that every read method answers the same on both.
func TestMigrate(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	src, dst := filepath.Join(dir, "old.db"), filepath.Join(dir, "new.db")
	old, err := store.Open(src, store.Options{Format1: true, NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	g := newStreamGen(4)
	m := model{}
	for range 5 {
		b := store.Batch{
			Sessions:  []store.Session{{Endpoint: "n1:4938", Stream: store.StreamGPU, Start: g.rng.Int64N(1 << 40), End: 1 << 41, Reason: "x"}},
			Clocks:    []store.ClockEstimate{{Endpoint: "n1:4938", TakenMs: 5, OffsetUs: -7, RTTUs: 9, Samples: 8}},
			Endpoints: []store.EndpointInfo{{Endpoint: "n1:4938", Network: "tcp", Discover: []byte(`{"gpus":[]}`), GPUs: []int{0}}},
			Runs:      []store.Run{{StartedMs: 800, Version: "test", Servers: []string{"n1:4938"}}},
			Counters:  []store.CounterReading{counter(store.KindGPU, 0, g.rng.Int64N(1000), 5, store.TriggerPeriodic)},
			Marks:     []store.Mark{{Name: "epoch", BeginMs: 1, EndMs: 2}},
		}
		for range 2000 {
			r := g.reading()
			b.Readings = append(b.Readings, r)
			m.put(r)
		}
		if err := old.Write(ctx, &b); err != nil {
			t.Fatal(err)
		}
	}
	old.Close()

	if err := store.Migrate(ctx, src, dst); err != nil {
		t.Fatal(err)
	}
	if err := store.Migrate(ctx, src, dst); err == nil {
		t.Fatal("Migrate replaced an existing file")
	}
	a, err := store.Open(src, store.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := store.Open(dst, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	check(t, a, m)
	check(t, b, m)
	same := func(what string, f func(db *store.DB) (any, error)) {
		t.Helper()
		x, err1 := f(a)
		y, err2 := f(b)
		if err1 != nil || err2 != nil || !reflect.DeepEqual(x, y) {
			t.Errorf("%s: format 1 %+v (%v), migrated %+v (%v)", what, x, err1, y, err2)
		}
	}
	same("Endpoints", func(db *store.DB) (any, error) { return db.Endpoints(ctx) })
	same("Runs", func(db *store.DB) (any, error) { return db.Runs(ctx) })
	same("Marks", func(db *store.DB) (any, error) { return db.Marks(ctx, "") })
	same("Sessions", func(db *store.DB) (any, error) { return db.Sessions(ctx, "n1:4938") })
	same("ClockEstimates", func(db *store.DB) (any, error) { return db.ClockEstimates(ctx, "n1:4938") })
	same("CounterSeries", func(db *store.DB) (any, error) { return db.CounterSeries(ctx, "") })
	same("Series", func(db *store.DB) (any, error) { return db.Series(ctx, "", true) })
	for k := range m {
		same("Counters", func(db *store.DB) (any, error) { return db.Counters(ctx, k, math.MinInt64, math.MaxInt64) })
		// ScanChunks of format 1: runs of readings, summed on the fly.
		same("ScanChunks sums", func(db *store.DB) (any, error) {
			var hold, n int64
			err := db.ScanChunks(ctx, k, math.MinInt64, math.MaxInt64, func(c *store.Chunk) error {
				hold += c.HoldUJ
				n += int64(c.Len)
				return c.Readings(func(*store.Reading) error { return nil })
			})
			return n, err
		})
	}
	// Marks keep numbering after the copied ones.
	nm, err := b.PutMark(ctx, store.Mark{Name: "new", BeginMs: 1, EndMs: 2})
	if err != nil {
		t.Fatal(err)
	}
	if nm.ID != 6 {
		t.Fatalf("a new mark after 5 migrated ones got id %d, want 6", nm.ID)
	}
	// No temporary file is left behind.
	ents, _ := os.ReadDir(dir)
	if len(ents) != 2 {
		t.Fatalf("dir holds %d entries, want old.db and new.db", len(ents))
	}
}

func TestMigrate_Errors(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	if err := store.Migrate(ctx, filepath.Join(dir, "missing.db"), filepath.Join(dir, "new.db")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("missing source: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "new.db")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatal("a failed migration left its output")
	}
}
