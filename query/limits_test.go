package query_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"runtime"
	"testing"

	"github.com/wattrec/wattrec/internal/simtest"
	"github.com/wattrec/wattrec/query"
	"github.com/wattrec/wattrec/store"
)

// TestEnergy_TooManyRows: a bucket width that would make more rows than
// a report holds is refused before anything is allocated for them (a
// 1 ms bucket over a day used to take gigabytes).
func TestEnergy_TooManyRows(t *testing.T) {
	t.Parallel() // 15 s of integration under the race detector
	db := simtest.MustOpenDB(t)
	const day = 86_400_000
	t0 := int64(1_795_881_600_000)
	b := &store.Batch{Sessions: []store.Session{{Endpoint: "n1:4938", Stream: store.StreamGPU, Start: t0, End: t0 + day}}}
	for i := range int64(100) {
		b.Readings = append(b.Readings, store.Reading{Endpoint: "n1:4938", Kind: store.KindGPU, TimeMs: t0 + i*day/100, DaemonMs: t0 + i*day/100, MilliWatts: 100_000 + i})
	}
	MustWrite(t, db, b)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	_, err := query.Energy(context.Background(), db, query.Options{EveryMs: 1})
	runtime.ReadMemStats(&after)
	if !errors.Is(err, query.ErrTooLarge) || !errors.Is(err, query.ErrInvalid) {
		t.Fatalf("1 ms buckets over a day: %v, want ErrTooLarge (and ErrInvalid)", err)
	}
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 16<<20 {
		t.Errorf("refusing the query allocated %d MiB", grew>>20)
	}
	// CSV and JSON stream their rows: 1 s buckets over the day are more
	// than a table holds, not more than a stream does.
	var csv bytes.Buffer
	if err := query.Print(context.Background(), &csv, db, query.Options{EveryMs: 1000, By: query.ByTotal, Format: query.FormatCSV}); err != nil {
		t.Fatalf("CSV of 1 s buckets: %v", err)
	}
	if got := bytes.Count(csv.Bytes(), []byte("\n")); got != 1+86_400 {
		t.Errorf("CSV of 1 s buckets over a day: %d lines, want a header and 86400 rows", got)
	}
	var js bytes.Buffer
	if err := query.Print(context.Background(), &js, db, query.Options{EveryMs: 60_000, Format: query.FormatJSON}); err != nil {
		t.Fatal(err)
	}
	var parsed struct{ Rows []json.RawMessage }
	if err := json.Unmarshal(js.Bytes(), &parsed); err != nil || len(parsed.Rows) != 2*1440 {
		t.Errorf("streamed JSON of 1 min buckets: %d rows, %v", len(parsed.Rows), err)
	}
	if err := query.Print(context.Background(), io.Discard, db, query.Options{EveryMs: 1000}); !errors.Is(err, query.ErrTooLarge) {
		t.Errorf("a table of 1 s buckets over a day: %v, want ErrTooLarge", err)
	}
	// Within the limit it is answered: 1 h buckets.
	rep, err := query.Energy(context.Background(), db, query.Options{EveryMs: 3_600_000, By: query.ByTotal})
	if err != nil || len(rep.Rows) != 24 {
		t.Fatalf("1 h buckets: %v rows, %v", rep, err)
	}
}

func TestBinCount(t *testing.T) {
	for _, tc := range []struct {
		w     query.Interval
		every int64
		want  int64
	}{
		{query.Interval{From: 0, To: 10}, 0, 1},
		{query.Interval{From: 0, To: 10}, 5, 2},
		{query.Interval{From: 1, To: 10}, 5, 2},
		{query.Interval{From: 1, To: 11}, 5, 3},
		{query.Interval{From: -7, To: 3}, 5, 3}, // [-7,-5) [-5,0) [0,3)
		{query.Interval{From: 5, To: 5}, 5, 0},
		{query.Interval{From: 0, To: 86_400_000}, 1, 86_400_000},
	} {
		if got := query.BinCount(tc.w, tc.every); got != tc.want {
			t.Errorf("BinCount(%v, %d) = %d, want %d", tc.w, tc.every, got, tc.want)
		}
		n := int64(0)
		if tc.want < 1000 {
			db := simtest.MustOpenDB(t)
			k := store.SeriesKey{Endpoint: "e", Kind: store.KindGPU}
			MustWrite(t, db, &store.Batch{Readings: []store.Reading{{Endpoint: "e", Kind: store.KindGPU, TimeMs: tc.w.From, DaemonMs: tc.w.From, MilliWatts: 1}}})
			err := query.IntegrateBins(context.Background(), db, k, query.Spec{Rule: query.Rule{Kind: query.RuleHold}}, tc.w, tc.every, func(query.Interval, query.Result) error { n++; return nil })
			if err != nil {
				t.Fatal(err)
			}
			if n != tc.want {
				t.Errorf("IntegrateBins(%v, %d) gave %d bins, BinCount says %d", tc.w, tc.every, n, tc.want)
			}
		}
	}
}
