package store_test

import (
	"context"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/wattrec/wattrec/internal/simtest"
	"github.com/wattrec/wattrec/store"
)

func TestDB_PushPosition(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "run.db")
	simtest.WriteRecording(t, path)
	db, err := store.Open(path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()

	if _, ok, err := db.PushPosition(ctx, "http://vm:8428/api/v1/write"); err != nil || ok {
		t.Fatalf("a file that pushed nothing: found %v, err %v", ok, err)
	}
	want := store.PushPosition{Receiver: "http://vm:8428/api/v1/write", ThroughMs: simtest.RecordingStartMs + 60_000, Series: []store.PushedSeries{
		{SeriesKey: store.SeriesKey{Endpoint: "/run/zeusd/zeusd.sock", Kind: store.KindGPU, Device: 1}, EnergyUJ: 1 << 40, Live: true, MW: 300_000},
		{SeriesKey: store.SeriesKey{Endpoint: "node1:4938", Kind: store.KindGPU, Device: 0}, EnergyUJ: 0},
		{SeriesKey: store.SeriesKey{Endpoint: "node1:4938", Kind: store.KindDRAM, Device: 0}, EnergyUJ: 12, Live: true, MW: 1},
	}}
	for range 2 { // the second replaces the first
		if err := db.SetPushPosition(ctx, want); err != nil {
			t.Fatal(err)
		}
	}
	other := store.PushPosition{Receiver: "http://prom:9090/api/v1/write", ThroughMs: -5}
	if err := db.SetPushPosition(ctx, other); err != nil {
		t.Fatal(err)
	}
	for _, p := range []store.PushPosition{want, other} {
		got, ok, err := db.PushPosition(ctx, p.Receiver)
		if err != nil || !ok {
			t.Fatalf("%s: found %v, err %v", p.Receiver, ok, err)
		}
		if len(p.Series) == 0 {
			p.Series = []store.PushedSeries{}
		}
		if !reflect.DeepEqual(got, p) {
			t.Fatalf("got %+v\nwant %+v", got, p)
		}
	}

	t.Run("Refuses", func(t *testing.T) {
		bad := want
		bad.Series = []store.PushedSeries{want.Series[1], want.Series[0]}
		if err := db.SetPushPosition(ctx, bad); err == nil {
			t.Error("series out of order stored")
		}
		if err := db.SetPushPosition(ctx, store.PushPosition{}); err == nil {
			t.Error("a position without a receiver stored")
		}
	})

	// The file checks; a repaired copy checks too and has no positions.
	if err := db.Check(); err != nil {
		t.Fatal(err)
	}
	db.Close()
	rep, err := store.CheckFile(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if err := rep.Err(); err != nil {
		t.Fatalf("check: %v", err)
	}
	dst := filepath.Join(t.TempDir(), "repaired.db")
	if _, err := store.Repair(ctx, path, dst); err != nil {
		t.Fatal(err)
	}
	rdb, err := store.Open(dst, store.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer rdb.Close()
	if _, ok, err := rdb.PushPosition(ctx, want.Receiver); err != nil || ok {
		t.Fatalf("repaired file: position found %v, err %v", ok, err)
	}
}
