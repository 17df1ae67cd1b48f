package export_test

import (
	"bytes"
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/schema"

	"github.com/wattrec/wattrec/export"
	"github.com/wattrec/wattrec/query"
	"github.com/wattrec/wattrec/simulator"
	"github.com/wattrec/wattrec/store"
)

func exportParquet(tb testing.TB, db *store.DB, f query.Filter, opt export.Options) ([]byte, int64) {
	tb.Helper()
	var buf bytes.Buffer
	n, err := export.Parquet(context.Background(), &buf, db, f, opt)
	if err != nil {
		tb.Fatalf("Parquet: %v", err)
	}
	return buf.Bytes(), n
}

func TestParquet(t *testing.T) {
	db := MustHandDB(t)
	want := storeRows(t, db, query.Filter{})
	data, n := exportParquet(t, db, query.Filter{}, export.Options{Version: "v9.9.9-test"})
	af := readArrow(t, data)

	t.Run("Values", func(t *testing.T) {
		if got, want := n, int64(len(want)); got != want {
			t.Errorf("Parquet returned %d rows, store has %d", got, want)
		}
		if got, want := af.table.NumRows(), int64(len(want)); got != want {
			t.Fatalf("NumRows = %d, want %d", got, want)
		}
		diffRows(t, af.rows(t), want)
		// The hand-built store has seeds and shared milliseconds: make
		// sure the comparison saw them.
		seeds, dups := 0, 0
		for i, r := range want {
			if r.Seed {
				seeds++
			}
			if i > 0 && r.TimeMs == want[i-1].TimeMs && r.Endpoint == want[i-1].Endpoint && r.Kind == want[i-1].Kind && r.Device == want[i-1].Device {
				dups++
			}
		}
		if seeds == 0 || dups == 0 {
			t.Errorf("test data has %d seeds and %d shared milliseconds; want some of each", seeds, dups)
		}
	})

	t.Run("Order", func(t *testing.T) {
		rows := af.rows(t)
		kinds := map[string]int{"gpu": 1, "cpu": 2, "dram": 3}
		less := func(a, b row) int {
			if c := strings.Compare(a.Endpoint, b.Endpoint); c != 0 {
				return c
			}
			if c := kinds[a.Kind] - kinds[b.Kind]; c != 0 {
				return c
			}
			if c := int(a.Device) - int(b.Device); c != 0 {
				return c
			}
			return int(a.TimeMs - b.TimeMs)
		}
		if !slices.IsSortedFunc(rows, less) {
			t.Error("rows are not sorted by endpoint, kind, device, time")
		}
	})

	t.Run("Schema", func(t *testing.T) {
		sc := af.pf.MetaData().Schema
		for _, tc := range []struct {
			name string
			phys parquet.Type
		}{
			{"time", parquet.Types.Int64},
			{"daemon_time_ms", parquet.Types.Int64},
			{"endpoint", parquet.Types.ByteArray},
			{"kind", parquet.Types.ByteArray},
			{"device", parquet.Types.Int32},
			{"power_w", parquet.Types.Double},
			{"seed", parquet.Types.Boolean},
		} {
			i := sc.ColumnIndexByName(tc.name)
			if i < 0 {
				t.Fatalf("no column %q", tc.name)
			}
			col := sc.Column(i)
			if got := col.PhysicalType(); got != tc.phys {
				t.Errorf("%s: physical type %s, want %s", tc.name, got, tc.phys)
			}
			if col.MaxDefinitionLevel() != 0 {
				t.Errorf("%s: optional, want required", tc.name)
			}
		}
		ts, ok := sc.Column(sc.ColumnIndexByName("time")).LogicalType().(schema.TimestampLogicalType)
		if !ok {
			t.Fatalf("time: logical type %v, want TIMESTAMP", sc.Column(0).LogicalType())
		}
		if ts.TimeUnit() != schema.TimeUnitMillis || !ts.IsAdjustedToUTC() {
			t.Errorf("time: %s, want TIMESTAMP(MILLIS, isAdjustedToUTC=true)", ts)
		}
		for _, name := range []string{"endpoint", "kind"} {
			if _, ok := sc.Column(sc.ColumnIndexByName(name)).LogicalType().(schema.StringLogicalType); !ok {
				t.Errorf("%s: logical type %v, want STRING", name, sc.Column(sc.ColumnIndexByName(name)).LogicalType())
			}
		}
		// Arrow's view of it.
		wantFields := []arrow.Field{
			{Name: "time", Type: &arrow.TimestampType{Unit: arrow.Millisecond, TimeZone: "UTC"}},
			{Name: "daemon_time_ms", Type: arrow.PrimitiveTypes.Int64},
			{Name: "endpoint", Type: arrow.BinaryTypes.String},
			{Name: "kind", Type: arrow.BinaryTypes.String},
			{Name: "device", Type: arrow.PrimitiveTypes.Int32},
			{Name: "power_w", Type: arrow.PrimitiveTypes.Float64},
			{Name: "seed", Type: arrow.FixedWidthTypes.Boolean},
		}
		got := af.table.Schema().Fields()
		if len(got) != len(wantFields) {
			t.Fatalf("arrow schema %s, want %d fields", af.table.Schema(), len(wantFields))
		}
		for i, w := range wantFields {
			if got[i].Name != w.Name || !arrow.TypeEqual(got[i].Type, w.Type) || got[i].Nullable {
				t.Errorf("arrow field %d = %s (nullable %v), want %s not null", i, got[i], got[i].Nullable, w)
			}
		}
	})

	t.Run("Encoding", func(t *testing.T) {
		md := af.pf.MetaData()
		if md.NumRowGroups() == 0 {
			t.Fatal("no row groups")
		}
		for rg := range md.NumRowGroups() {
			rgm := md.RowGroup(rg)
			for c := range rgm.NumColumns() {
				cc, err := rgm.ColumnChunk(c)
				if err != nil {
					t.Fatal(err)
				}
				if cc.Compression() != compress.Codecs.Zstd {
					t.Errorf("row group %d column %s: compression %s, want ZSTD", rg, cc.PathInSchema(), cc.Compression())
				}
				name := cc.PathInSchema().String()
				if name == "time" || name == "daemon_time_ms" {
					if !slices.Contains(cc.Encodings(), parquet.Encodings.DeltaBinaryPacked) {
						t.Errorf("row group %d column %s: encodings %v, want DELTA_BINARY_PACKED", rg, name, cc.Encodings())
					}
				}
				if name == "endpoint" || name == "kind" {
					if !cc.HasDictionaryPage() || !slices.Contains(cc.Encodings(), parquet.Encodings.RLEDict) {
						t.Errorf("row group %d column %s: encodings %v, dictionary page %v; want dictionary-encoded", rg, name, cc.Encodings(), cc.HasDictionaryPage())
					}
				}
			}
		}
		// Arrow can hand the dictionary through as such.
		dict := readArrow(t, data, 2)
		if typ := dict.table.Schema().Field(2).Type; typ.ID() != arrow.DICTIONARY {
			t.Errorf("endpoint read with ReadDict: %s, want a dictionary", typ)
		}
		diffRows(t, dict.rows(t), want)
	})

	t.Run("Metadata", func(t *testing.T) {
		m := af.meta
		if got, want := m[export.MetaVersion], "v9.9.9-test"; got != want {
			t.Errorf("%s = %q, want %q", export.MetaVersion, got, want)
		}
		if got, want := af.pf.MetaData().GetCreatedBy(), "wattrec version v9.9.9-test"; got != want {
			t.Errorf("created_by = %q, want %q", got, want)
		}
		if got, want := m[export.MetaTable], export.TableReadings; got != want {
			t.Errorf("%s = %q, want %q", export.MetaTable, got, want)
		}
		if r := m[export.MetaRules]; !strings.Contains(r, "GPU: a value holds") || !strings.Contains(r, "CPU period 100ms inferred") {
			t.Errorf("%s = %q, want the rules with the inferred 100 ms period", export.MetaRules, r)
		}
		var periods map[string]struct {
			PeriodMs int64 `json:"period_ms"`
			Inferred bool  `json:"inferred"`
		}
		mustJSON(t, m, export.MetaCPUPeriods, &periods)
		if p := periods[epTCP+" cpu:0"]; p.PeriodMs != 100 || !p.Inferred {
			t.Errorf("cpu period of %s cpu:0 = %+v, want 100 ms inferred", epTCP, p)
		}
		var eps map[string]store.EndpointInfo
		mustJSON(t, m, export.MetaEndpoints, &eps)
		var clocks map[string][]struct {
			TakenMs  int64 `json:"taken_ms"`
			OffsetUs int64 `json:"offset_us"`
		}
		mustJSON(t, m, export.MetaClock, &clocks)
		var sessions map[string][]struct {
			Stream  string `json:"stream"`
			StartMs int64  `json:"start_ms"`
			EndMs   int64  `json:"end_ms"`
			Open    bool   `json:"open"`
		}
		mustJSON(t, m, export.MetaSessions, &sessions)
		var gaps map[string][]struct {
			Stream string `json:"stream"`
			FromMs int64  `json:"from_ms"`
			ToMs   int64  `json:"to_ms"`
			Reason string `json:"reason"`
		}
		mustJSON(t, m, export.MetaGaps, &gaps)
		infos, err := db.Endpoints(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, info := range infos {
			ep := info.Endpoint
			if got := eps[ep]; !bytes.Equal(compactJSON(t, got.Discover), compactJSON(t, info.Discover)) || got.Network != info.Network {
				t.Errorf("%s: endpoint info %+v, want %+v", ep, got, info)
			}
			ces, _ := db.ClockEstimates(context.Background(), ep)
			if len(clocks[ep]) != len(ces) || clocks[ep][0].OffsetUs != ces[0].OffsetUs || clocks[ep][0].TakenMs != ces[0].TakenMs {
				t.Errorf("%s: clock estimates %+v, want %+v", ep, clocks[ep], ces)
			}
			if got := len(sessions[ep]); got != 3 {
				t.Errorf("%s: %d sessions, want 3", ep, got)
			}
			g := gaps[ep]
			if len(g) != 1 || g[0].Stream != "gpu" || g[0].FromMs != t0+20_000 || g[0].ToMs != t0+25_000 || g[0].Reason != "EOF" {
				t.Errorf("%s: gaps %+v, want the GPU stream's 20 s → 25 s (EOF)", ep, g)
			}
		}
		var filter map[string]any
		mustJSON(t, m, export.MetaFilter, &filter)
		if len(filter) != 0 {
			t.Errorf("filter = %v, want none", filter)
		}
		var columns map[string]string
		mustJSON(t, m, export.MetaColumns, &columns)
		if len(columns) != 7 {
			t.Errorf("%s describes %d columns, want 7", export.MetaColumns, len(columns))
		}
	})
}

func mustJSON(tb testing.TB, m map[string]string, key string, v any) {
	tb.Helper()
	s, ok := m[key]
	if !ok {
		tb.Fatalf("metadata has no %s", key)
	}
	if err := json.Unmarshal([]byte(s), v); err != nil {
		tb.Fatalf("metadata %s: %v: %s", key, err, s)
	}
}

func compactJSON(tb testing.TB, b []byte) []byte {
	tb.Helper()
	var out bytes.Buffer
	if err := json.Compact(&out, b); err != nil {
		tb.Fatalf("compact %s: %v", b, err)
	}
	return out.Bytes()
}

func TestParquet_Filter(t *testing.T) {
	db := MustHandDB(t)
	devs, err := query.ParseDevices("gpu:1,cpu:0")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		f    query.Filter
	}{
		{"Window", query.Filter{Range: query.Between(t0+12_345, t0+31_000)}},
		{"Endpoint", query.Filter{Endpoints: []string{epUnix}}},
		{"Devices", query.Filter{Devices: devs}},
		{"All", query.Filter{Range: query.Between(t0+10_000, t0+40_000), Endpoints: []string{epTCP}, Devices: devs}},
		{"NothingInWindow", query.Filter{Range: query.Between(t0-10_000, t0-5_000)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want := storeRows(t, db, tc.f)
			data, n := exportParquet(t, db, tc.f, export.Options{})
			if n != int64(len(want)) {
				t.Errorf("Parquet returned %d rows, want %d", n, len(want))
			}
			af := readArrow(t, data)
			diffRows(t, af.rows(t), want)
			var filter map[string]any
			mustJSON(t, af.meta, export.MetaFilter, &filter)
			if tc.f.Range.From.Ms != 0 && filter["from_ms"] != float64(tc.f.Range.From.Ms) {
				t.Errorf("filter metadata %v lacks from_ms %d", filter, tc.f.Range.From.Ms)
			}
			if tc.f.Devices != nil && !slices.Equal(anyStrings(filter["devices"]), []string{"gpu:1", "cpu:0"}) {
				t.Errorf("filter metadata %v, want devices gpu:1, cpu:0", filter)
			}
		})
	}
}

