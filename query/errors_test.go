package query_test

import (
	"context"
	"errors"
	"testing"

	"github.com/wattrec/wattrec/internal/simtest"
	"github.com/wattrec/wattrec/query"
	"github.com/wattrec/wattrec/store"
)

// TestEnergy_NoWindow: a window report of a mark name the file lacks is
// ErrNoWindow (and ErrInvalid), with or without other marks.
func TestEnergy_NoWindow(t *testing.T) {
	ctx := context.Background()
	db := simtest.MustOpenDB(t)
	b := store.Batch{
		Sessions: []store.Session{{Endpoint: "n1:4938", Stream: store.StreamGPU, Start: 0, End: 10_000}},
		Readings: []store.Reading{{Endpoint: "n1:4938", Kind: store.KindGPU, TimeMs: 0, MilliWatts: 1000}},
	}
	if err := db.Write(ctx, &b); err != nil {
		t.Fatal(err)
	}
	for _, marks := range []bool{false, true} {
		if marks {
			if _, err := db.AddMark(ctx, "epoch", "test", 1000, 2000, 3000); err != nil {
				t.Fatal(err)
			}
		}
		_, err := query.Energy(ctx, db, query.Options{Window: "warmup"})
		if !errors.Is(err, query.ErrNoWindow) || !errors.Is(err, query.ErrInvalid) {
			t.Errorf("marks %v: err = %v, want ErrNoWindow and ErrInvalid", marks, err)
		}
	}
	if _, err := query.Energy(ctx, db, query.Options{Window: "epoch"}); err != nil {
		t.Errorf("a window that exists: %v", err)
	}
}
