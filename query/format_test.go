package query_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/wattrec/wattrec/internal/simtest"
	"github.com/wattrec/wattrec/query"
	"github.com/wattrec/wattrec/store"
)

// TestPrint_ForPrograms checks the JSON and CSV a script reads: every row
// has every key (null where unknown), the group's parts are fields of
// their own (null on group rows), times come as RFC 3339 and Unix ms,
// the CSV columns are the JSON keys with empty cells for null, and the
// warnings are in the JSON and on the warnings writer, not in the table
// or the CSV.
func TestPrint_ForPrograms(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := simtest.MustOpenDB(t)
	base := int64(1_795_881_600_000)
	b := store.Batch{Sessions: []store.Session{
		{Endpoint: "n1:4938", Stream: store.StreamGPU, Start: base, End: base + 10_000, Reason: "recorder stopped"},
		{Endpoint: "n2:4938", Stream: store.StreamGPU, Start: base, End: base + 10_000, Reason: "recorder stopped"},
	}, Marks: []store.Mark{{Name: "epoch", BeginMs: base + 1000, EndMs: base + 4000}}}
	for _, ep := range []string{"n1:4938", "n2:4938"} {
		for i := int64(0); i < 10; i++ {
			b.Readings = append(b.Readings, store.Reading{Endpoint: ep, Kind: store.KindGPU, TimeMs: base + i*1000, DaemonMs: base + i*1000, MilliWatts: 100_000 + i*1000})
		}
	}
	// A counter that disagrees: a warning.
	b.Counters = []store.CounterReading{
		{Endpoint: "n1:4938", Kind: store.KindGPU, TakenMs: base + 2000, EnergyUJ: 0, Trigger: store.TriggerPeriodic},
		{Endpoint: "n1:4938", Kind: store.KindGPU, TakenMs: base + 5000, EnergyUJ: 900_000_000, Trigger: store.TriggerPeriodic},
	}
	if err := db.Write(ctx, &b); err != nil {
		t.Fatal(err)
	}

	for _, by := range []string{query.ByDevice, query.ByEndpoint, query.ByKind} {
		var out, warnings bytes.Buffer
		if err := query.Print(ctx, &out, db, query.Options{By: by, Format: query.FormatJSON, Warnings: &warnings}); err != nil {
			t.Fatal(err)
		}
		var rep struct {
			FromMs   *int64           `json:"from_ms"`
			Window   *string          `json:"window"`
			Periods  []map[string]any `json:"periods"`
			Rows     []map[string]any `json:"rows"`
			Warnings []string         `json:"warnings"`
		}
		if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
			t.Fatal(err)
		}
		if rep.FromMs == nil || *rep.FromMs != base || rep.Window != nil || len(rep.Periods) != 2 || rep.Periods[0]["endpoint"] != "n1:4938" {
			t.Errorf("by %s: header from_ms %v, window %v, periods %v", by, rep.FromMs, rep.Window, rep.Periods)
		}
		if len(rep.Warnings) != 1 || warnings.String() != "warning: "+rep.Warnings[0]+"\n" {
			t.Errorf("by %s: warnings %q in the JSON, %q on the writer; want the same one", by, rep.Warnings, warnings.String())
		}
		keys := slices.Sorted(maps.Keys(rep.Rows[0]))
		for _, r := range rep.Rows {
			if got := slices.Sorted(maps.Keys(r)); !slices.Equal(got, keys) {
				t.Errorf("by %s: row keys %v, first row's %v", by, got, keys)
			}
			if _, ok := r["from_ms"].(float64); !ok {
				t.Errorf("by %s: from_ms %v, want a number", by, r["from_ms"])
			}
			level := r["level"]
			for field, set := range map[string]bool{ // which of endpoint, kind, device are set
				"endpoint": level == "device" || level == "endpoint", "kind": level == "device" || level == "kind", "device": level == "device",
			} {
				if (r[field] != nil) != set {
					t.Errorf("by %s: %s row %q has %s = %v", by, level, r["group"], field, r[field])
				}
			}
		}
		if last := rep.Rows[len(rep.Rows)-1]; last["level"] != "total" || last["group"] != "total" {
			t.Errorf("by %s: last row %v, want the total", by, last)
		}

		var csvOut, csvWarn bytes.Buffer
		if err := query.Print(ctx, &csvOut, db, query.Options{By: by, Format: query.FormatCSV, Warnings: &csvWarn}); err != nil {
			t.Fatal(err)
		}
		recs, err := csv.NewReader(&csvOut).ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(slices.Sorted(slices.Values(recs[0])), keys) || len(recs) != len(rep.Rows)+1 {
			t.Errorf("by %s: CSV header %v (%d records), want the JSON keys and one record per row", by, recs[0], len(recs))
		}
		col := slices.Index(recs[0], "avg_w")
		for _, rec := range recs[1:] {
			for i, cell := range rec {
				if cell == "-" || cell == "NaN" || cell == "null" {
					t.Errorf("by %s: CSV %s = %q, want a number or empty", by, recs[0][i], cell)
				}
			}
			if rec[col] == "" {
				t.Errorf("by %s: avg_w empty on %v", by, rec)
			}
		}
		if csvWarn.Len() == 0 || strings.Contains(csvOut.String(), "warning") {
			t.Errorf("by %s: CSV warnings %q apart, CSV %q", by, csvWarn.String(), csvOut.String())
		}
	}

	// A window report names its window and instances.
	var out bytes.Buffer
	if err := query.Print(ctx, &out, db, query.Options{Window: "epoch", Format: query.FormatJSON}); err != nil {
		t.Fatal(err)
	}
	var rep struct {
		Window string `json:"window"`
		Rows   []struct {
			Window   *string `json:"window"`
			Instance *string `json:"instance"`
		} `json:"rows"`
	}
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Window != "epoch" || rep.Rows[0].Window == nil || *rep.Rows[0].Instance != "epoch #1" || *rep.Rows[len(rep.Rows)-1].Instance != "sum" {
		t.Errorf("window report: %s", out.String())
	}
}