func anyStrings(v any) []string {
	var out []string
	s, _ := v.([]any)
	for _, x := range s {
		str, _ := x.(string)
		out = append(out, str)
	}
	return out
}

// TestParquet_RowGroups writes small row groups, so series and chunks
// straddle them.
func TestParquet_RowGroups(t *testing.T) {
	db := MustHandDB(t)
	want := storeRows(t, db, query.Filter{})
	data, _ := exportParquet(t, db, query.Filter{}, export.Options{RowGroupRows: 1000})
	af := readArrow(t, data)
	if got, want := af.pf.NumRowGroups(), (len(want)+999)/1000; got != want {
		t.Errorf("%d row groups, want %d", got, want)
	}
	diffRows(t, af.rows(t), want)
}

// TestParquet_Empty exports a filter that matches no series: a valid file
// with the schema and no rows.
func TestParquet_Empty(t *testing.T) {
	db := MustHandDB(t)
	devs, _ := query.ParseDevices("gpu:7")
	data, n := exportParquet(t, db, query.Filter{Devices: devs}, export.Options{})
	af := readArrow(t, data)
	if n != 0 || af.table.NumRows() != 0 || af.table.NumCols() != 7 {
		t.Errorf("%d rows (returned %d), %d columns; want 0, 0, 7", af.table.NumRows(), n, af.table.NumCols())
	}
}

// TestParquet_Simulator exports a real recording of the simulator, in
// both wire formats, and reads it back with Arrow.
func TestParquet_Simulator(t *testing.T) {
	for _, format := range []string{simulator.FormatSample, simulator.FormatSnapshot} {
		t.Run(format, func(t *testing.T) {
			db := recordSimulator(t, format, 400)
			want := storeRows(t, db, query.Filter{})
			data, n := exportParquet(t, db, query.Filter{}, export.Options{})
			if n != int64(len(want)) || n < 400 {
				t.Errorf("Parquet returned %d rows, store has %d (want ≥ 400)", n, len(want))
			}
			af := readArrow(t, data)
			diffRows(t, af.rows(t), want)
			var eps map[string]store.EndpointInfo
			mustJSON(t, af.meta, export.MetaEndpoints, &eps)
			for ep, info := range eps {
				if len(info.Discover) == 0 {
					t.Errorf("%s: no /discover answer in the metadata", ep)
				}
			}
			var clocks map[string][]json.RawMessage
			mustJSON(t, af.meta, export.MetaClock, &clocks)
			for ep, c := range clocks {
				if len(c) == 0 {
					t.Errorf("%s: no clock estimates in the metadata", ep)
				}
			}
		})
	}
}

// TestParquet_MetadataWindow checks that the metadata of a windowed
// export holds what matters to the window: the clock estimate in force at
// its start and those taken in it, the sessions and gaps that overlap it.
func TestParquet_MetadataWindow(t *testing.T) {
	db := MustHandDB(t)
	for _, tc := range []struct {
		name                    string
		f                       query.Filter
		clocks, sessions, nGaps int
		firstClockMs            int64
	}{
		{"AfterTheGap", query.Filter{Range: query.Between(t0+25_000, t0+35_000)}, 1, 2, 0, t0 + 20_000},
		{"OverTheGap", query.Filter{Range: query.Between(t0+19_000, t0+45_000)}, 3, 3, 1, t0},
		{"BeforeTheFirstEstimate", query.Filter{Range: query.Between(t0-1_000, t0+1_000)}, 1, 2, 0, t0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data, _ := exportParquet(t, db, tc.f, export.Options{})
			af := readArrow(t, data)
			var clocks map[string][]struct {
				TakenMs int64 `json:"taken_ms"`
			}
			var sessions, gaps map[string][]json.RawMessage
			mustJSON(t, af.meta, export.MetaClock, &clocks)
			mustJSON(t, af.meta, export.MetaSessions, &sessions)
			mustJSON(t, af.meta, export.MetaGaps, &gaps)
			for _, ep := range []string{epTCP, epUnix} {
				if got := len(clocks[ep]); got != tc.clocks || clocks[ep][0].TakenMs != tc.firstClockMs {
					t.Errorf("%s: clock estimates %v, want %d from %d", ep, clocks[ep], tc.clocks, tc.firstClockMs-t0)
				}
				if got := len(sessions[ep]); got != tc.sessions {
					t.Errorf("%s: %d sessions, want %d", ep, got, tc.sessions)
				}
				if got := len(gaps[ep]); got != tc.nGaps || gaps[ep] == nil {
					t.Errorf("%s: %d gaps (%v), want %d", ep, got, gaps[ep], tc.nGaps)
				}
			}
			if _, ok := af.meta[export.MetaTruncated]; ok {
				t.Errorf("%s set for a small export", export.MetaTruncated)
			}
		})
	}
}
